"""Keyword guidance on the tiny model trained in the tests (conftest `trained`).

The tiny model learned titles about nine nouns; asked for words it never saw in a title
('banana', 'moon') it does not write them unguided, and guidance must make it.
"""
import dataclasses
import json

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.core.errors import ConfigError
from pipeline.core.format import build_prefix
from pipeline.core.measures import coverage, words
from pipeline.decode import extract
from pipeline.generate.guidance import GuidanceConfig, KeywordGuidance, spellings
from pipeline.generate.sampler import Sampler, SamplingSettings
from tests.conftest import checkpoint, generate_to, read_jsonl, with_generate

UNSEEN = (("banana",), ("moon", "dog"))


def test_spellings_cover_leading_space_bare_and_capitalised():
    assert spellings("dog") == [" dog", " Dog", "dog", "Dog"]
    assert spellings("Big-Bird") == [" Big Bird", " Big Bird", "Big Bird", "Big Bird"]
    assert spellings("-") == []


def test_bad_guidance_values_name_the_key(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("guidance:\n  strength: 2\n", encoding="utf-8")
    assert load_config(cfg, []).guidance.strength == 2.0
    for override, key in (("guidance.strength=-1", "strength"), ("guidance.budget=0", "budget"),
                          ("guidance.max_keywords=0", "max_keywords"), ("guidance.hold_end=1.5", "hold_end")):
        with pytest.raises(ConfigError, match=rf"guidance\.{key}"):
            load_config(cfg, [override])


def _hook(trained, **kw):
    from gpt_2_simple.src import encoder

    cfg, _ = trained
    enc = encoder.get_encoder(str(checkpoint(cfg)))
    return KeywordGuidance(GuidanceConfig(**kw), enc, len(enc.encoder)), enc


def test_only_the_shortest_leading_space_spellings_are_pulled(trained):
    hook, enc = _hook(trained, strength=1.0, max_keywords=2)
    ids, lens, pull = hook.keyword_table([("dog", "banana")])
    for k, keyword in enumerate(("dog", "banana")):
        spaced = [len(enc.encode(form)) for form in spellings(keyword)[:2]]
        assert list(lens[0, k]) == [len(enc.encode(form)) for form in spellings(keyword)]
        assert list(pull[0, k]) == [n == min(spaced) for n in spaced] + [False, False]
        assert list(ids[0, k, 0, : lens[0, k, 0]]) == enc.encode(" " + keyword)
    # Unused keyword slots are empty (length 0) and never pulled.
    assert hook.keyword_table([("dog",)])[1][0, 1].sum() == 0


def _written_after(hook, enc, prompt: str, continuation: list[int], keywords=("dog", "moon")):
    """Run the hook's step over `continuation` (tokens after `prompt`) in a graph; the final `used` flags
    of `keywords`."""
    import tensorflow as tf

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        context = np.asarray([enc.encode(prompt)], dtype=np.int32)
        state = hook.initial_state(1)
        tokens = tf.constant(context)
        for token in [None, *continuation]:
            if token is not None:
                tokens = tf.concat([tokens, tf.constant([[token]], dtype=tf.int32)], axis=1)
            _, state = hook.step(tf.zeros([1, hook.n_vocab]), state, tokens, tf.zeros([1], tf.bool))
        return sess.run(state[0], feed_dict=hook.feed([keywords]))[0].tolist()


def test_a_keyword_counts_once_its_word_is_complete(trained):
    hook, enc = _hook(trained, strength=1.0, max_keywords=2)
    prompt = build_prefix("aww", ["dog", "moon"])
    assert _written_after(hook, enc, prompt, enc.encode("My dog ate")) == [True, False]
    assert _written_after(hook, enc, prompt, enc.encode("My moon and dog!")) == [True, True]
    # Glued onto a longer word, or cut off before its last token, it is not written.
    assert _written_after(hook, enc, prompt, enc.encode("My dogma")) == [False, False]
    moon = enc.encode(" moon")
    assert _written_after(hook, enc, prompt, enc.encode("My") + moon[:-1])[1] is (len(moon) == 1)
    # As the title's first word it may come without the leading space.
    assert _written_after(hook, enc, prompt, enc.encode("Dog days")) == [True, False]


def test_strength_zero_gives_exactly_the_unguided_samples(trained):
    cfg, _ = trained
    settings = SamplingSettings(temperature=0.9)
    prompt_kws = ("banana",)
    outs = []
    hooked, _ = _hook(trained, strength=0.0)
    strong, _ = _hook(trained, strength=8.0)
    for hook, strength in ((None, None), (hooked, None), (strong, 0.0)):
        with Sampler(checkpoint(cfg), settings, hook=hook) as sampler:
            tokens = [sampler.encode(build_prefix("aww", prompt_kws))] * 4
            feed = None if hook is None else hook.feed([prompt_kws] * 4, strength=strength)
            outs.append(sampler.sample(tokens, length=60, seed=3, feed=feed))
    for out in outs[1:]:
        assert np.array_equal(out.tokens, outs[0].tokens) and np.array_equal(out.logprob, outs[0].logprob)


def _all_present(records):
    hits = []
    for r in records:
        values = extract(r["text"], ("keywords", "title")).values
        hits.append(not coverage(values["keywords"].split(), words(values["title"])).missing)
    return sum(hits) / len(hits)


def test_guidance_writes_the_keywords_the_model_would_not(trained, tmp_path):
    cfg, _ = trained
    plain = with_generate(cfg, categories=("aww", "science"), keyword_sets=UNSEEN, count=8, length=40)
    guided = dataclasses.replace(plain, guidance=GuidanceConfig(strength=8.0, end_bias=4.0, compare=True))
    plain_stats = generate_to(plain, checkpoint(cfg), tmp_path / "plain.jsonl")
    stats = generate_to(guided, checkpoint(cfg), tmp_path / "guided.jsonl")
    base = read_jsonl(tmp_path / "plain.jsonl")
    both = read_jsonl(tmp_path / "guided.jsonl")
    n = len(base)
    assert [r["index"] for r in both] == list(range(2 * n))
    on, off = both[:n], both[n:]
    assert all(r["guided"] for r in on) and not any(r["guided"] for r in off)
    # The unguided half of the comparison is the plain job, sample for sample.
    assert [(r["text"], r["seed"], r["logprob"]) for r in off] == [(r["text"], r["seed"], r["logprob"]) for r in base]
    assert [(r["keywords"], r["seed"]) for r in on] == [(r["keywords"], r["seed"]) for r in base]
    assert _all_present(base) <= 0.2
    assert _all_present(on) >= 0.8
    assert "passes" in stats and stats["passes"]["guided"]["samples"] == n
    assert plain_stats["passes"] == {"plain": plain_stats["passes"]["plain"]}
    assert json.loads((tmp_path / "generate_stats.json").read_text()) == stats


def _titles(trained, hook, keywords, seed=11):
    cfg, _ = trained
    with Sampler(checkpoint(cfg), SamplingSettings(temperature=0.8), hook=hook) as sampler:
        tokens = [sampler.encode(build_prefix("aww", keywords))] * 16
        out = sampler.sample(tokens, length=40, seed=seed,
                             feed=hook.feed([keywords] * 16, categories=["aww"] * 16, seed=seed))
        texts = [sampler.decode(row) for row in out.tokens]
    return [extract(t, ("title",)).values["title"] for t in texts if "<|endoftext|>" in t]


def test_the_length_rule_does_not_end_a_guided_title_early(trained):
    from gpt_2_simple.src import encoder

    cfg, _ = trained
    enc = encoder.get_encoder(str(checkpoint(cfg)))
    target = {"aww": np.array([8]), "*": np.array([8])}
    # The end bias ends a title soon after the rule allows it: right after the keywords under the
    # old rule, not before the target length under the length rule.
    kws = ("banana", "moon")
    old = KeywordGuidance(GuidanceConfig(strength=8.0, end_bias=4.0, shape="keywords"), enc, len(enc.encoder))
    new = KeywordGuidance(GuidanceConfig(strength=8.0, end_bias=4.0, shape="length"), enc, len(enc.encoder),
                          lengths=target)
    assert list(new.targets(["aww", None], seed=1)) == [8, 8] and list(old.targets(["aww"], seed=1)) == [0]
    short, shaped = _titles(trained, old, kws), _titles(trained, new, kws)
    assert len(shaped) >= 8 and len(short) >= 8
    assert all(not coverage(kws, words(t)).missing for t in shaped)
    assert min(len(t.split()) for t in shaped) >= 8 - 1, shaped  # ends at the target (a last word may be cut short)


def _end_logits_after(hook, enc, continuation: list[int], target: int) -> list[float]:
    """Per step of `continuation` (after an 'aww' prompt for 'dog', zero logits in): the logit the hook
    leaves on the end marker's first token."""
    import tensorflow as tf

    prompt = enc.encode(build_prefix("aww", ["dog"]))
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        state = hook.initial_state(1)
        tokens = tf.constant([prompt], dtype=tf.int32)
        ending = int(np.flatnonzero(hook.ending)[0])
        steps = []
        for token in [None, *continuation]:
            if token is not None:
                tokens = tf.concat([tokens, tf.constant([[token]], dtype=tf.int32)], axis=1)
            logits, state = hook.step(tf.zeros([1, hook.n_vocab]), state, tokens, tf.zeros([1], tf.bool))
            steps.append(logits[0, ending])
        feed = hook.feed([("dog",)])
        feed[hook._inputs[4]] = np.array([target], dtype=np.int32)
        return [float(v) for v in sess.run(steps, feed_dict=feed)]


def _end_bias_after(hook, enc, continuation: list[int], target: int) -> list[bool]:
    """Per step: whether the end marker's tokens were biased."""
    return [v > 0 for v in _end_logits_after(hook, enc, continuation, target)]


def test_the_end_bias_waits_for_the_target_length(trained):
    hook, enc = _hook(trained, strength=8.0, end_bias=4.0, shape="length")
    words_in = [enc.encode(w) for w in ("My", " dog", " ate", " the", " big", " cake")]
    continuation = [t for w in words_in for t in w]
    word_of_step = [0] + [i + 1 for i, w in enumerate(words_in) for _ in w]  # words begun before each step
    biased = _end_bias_after(hook, enc, continuation, target=5)
    # 'dog' is written by word 2, but the end is only pulled once 5 words were begun.
    assert biased == [n >= 5 for n in word_of_step], (biased, word_of_step)
    assert _end_bias_after(hook, enc, continuation, target=0)[len(words_in[0]) + len(words_in[1]) + 1]


def _end_banned_after(hook, enc, continuation: list[int], target: int) -> list[bool]:
    """Per step: whether the end marker was forbidden."""
    return [v < -1e9 for v in _end_logits_after(hook, enc, continuation, target)]


def test_hold_end_keeps_a_title_open_until_its_share_of_the_target_length(trained):
    words_in = [enc_w for enc_w in ("My", " dog", " ate", " the", " big", " cake")]
    hook, enc = _hook(trained, strength=8.0, end_bias=4.0, shape="length", hold_end=0.6)
    tokens = [enc.encode(w) for w in words_in]
    continuation = [t for w in tokens for t in w]
    word_of_step = [0] + [i + 1 for i, w in enumerate(tokens) for _ in w]
    # 'dog' is written by word 2; with a target of 10 words the end stays forbidden below 0.6 * 10 = 6 words.
    banned = _end_banned_after(hook, enc, continuation, target=10)
    assert banned == [n < 6 for n in word_of_step], (banned, word_of_step)
    # Without it the end is forbidden only while 'dog' is owed: a shorter while.
    off, _ = _hook(trained, strength=8.0, end_bias=4.0, shape="length")
    free = _end_banned_after(off, enc, continuation, target=10)
    assert all(b >= f for b, f in zip(banned, free)) and sum(banned) > sum(free)


def test_the_end_is_held_against_every_token_the_decoder_would_end_the_title_at(trained):
    # A model held off '<|' wrote the marker without it ('Reendoftext|>'); the decoder ends the title
    # there, so guidance must forbid those tokens while a keyword is owed, as it forbids '<|'.
    from pipeline.core.format import parse
    from pipeline.generate.guidance import token_tables

    _, enc = _hook(trained, strength=1.0)
    closing = token_tables(enc, len(enc.encoder))[0]
    prefix = build_prefix("aww", ["dog"])
    for idx, piece in ((i, enc.decode([i])) for i in enc.decoder):
        ended = parse(f"{prefix}My dog{piece} ran<|endoftext|>").document.title != f"My dog{piece} ran"
        assert closing[idx] or not ended, piece
    assert any(closing[i] and "|" in enc.decode([i]) and "<" not in enc.decode([i]) for i in enc.decoder)


def test_the_pull_rises_with_the_title_so_keywords_spread_over_it(trained):
    import tensorflow as tf

    hook, _ = _hook(trained, strength=8.0, max_keywords=3)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        lens = tf.constant(np.array([[[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]], dtype=np.int32))
        scale = [sess.run(hook._pull_scale(lens, tf.constant([9]), tf.constant([w]))) for w in (1, 3, 6)]
        assert np.allclose(scale[0][0][:2], [1 / 3, 1 / 6])  # due at words 3 and 6 (the empty slot is never pulled)
        # ... and on past it, up to OVERDUE_MAX times the strength.
        assert np.allclose(scale[1][0][:2], [1.0, 0.5]) and np.allclose(scale[2][0][:2], [2.0, 1.0])
        assert np.allclose(sess.run(hook._pull_scale(lens, tf.constant([0]), tf.constant([1])))[0][:2], [1, 1])


# Keywords the tiny model's 350-token byte-level BPE spells byte by byte: ' Ελληνικά' takes 17 tokens.
FOREIGN = ("日本語", "Ελληνικά")


def test_a_spelling_longer_than_eight_tokens_is_kept_whole(trained):
    hook, enc = _hook(trained, strength=1.0, max_keywords=2)
    ids, lens, _ = hook.keyword_table([FOREIGN, ("dog",)])
    longest = max(len(enc.encode(form)) for kw in FOREIGN for form in spellings(kw))
    assert longest > 8
    # One column past the longest spelling, so every spelling's next expected token after its end is -1.
    assert ids.shape[-1] == longest + 1
    for b, keywords in enumerate([FOREIGN, ("dog",)]):
        for k, keyword in enumerate(keywords):
            for f, form in enumerate(spellings(keyword)):
                toks = enc.encode(form)
                assert lens[b, k, f] == len(toks) and list(ids[b, k, f, : len(toks)]) == toks
                assert (ids[b, k, f, len(toks):] == -1).all()


def _whole_or_absent(title: str, keyword: str) -> bool:
    """The keyword is in the title whole, or none of its characters is (the tiny model never writes them itself)."""
    return keyword in title or not set(keyword) & set(title)


def _check_foreign_titles(texts: list[str]) -> None:
    assert not [t for t in texts if "\ufffd" in t]
    titles = [extract(t, ("title",)).values["title"] for t in texts if t.endswith("<|endoftext|>")]
    assert len(titles) >= len(texts) // 2, texts
    assert all(_whole_or_absent(title, kw) for title in titles for kw in FOREIGN), titles
    # Guidance does write them: most titles hold both.
    assert sum(all(kw in title for kw in FOREIGN) for title in titles) >= len(titles) // 2, titles


def test_non_ascii_keywords_are_written_whole_through_the_sampling_loop(trained):
    from pipeline.generate.prompts import make_prompt
    from pipeline.generate.sampling import SamplingLoop

    cfg, _ = trained
    prompt = make_prompt("aww", list(FOREIGN), 1, "test")
    with SamplingLoop(checkpoint(cfg), SamplingSettings(temperature=0.8), length=80,
                      guidance=GuidanceConfig(strength=8.0, end_bias=4.0)) as loop:
        texts = [d.text for seed in (11, 12) for d in loop.draw([prompt] * 8, seed=seed)[0]]
    _check_foreign_titles(texts)


def test_non_ascii_keywords_are_written_whole_by_the_generate_stage(trained, tmp_path):
    cfg, _ = trained
    job = dataclasses.replace(with_generate(cfg, keyword_sets=(FOREIGN,), count=6, length=80),
                              guidance=GuidanceConfig(strength=8.0, end_bias=4.0, compare=False))
    generate_to(job, checkpoint(cfg), tmp_path / "out.jsonl")
    records = read_jsonl(tmp_path / "out.jsonl")
    assert len(records) == 12 and all(r["guided"] for r in records)
    _check_foreign_titles([r["text"] for r in records])


def _allowed_per_step(hook, enc, continuation: list[int]) -> list[set[int] | None]:
    """Per step of `continuation` after an 'aww' prompt for FOREIGN: the tokens the hook leaves
    allowed, or None where it restricts nothing."""
    import tensorflow as tf

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        state = hook.initial_state(1)
        tokens = tf.constant([enc.encode(build_prefix("aww", FOREIGN))], dtype=tf.int32)
        steps = []
        for token in [None, *continuation]:
            if token is not None:
                tokens = tf.concat([tokens, tf.constant([[token]], dtype=tf.int32)], axis=1)
            logits, state = hook.step(tf.zeros([1, hook.n_vocab]), state, tokens, tf.zeros([1], tf.bool))
            steps.append(logits[0] > -1e9)
        kept = sess.run(steps, feed_dict=hook.feed([FOREIGN]))
    return [None if k.all() else set(np.flatnonzero(k).tolist()) for k in kept]


def test_a_spelling_begun_within_the_budget_is_finished_past_it(trained):
    hook, enc = _hook(trained, strength=8.0, max_keywords=2, budget=2, shape="keywords")
    first = enc.encode("My")
    assert len(first) == 1
    greek = enc.encode(" " + FOREIGN[1])
    # The spelling's first token comes at step 1, within the budget of 2: every later token of it is
    # forced, though the budget runs out at step 2, and nothing is forced once it is written.
    allowed = _allowed_per_step(hook, enc, first + greek + enc.encode(" and"))
    # (' 日本語' may begin with the same token: both are under way after it.)
    both = {toks[1] for toks in (enc.encode(" " + kw) for kw in FOREIGN) if toks[0] == greek[0]}
    assert allowed[2:len(greek) + 1] == [both] + [{tok} for tok in greek[2:]]
    assert allowed[len(greek) + 1:] == [None] * (1 + len(enc.encode(" and")))
    # A spelling whose first token comes after the budget is left alone.
    filler = enc.encode(" dog")
    assert greek[0] not in filler
    late = _allowed_per_step(hook, enc, first + filler + greek[:3])
    assert all(a is None for a in late[2:])


def test_a_keyword_another_one_spells_is_written_with_it(trained):
    from pipeline.generate.guidance import spelt_by_another

    assert spelt_by_another(["food", "Street-food"]) == [True, False]
    assert spelt_by_another(["gene", "CRISPR-gene-therapy", "Gene"]) == [True, False, True]
    assert spelt_by_another(["dog", "dog"]) == [False, True]  # one of two equal keywords is steered
    assert spelt_by_another(["dog", "doghouse", "big-dog-days"]) == [True, False, False]
    assert spelt_by_another(["hot-dog", "dog-house"]) == [False, False]
    hook, enc = _hook(trained, strength=1.0, max_keywords=3)
    _, lens, pull = hook.keyword_table([("dog", "big-dog", "moon")])
    assert lens[0, 0].sum() == 0 and not pull[0, 0].any()  # an empty slot: written from the start
    assert lens[0, 1].all() and lens[0, 2].all()
    # 'big dog' writes 'dog' too, so the title is done with both.
    hook, enc = _hook(trained, strength=1.0, max_keywords=2)
    prompt = build_prefix("aww", ["dog", "big-dog"])
    assert _written_after(hook, enc, prompt, enc.encode(" big dog ate"), ("dog", "big-dog")) == [True, True]
    assert _written_after(hook, enc, prompt, enc.encode(" big cat"), ("dog", "big-dog")) == [True, False]
