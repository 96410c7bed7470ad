"""Realism measures (pipeline.report.realism) on hand-made titles with answers worked out by hand."""
from pipeline.core.format import END_TOKEN as E, START_TOKEN as S
from pipeline.report.realism import Realism, Reference, ks_statistic, realism_by_group, training_pairs

TRAIN = [("aww", "my dog ate the whole cake today"), ("aww", "look at this cat"),
         ("science", "new study finds coffee helps")]


def test_ks_statistic_is_the_largest_gap_between_the_empirical_cdfs():
    assert ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_statistic([1, 2], [3, 4]) == 1.0
    assert ks_statistic([1, 2, 3, 4], [3, 4, 5, 6]) == 0.5
    assert ks_statistic([], [1]) is None


def test_length_oov_near_copies_and_repeats():
    ref = Reference(TRAIN)
    r = Realism()
    r.add("my dog ate the whole pizza", ref)  # 5-gram 'my dog ate the whole' copied; 'pizza' OOV
    r.add("cat cat cat", ref)  # 'cat' repeated
    r.add("the the dog", ref)  # 'the' is a stop word: no repeat
    out = r.result(ref.target_lengths("aww"))
    assert out["titles"] == 3 and out["mean_words"] == 4.0 and out["median_words"] == 3
    assert out["reference_mean_words"] == 5.5  # aww titles: 7 and 4 words
    assert out["oov_words_pct"] == round(100 * 1 / 12, 2)
    assert out["near_copy_pct"] == round(100 / 3, 2) and out["repeated_word_pct"] == round(100 / 3, 2)
    assert out["length_histogram"] == {3: 2, 6: 1}


def test_groups_and_categories_are_compared_with_their_own_lengths(tmp_path):
    encoded = tmp_path / "encoded.txt"
    # Augmented copies of one title count once.
    encoded.write_text("".join(f"{S}~`{c}~^k{i}~@{t}{E}\n" for c, t in TRAIN for i in range(3)), encoding="utf-8")
    assert training_pairs(encoded) == TRAIN
    ref = Reference.from_encoded(encoded)
    out = realism_by_group([("aww", "true", "a b"), ("aww", "false", "a b c d"), ("science", "true", "x")], ref)
    assert set(out["overall"]) == {"true", "false"}
    assert out["overall"]["true"]["reference_mean_words"] == round((7 + 4 + 5) / 3, 2)
    assert out["by_category"]["science"]["true"]["reference_mean_words"] == 5.0
    assert out["reference_histogram"] == {4: 1, 5: 1, 7: 1}
