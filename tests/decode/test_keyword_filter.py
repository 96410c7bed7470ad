"""The decode stage's keyword filter rules (pipeline.decode.keyword_filter); the stage's use of it is in tests/decode/test_decode.py."""
from pipeline.decode.keyword_filter import KeywordFilter


def test_keyword_filter_rules():
    all_of, two = KeywordFilter("all"), KeywordFilter("at_least", 2)
    assert all_of.passes(2, "") and not all_of.passes(2, "dog")
    assert two.passes(3, "cat") and not two.passes(3, "cat dog")
    # Fewer requested than the minimum: all of them are needed; none requested: nothing to check.
    assert two.passes(1, "") and not two.passes(1, "dog") and two.passes(0, "")
    assert KeywordFilter("off").passes(2, "cat dog")
