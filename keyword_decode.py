"""Stage 4 entry point: decode generated samples into a clean, de-duplicated CSV.

    python keyword_decode.py --config configs/default.yaml [section.key=value ...]

Reads data/runs/<run>/generated.jsonl, writes decoded.csv and decode_stats.json beside
it (`make decode` then runs `python -m pipeline.report`). Also keeps the original
scripts' Python API, `decode_texts(...)` and `decode_file(...)`.
"""
from __future__ import annotations

import csv
import itertools
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable

from pipeline.core.format import END_TOKEN, START_TOKEN, check_tokens
from pipeline.core.io import atomic_path
from pipeline.decode import (DedupeStore, GPT2_SIMPLE_DELIM, canonical_sections, decode_sample, read_delimited,
                             read_records)

_CHUNK = 10_000


def _decoded(texts: Iterable[str | dict], sections: tuple[str, ...], keep_unfinished: bool,
             dropped: Counter | None) -> Iterable[str | tuple[str, ...]]:
    """The decoded value (one section) or tuple (several) of each text (or record) that is kept."""
    for item in texts:
        text, finished = (item["text"], item.get("finished")) if isinstance(item, dict) else (item, None)
        sample, reason = decode_sample(text, sections, keep_unfinished, finished)
        if reason:
            if dropped is not None:
                dropped[reason] += 1
            continue
        values = tuple(sample.values.values())
        yield values[0] if len(values) == 1 else values


def decode_texts(texts: Iterable[str | dict], sections: Iterable[str] = ("title",), start_token: str = START_TOKEN,
                 end_token: str = END_TOKEN, keep_unfinished: bool = False,
                 dropped: Counter | None = None) -> list:
    """The requested sections of the first document of each text, as the original `decode_texts` did.

    Takes raw generated texts (or the generate stage's records, whose `finished` flag then counts
    as the decode stage counts it) and section names (category, keywords, title, body).
    Returns a list with a string per kept text when one section is asked for, or a
    tuple in the canonical section order (category, keywords, title, body) when
    several are; keywords come back as one space-separated string and an absent
    section as ''. Texts that never reached the end token (unless `keep_unfinished`)
    or whose requested title is empty are left out; pass a Counter as `dropped` to
    get how many per reason. The tokens are fixed by pipeline/core/format.py.
    """
    check_tokens(start_token, end_token)
    return list(_decoded(texts, canonical_sections(sections), keep_unfinished, dropped))


def decode_file(file_path: str, out_file: str = "texts_decoded.csv", doc_delim: str | None = GPT2_SIMPLE_DELIM,
                sections: Iterable[str] = ("title",), start_token: str = START_TOKEN, end_token: str = END_TOKEN,
                keep_unfinished: bool = False) -> dict:
    """Decode every sample in `file_path` into the CSV `out_file` (one column per section, de-duplicated).

    `file_path` is a text file of samples separated by `doc_delim` (gpt-2-simple's
    `generate_to_file` layout), or, with `doc_delim=None`, the generate stage's
    JSON Lines. Streams the input, so the file may be larger than memory. Returns
    counts: samples, rows written, duplicates and dropped samples per reason.
    """
    check_tokens(start_token, end_token)
    sections = canonical_sections(sections)
    path, out = Path(file_path), Path(out_file)
    unusable: Counter = Counter()  # lines of a JSON Lines file that hold no sample text
    texts = _usable(read_records(path), unusable) if doc_delim is None else read_delimited(path, doc_delim)
    counted = _Counted(texts)
    dropped: Counter = Counter()
    kept = (v if isinstance(v, tuple) else (v,) for v in _decoded(counted, sections, keep_unfinished, dropped))
    with DedupeStore(out, sections) as store:
        while chunk := list(itertools.islice(kept, _CHUNK)):
            store.add_many(chunk)
        with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(sections)
            writer.writerows(row for row, _ in store.rows())
        rows = len(store)
    valid = counted.n - sum(dropped.values())
    return {"samples": counted.n + sum(unusable.values()), "rows": rows, "duplicates": valid - rows,
            "dropped": dict(sorted((dropped + unusable).items()))}


class _Counted:
    """Wraps an iterable and counts the items taken from it."""

    def __init__(self, items: Iterable[str]) -> None:
        self._items = iter(items)
        self.n = 0

    def __iter__(self):
        for item in self._items:
            self.n += 1
            yield item


def _usable(records: Iterable[dict | str], dropped: Counter) -> Iterable[dict]:
    """The records that hold a sample; the reason of each other line is counted in `dropped`."""
    for record in records:
        if isinstance(record, str):
            dropped[record] += 1
        else:
            yield record


if __name__ == "__main__":
    from pipeline.stages import main

    raise SystemExit(main(["decode", *sys.argv[1:]]))
