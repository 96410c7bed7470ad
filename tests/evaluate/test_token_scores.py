"""Token-level scoring with keywords apart (pipeline.evaluate.token_scores), on the tiny model trained in the session."""
import pytest

from pipeline.core.format import END_TOKEN, build_prefix
from pipeline.evaluate.token_scores import Split, TokenScorer, keyword_spans
from pipeline.generate.sampler import Sampler, SamplingSettings
from tests.conftest import checkpoint


def test_keyword_spans_are_whole_words_in_any_case():
    title = "Big Bird and my dog, not dogma"
    assert keyword_spans(title, ["dog"]) == [(16, 19)]
    assert keyword_spans(title, ["big-bird", "cat"]) == [(0, 8)]
    assert keyword_spans(title, ["-"]) == []


@pytest.fixture(scope="module")
def scorer(trained):
    cfg, _ = trained
    s = TokenScorer(checkpoint(cfg))
    yield s
    s.close()


def test_the_split_covers_every_generated_token_once(scorer):
    text = build_prefix("aww", ["dog"]) + "My dog ate the moon" + END_TOKEN
    split = scorer.split(text, ["dog"])
    enc = scorer.enc
    assert split.keyword_tokens == len(enc.encode(" dog"))
    assert split.keyword_tokens + split.other_tokens == len(enc.encode("My dog ate the moon" + END_TOKEN))
    assert split.keyword_sum < 0 and split.other_sum < 0
    # A keyword the title does not hold has no tokens; the whole sample is "other".
    none = scorer.split(text, ["banana"])
    assert none.keyword_tokens == 0 and none.other_sum == pytest.approx(split.keyword_sum + split.other_sum)
    total = Split()
    total.add(split)
    total.add(none)
    assert total.summary()["keyword_token_pct"] == pytest.approx(100 * split.keyword_tokens / (2 * none.other_tokens),
                                                                 abs=1e-2)


def test_the_scores_are_the_samplers_own_log_probabilities(trained, scorer):
    """Teacher forcing the sampled tokens gives the mean log-prob the sampler measured while sampling."""
    cfg, _ = trained
    prompt = build_prefix("aww", ["dog"])
    with Sampler(checkpoint(cfg), SamplingSettings(temperature=1.0, top_p=0.0)) as sampler:
        ids = sampler.encode(prompt)
        out = sampler.sample([ids] * 4, length=30, seed=7)
        for row, logprob in zip(out.tokens, out.logprob):
            new = [int(t) for t in row[len(ids):]]
            text = sampler.decode(row)
            end = text.find(END_TOKEN, len(prompt))
            again = scorer.enc.encode(text[len(prompt):end + len(END_TOKEN)])
            if end < 0 or again != new[: len(again)]:
                continue  # only finished samples the BPE would spell the same way re-tokenise to what was sampled
            split = scorer.split(text, [])
            assert (split.other_sum / split.other_tokens) == pytest.approx(float(logprob), abs=1e-3)
            return
    pytest.fail("no sample re-tokenised to its own tokens")
