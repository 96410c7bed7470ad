"""Per-title quality measures (pipeline.core.measures): keyword coverage by text and lemma, distinct-n, novelty."""
import pytest

from pipeline.core.measures import DistinctCounter, Lemmatiser, coverage, needs_lemmas, novelty_key, words


def test_coverage_by_text_ignores_case_and_splits_joined_keywords():
    found = words("Big bird binges NETFLIX, then cat food")
    cov = coverage(["Big-Bird", "netflix", "cat-food", "dog", "cat-nip"], found)
    assert cov.present == ("Big-Bird", "netflix", "cat-food")
    assert cov.missing == ("dog", "cat-nip")
    assert cov.ratio == pytest.approx(3 / 5)
    assert coverage([], found).ratio is None
    assert not needs_lemmas(["Big-Bird", "netflix"], found)
    assert needs_lemmas(["dog"], found)


def test_coverage_by_spacy_lemma():
    titles = ["My dogs ran home", "Two mice were eaten"]
    found = [words(t) for t in titles]
    lemmatiser = Lemmatiser("en_core_web_sm", batch_size=2)
    assert coverage(["dog", "run"], found[0]).missing == ("dog", "run")
    lemmatiser.add_lemmas(titles, found)
    assert coverage(["dog", "run", "home", "cat"], found[0]) == (("dog", "run", "home"), ("cat",))
    assert coverage(["mouse", "eat", "cat"], found[1]) == (("mouse", "eat"), ("cat",))
    assert lemmatiser.titles_lemmatised == 2


def test_distinct_n_counts_distinct_over_all_ngrams():
    one, two = DistinctCounter(1), DistinctCounter(2)
    for title in ["A b a", "a B", "c"]:
        one.add(title)
        two.add(title)
    # unigrams a b a a b c: 3 distinct of 6; bigrams (a b) (b a) (a b): 2 of 3; "c" has none.
    assert one.value == pytest.approx(3 / 6)
    assert two.value == pytest.approx(2 / 3)
    assert DistinctCounter(2).value is None


def test_novelty_key_ignores_case_only():
    assert novelty_key("What did your DOG eat?") == novelty_key("what did your dog eat?")
    assert novelty_key("What did your dog eat") != novelty_key("What did your dog eat?")
