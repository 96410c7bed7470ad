"""The copy head (pipeline.core.copy_head): where tokens sit in the format, and one mixture for
training, scoring and sampling."""
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.device import load_tensorflow

tf = load_tensorflow("tests", announce=False)
tf.compat.v1.disable_eager_execution()

from gpt_2_simple.src import encoder  # noqa: E402

from pipeline.core import copy_head  # noqa: E402

GPT2_BPE = Path(__file__).parents[2] / "pipeline" / "train" / "gpt2_bpe"
DOC = "<|startoftext|>~`gardening~^harvest tomato~@My first tomato harvest!<|endoftext|>\n"


@pytest.fixture(scope="module")
def sections():
    enc = encoder.get_encoder(str(GPT2_BPE))
    return enc, copy_head.Sections(enc, 50257)


def texts(enc, ids, positions):
    return "".join(enc.decode([ids[i]]) for i in positions)


def one_step(rng, ids, logits, last, spec, continues, phrase=None):
    """The mixture's probabilities [V] of one sampling step over a prompt whose keys are `ids`
    [1, 2, P] (tokens, then alternates), all keywords but a '-' (id 7), after the token `last`."""
    n, keys = 8, ids.shape[-1]
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(1)
        fed = copy_head.PromptInputs(tf.constant(ids), tf.constant(ids[:, 0] != 7),
                                     tf.constant(np.zeros((1, 2, keys), bool)), tf.constant([continues]),
                                     np.zeros(logits.shape[-1], bool),
                                     None if phrase is None else tf.constant([phrase]))
        out = copy_head.step_logits(tf, tf.constant(rng.normal(size=(1, n)).astype(np.float32)),
                                    tf.constant(logits), tf.constant(rng.normal(size=(1, keys, n)).astype(np.float32)),
                                    fed, tf.constant(np.zeros((1, 2, keys), bool)), tf.constant([last], tf.int32), spec)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return np.exp(sess.run(out)[0])


def test_documents_find_each_keyword_section_and_title_even_cut_by_the_window(sections):
    enc, s = sections
    ids = enc.encode("ase~@Cut off at the start<|endoftext|>\n" + DOC + DOC[:-30])
    docs = s.documents(ids)
    cut = DOC[:-30].split("~@")[1]  # the last document is cut short inside its title
    # Copying positions: from the token ending the title marker (GPT-2 spells '~@' as '~' '@') to the one
    # before the end marker's last token ('>').
    assert [(texts(enc, ids, k), texts(enc, ids, t)) for k, t in docs] == [
        ("harvest tomato", "@My first tomato harvest!<|endoftext|"), ("harvest tomato", "@" + cut)]
    mask, alt, written, continues, left = s.features(ids)
    keywords, positions = docs[0]
    assert all(set(np.flatnonzero(mask[t])) == set(keywords) for t in positions)
    assert mask.sum() == sum(len(k) * len(t[t < len(ids) - 1]) for k, t in docs)
    # Coverage: ' tomato' is marked written from the title position that wrote it on, not before.
    tomato = keywords[[enc.decode([ids[j]]) == " tomato" for j in keywords]][0]
    at = [t for t in positions if enc.decode([ids[t]]) == " tomato"][0]
    assert not written[at - 1, 0, tomato] and written[at, 0, tomato] and written[positions[-1], 0, tomato]
    # 'harvest' offers ' harvest', written later in the title.
    harvest = keywords[0]
    assert enc.decode([alt[harvest]]) == " harvest" and written[positions[-1], 1, harvest]


def test_a_first_keyword_offers_the_token_a_title_spells_it_with(sections):
    enc, s = sections
    ids = enc.encode("<|startoftext|>~`gardening~^harvest tomato~@")
    keywords, alt, closed, continues, phrase = s.prompt(ids)
    assert not phrase.any()  # only asked for (phrases=True) and only in a hyphen-joined keyword
    first = int(np.flatnonzero(keywords)[0])
    assert enc.decode([alt[first]]) == " harvest"
    # As written ('harvest' glued to the word before) it is closed. 'harvest' after the marker is
    # 'har' 'vest': 'vest' continues the word, and ' harvest' spells it already, so it is closed both
    # ways and offers ' harvest' (left open, it would be copied on its own later). ' tomato' is open.
    assert closed[:, first].tolist() == [True, False] and closed[:, first + 1].all()
    assert enc.decode([alt[first + 1]]) == " harvest" and not closed[:, first + 2].any()
    assert texts(enc, ids, np.flatnonzero(keywords)) == "harvest tomato"
    assert [texts(enc, ids, [j]) for j in np.flatnonzero(continues)] == ["vest"]
    # Pieces the spaced word's first token does not spell stay open: 'Rewilding' is 'Rew' 'ild' 'ing'
    # after the marker and ' Rew' 'ild' 'ing' in a title.
    ids = enc.encode("<|startoftext|>~`gardening~^Rewilding~@")
    keywords, alt, closed, continues, _ = s.prompt(ids)
    pieces = np.flatnonzero(keywords)
    assert texts(enc, ids, pieces) == "Rewilding" and enc.decode([alt[pieces[0]]]) == " Rew"
    assert not closed[:, pieces[1:]].any() and continues[pieces[1:]].all()


def test_a_phrase_later_word_follows_the_token_a_title_ends_the_word_before_with(sections):
    enc, s = sections
    ids = enc.encode("<|startoftext|>~`science~^Electrical-question CRISPR-gene add~@")
    plain = s.prompt(ids)
    keywords, alt, closed, continues, phrase = s.prompt(ids, phrases=True)
    assert [texts(enc, ids, [j]) for j in np.flatnonzero(phrase)] == ["question", "g"]
    assert not (phrase & continues).any()  # a word's first token: the words-left count is unchanged
    # The '-' before each offers the token a title ends the word before with: ' Electrical' spells
    # 'Elect' 'rical' whole; ' CR' does not spell 'CR' 'IS' 'PR', so a title ends that word with 'PR'.
    hyphens = np.flatnonzero(phrase) - 1
    assert [texts(enc, ids, [j]) for j in hyphens] == ["-", "-"] and not keywords[hyphens].any()
    assert [enc.decode([alt[j]]) for j in hyphens] == [" Electrical", "PR"]
    # Everything else is what the sampler is fed without the rule.
    others = np.ones(len(ids), bool)
    others[hyphens] = False
    for before, after in zip(plain, (keywords, alt, closed, continues)):
        assert np.array_equal(before[..., others], after[..., others])
    assert not plain[4].any()


def test_a_phrase_later_word_is_copied_only_right_after_the_word_before_it():
    # Keys: 'Electrical' (id 3), '-' (id 7, not a keyword; its alternate slot holds 3, see
    # Sections._phrase_words), 'question' (id 4, alternate ' question' 8). With the phrase rule, a
    # step whose last token is not 'Electrical' gets no copy mass on 'question' either way.
    rng = np.random.default_rng(2)
    ids = np.array([[[3, 7, 4], [5, 3, 8]]], np.int32)
    logits = rng.normal(size=(1, 12)).astype(np.float32)
    lm = np.exp(logits[0]) / np.exp(logits[0]).sum()

    def mixture(last, phrase):
        return one_step(rng, ids, logits, last, copy_head.HeadSpec(dim=4), [False] * 3, [False, False, phrase])

    after_other, after_word, free = mixture(9, True), mixture(3, True), mixture(9, False)
    lm_share = after_other[9] / lm[9]  # (1 - gate): token 9 is never copied
    for token in (4, 8):
        assert after_other[token] == pytest.approx(lm_share * lm[token], rel=1e-5)
        assert free[token] > after_other[token] * 1.01  # without the rule it could be copied anywhere
    assert after_word[4] + after_word[8] > (after_word[9] / lm[9]) * (lm[4] + lm[8]) * 1.01
    assert after_other[3] > lm_share * lm[3] * 1.01  # the phrase's first word is still offered
    for probs in (after_other, after_word, free):
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_training_and_sampling_give_the_same_mixture_and_it_sums_to_one():
    rng = np.random.default_rng(0)
    n, vocab, prompt = 8, 30, 5
    tokens = rng.integers(0, vocab, size=(1, prompt + 3)).astype(np.int32)
    alt = rng.integers(0, vocab, size=(1, prompt + 3)).astype(np.int32)
    hidden = rng.normal(size=(1, prompt + 3, n)).astype(np.float32)
    logits = rng.normal(size=(1, prompt + 2, vocab)).astype(np.float32)
    keywords = np.zeros((1, prompt), bool)
    keywords[0, 2:4] = True
    continues = np.zeros((1, prompt + 3), bool)
    continues[0, 3] = True  # keyword token 3 continues the word of token 2 ...
    tokens[0, prompt + 1] = tokens[0, 2]  # ... which the title writes: the step after follows it
    mask = np.zeros((1, prompt + 2, prompt + 3), bool)
    mask[0, prompt - 1:, :prompt] = keywords[0]  # the positions after the prompt copy its keywords
    written = rng.random((1, prompt + 2, 2, prompt + 3)) < 0.5

    class Inputs:  # what HeadInputs holds, as constants
        spec = copy_head.HeadSpec(dim=4, ending=True)

    class Stops:  # the tokens that end a title, in a vocabulary of `vocab`
        stops = np.arange(vocab) % 7 == 0

    head = Inputs()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(1)
        head.mask, head.alt, head.written = tf.constant(mask), tf.constant(alt), tf.constant(written)
        head.continues = tf.constant(continues)
        starts = mask & ~continues[:, np.newaxis]
        closed0 = np.zeros((1, prompt + 3), bool)
        head.left = tf.constant(copy_head.words_left(np, starts, written, closed0))
        head.sections = Stops()
        train = copy_head.target_logprob(tf, tf.constant(hidden), tf.constant(logits), tf.constant(tokens), head)
        ids = tf.constant(np.stack([tokens[:, :prompt], alt[:, :prompt]], axis=1))
        fed = copy_head.PromptInputs(ids, tf.constant(keywords), tf.constant(np.zeros((1, 2, prompt), bool)),
                                     tf.constant(continues[:, :prompt]), Stops.stops)
        steps = [copy_head.step_logits(tf, tf.constant(hidden[:, t]), tf.constant(logits[:, t]),
                                       tf.constant(hidden[:, :prompt]), fed, tf.constant(written[:, t, :, :prompt]),
                                       tf.constant(tokens[:, t]), head.spec)
                 for t in range(prompt + 2)]
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            by_name = {v.name: v for v in tf.compat.v1.global_variables()}
            sess.run(by_name["copy/bg:0"].assign([1.0]))
            train, steps = sess.run([train, steps])
    for t, step in enumerate(steps):
        assert np.exp(step[0]).sum() == pytest.approx(1.0, abs=1e-5)
        if t >= prompt - 1:  # a copying position: the two formulas agree on the target
            assert train[0, t] == pytest.approx(step[0, tokens[0, t + 1]], abs=1e-5)
    # Where nothing may be copied (or all of it is written already) the loss is the language model's alone.
    lm = logits[0, 0] - np.log(np.exp(logits[0, 0]).sum())
    assert train[0, 0] == pytest.approx(lm[tokens[0, 1]], abs=1e-5)


def test_a_continuing_piece_is_copied_only_right_after_the_piece_before_it():
    # Prompt keyword tokens 'pr' (id 3) 'oud' (id 4, continues it); a step whose last token is
    # another id gets no copy mass on 'oud' (left open, a small model wrote "Whichoud brag").
    rng = np.random.default_rng(1)
    ids = np.array([[[3, 4], [5, 6]]], np.int32)  # [B, 2, P]: the tokens, then their alternates
    logits = rng.normal(size=(1, 12)).astype(np.float32)
    lm = np.exp(logits[0]) / np.exp(logits[0]).sum()

    def mixture(last, chain):
        return one_step(rng, ids, logits, last, copy_head.HeadSpec(dim=4, chain=chain), [False, True])

    after_other, after_piece, unchained = mixture(9, True), mixture(3, True), mixture(9, False)
    gate_lm = after_other[9] / lm[9]  # (1 - gate): token 9 is never copied
    assert after_other[4] == pytest.approx(gate_lm * lm[4], rel=1e-5)  # 'oud': the language model's share only
    assert after_other[3] > gate_lm * lm[3] * 1.01  # the word's first piece is still offered
    assert after_piece[4] > 0.5  # right after 'pr' the follow bonus makes 'oud' the likely copy
    assert unchained[4] > after_other[4] * 1.01  # without the rule it could be copied anywhere
    for probs in (after_other, after_piece, unchained):
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
