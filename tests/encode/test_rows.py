"""The encode stage's CSV reader (pipeline.encode.rows) on the bad-input corpus in tests/bad_input/encode/."""
from collections import Counter
from pathlib import Path

import pytest

from pipeline.core.errors import InputError
from pipeline.encode import EncodeConfig
from pipeline.encode.rows import iter_rows

CORPUS = Path(__file__).parents[1] / "bad_input" / "encode"


def read(name, **options):
    skipped = Counter()
    rows = [r for chunk in iter_rows(CORPUS / name, EncodeConfig(input=str(CORPUS / name), **options), skipped)
            for r in chunk]
    return rows, {k: v for k, v in skipped.items() if v}


def test_a_header_only_csv_is_an_error_at_encode():
    with pytest.raises(InputError, match=r"header_only\.csv: no rows to encode \(only a header\)$"):
        read("header_only.csv")


def test_a_csv_whose_every_row_is_skipped_is_an_error_that_counts_them():
    with pytest.raises(InputError, match=r"all_skipped\.csv: no rows to encode; every row was skipped "
                                         r"\(empty_title 1, malformed_line 1\)$"):
        read("all_skipped.csv")


def test_rows_with_too_few_fields_are_malformed_lines():
    # 'aww,Only two fields here' and 'aww' have fewer fields than the header's three.
    rows, skipped = read("short_rows.csv", csv_chunk_rows=2)
    assert [r.title for r in rows] == ["My dog learned to open the fridge", "Burnt the rice again"]
    assert skipped == {"malformed_line": 2}


def test_control_characters_are_removed_and_named_per_field():
    rows, skipped = read("control_chars.csv")
    assert [(r.category, r.title, r.controls_removed) for r in rows] == [
        ("aww", "My dog ate the remote", ("title",)),
        ("cooking", "Burnt the rice", ("category", "title")),
    ]
    # A title of control characters only is empty once they are gone.
    assert skipped == {"empty_title": 1}


def test_the_rows_do_not_depend_on_the_chunk_sizes(tmp_path):
    path = tmp_path / "mixed.csv"
    lines = ["subreddit,title"] + [f"aww,Title {i % 7}" if i % 3 else f"aww,Title {i}" for i in range(30)]
    path.write_text("\n".join(lines[:12] + ["aww,too,many"] + lines[12:] + ["aww,"]) + "\n", encoding="utf-8")

    def read_chunked(first, size):
        skipped = Counter()
        ecfg = EncodeConfig(input=str(path), csv_chunk_rows=size)
        rows = [r for c in iter_rows(path, ecfg, skipped, first_chunk_rows=first) for r in c]
        return rows, {k: v for k, v in skipped.items() if v}

    whole = read_chunked(None, 50_000)
    assert whole[1] == {"duplicate": 16, "malformed_line": 1, "empty_title": 1}
    for first, size in ((1, 1), (1, 50_000), (3, 2), (10, 4), (40, 5)):
        assert read_chunked(first, size) == whole
