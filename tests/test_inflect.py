"""Regular inflections and their way back (pipeline.inflect)."""
from pipeline.inflect import base_forms, inflections, with_base_forms
from pipeline.measures import coverage, words


def test_regular_inflections_follow_the_spelling_rules():
    assert inflections("turn") == ["turns", "turned", "turning"]
    assert inflections("make") == ["makes", "maked", "making"]  # candidates: titles decide
    assert inflections("try") == ["tries", "tried", "trying"]
    assert inflections("fix") == ["fixes", "fixed", "fixing"]
    assert inflections("stop") == ["stops", "stopped", "stopping"]
    assert inflections("play") == ["plays", "played", "playing"]
    # Not a lower-case word of 3+ letters: nothing.
    assert inflections("Python") == inflections("go") == inflections("3d") == []


def test_every_inflection_leads_back_to_its_word():
    for word in ("turn", "make", "try", "fix", "stop", "play", "rescue", "discover", "cook"):
        for form in inflections(word):
            assert word in base_forms(form), (word, form)
    assert base_forms("cats") >= {"cats", "cat"}
    assert base_forms("bus") == {"bus"}


def test_a_keyword_written_inflected_counts_as_present():
    title = words("Turning my garage into a gym, tried everything")
    assert coverage(["turn", "try", "garage"], title).missing == ("turn", "try")
    assert not coverage(["turn", "try", "garage"], with_base_forms(title)).missing
