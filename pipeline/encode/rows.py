"""Reading the encode stage's input CSV in chunks, skipping and counting bad rows.

The reader never holds the whole file: Python's csv module splits `csv_chunk_rows`
records at a time (so a line with too many or too few fields is known as such),
pandas validates each chunk with vectorised checks, and only the surviving rows
travel on as small `Row` tuples.
"""
from __future__ import annotations

import csv
import itertools
from collections import Counter
from pathlib import Path
from typing import Iterator, NamedTuple, Protocol

from pipeline.core.errors import InputError
from pipeline.core.format import CONTROL_CHARS


class EncodeConfig(Protocol):
    """What the reader uses of the `encode:` section (pipeline.encode.stage.EncodeConfig owns it)."""

    category_field: str | None
    title_field: str | None
    body_field: str | None
    keywords_field: str | None
    csv_chunk_rows: int
    max_field_chars: int

# Undecodable bytes are kept as lone surrogates (errors="surrogateescape") so a bad
# row can be found and counted instead of failing the whole file or being mangled.
_BAD_BYTES = r"[\udc80-\udcff]"
# Python's csv module refuses longer fields; a long one is read and counted as too_long instead.
_FIELD_LIMIT = 2**31 - 1


class Row(NamedTuple):
    """One valid input row; `index` is its 0-based position among data rows of the file."""

    index: int
    category: str | None
    title: str | None
    body: str | None
    keywords: str | None
    controls_removed: tuple[str, ...] = ()  # fields whose control characters were removed


def columns_used(ecfg: EncodeConfig) -> dict[str, str]:
    """Row field -> CSV column, for the columns the config names."""
    named = {"category": ecfg.category_field, "title": ecfg.title_field,
             "body": ecfg.body_field, "keywords": ecfg.keywords_field}
    return {field: col for field, col in named.items() if col}


def _read_kwargs(ecfg: EncodeConfig) -> dict:
    # object, not str: pandas 3 would store str in Arrow, which rejects the escaped bad bytes.
    return dict(dtype=object, keep_default_na=False, na_values=[], encoding="utf-8-sig",
                encoding_errors="surrogateescape")


def check_columns(path: Path, ecfg: EncodeConfig) -> dict[str, str]:
    """The used columns; InputError naming missing columns and listing the present ones."""
    import pandas as pd

    if not path.is_file():
        raise InputError(f"encode.input: {path} does not exist")
    try:
        header = list(pd.read_csv(path, nrows=0, **_read_kwargs(ecfg)).columns)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty (expected a CSV with a header row)") from None
    used = columns_used(ecfg)
    missing = [col for col in used.values() if col not in header]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
            f"columns present: {', '.join(map(repr, header))}"
        )
    return used


def iter_rows(path: str | Path, ecfg: EncodeConfig, skipped: Counter,
              first_chunk_rows: int | None = None) -> Iterator[list[Row]]:
    """Chunks of valid rows of the CSV at `path`; every skipped row is counted in `skipped` by reason.

    Each chunk comes from `ecfg.csv_chunk_rows` records, the first from `first_chunk_rows` when
    given (a small first chunk lets work start before a large one is read); the rows, their
    indices and what is skipped do not depend on the chunk sizes.

    Reasons: malformed_line (too many or too few fields), invalid_utf8, missing_category,
    empty_title, empty_body, too_long, duplicate. Raises InputError when no row is left to
    encode (a header-only file, or every row skipped), so training never gets an empty text.
    """
    import pandas as pd

    path = Path(path)
    used = check_columns(path, ecfg)
    seen: set[int] = set()
    offset = valid = 0
    # Python's csv module splits the records, so each one's field count is known: pandas' parser pads
    # a short line with empty fields (indistinguishable from real ones) and takes the first column as
    # an index when the first line has one field too many. pandas then validates each chunk.
    csv.field_size_limit(_FIELD_LIMIT)
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        columns = list(pd.read_csv(path, nrows=0, **_read_kwargs(ecfg)).columns)  # names as check_columns sees them
        positions = {field: columns.index(col) for field, col in used.items()}
        size = min(first_chunk_rows or ecfg.csv_chunk_rows, ecfg.csv_chunk_rows)
        while records := list(itertools.islice(reader, size)):
            size = ecfg.csv_chunk_rows
            records = [r for r in records if r]  # blank lines are no rows
            good = [r for r in records if len(r) == len(header)]
            skipped["malformed_line"] += len(records) - len(good)
            frame = pd.DataFrame({field: pd.Series([r[i] for r in good], dtype=object)
                                  for field, i in positions.items()})
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            rows = _valid_rows(frame, ecfg, skipped, seen)
            valid += len(rows)
            yield rows
    if not valid:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items()) if v)
        raise InputError(f"{path}: no rows to encode" + (f"; every row was skipped ({reasons})" if reasons
                                                         else " (only a header)"))


def _valid_rows(frame, ecfg: EncodeConfig, skipped: Counter, seen: set[int]) -> list[Row]:
    import pandas as pd

    if frame.empty:
        return []
    bad = pd.Series(False, index=frame.index)
    # Control characters go first, so a title of nothing else counts as empty.
    controls = frame.apply(lambda col: col.str.contains(CONTROL_CHARS, regex=True))
    frame = frame.apply(lambda col: col.str.replace(CONTROL_CHARS, "", regex=True))

    def drop(reason: str, mask) -> None:
        nonlocal bad
        new = mask & ~bad
        skipped[reason] += int(new.sum())
        bad |= new

    drop("invalid_utf8", frame.apply(lambda col: col.str.contains(_BAD_BYTES, regex=True)).any(axis=1))
    if "category" in frame:
        drop("missing_category", frame["category"].str.strip() == "")
    if "title" in frame:
        drop("empty_title", frame["title"].str.strip() == "")
    elif "body" in frame:
        drop("empty_body", frame["body"].str.strip() == "")
    drop("too_long", (frame.apply(lambda col: col.str.len()) > ecfg.max_field_chars).any(axis=1))
    # Hashed after the other checks: undecodable text cannot be hashed, and a row skipped
    # for another reason must not make a later valid copy of it count as a duplicate.
    hashes = pd.util.hash_pandas_object(frame[~bad], index=False)
    dup = hashes.duplicated() | hashes.isin(seen)
    drop("duplicate", dup.reindex(frame.index, fill_value=False))
    good = frame[~bad]
    seen.update(hashes[~dup].tolist())
    removed = [tuple(f for f, hit in zip(good.columns, flags) if hit)
               for flags in controls[~bad].itertuples(index=False)]
    cols = [good[f] if f in good else [None] * len(good) for f in ("category", "title", "body", "keywords")]
    return [Row(i, *vals, controls_removed=r) for i, *vals, r in zip(good.index.tolist(), *cols, removed)]
