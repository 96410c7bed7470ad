"""Streaming raw generated samples from disk, one at a time, whatever the file size.

Two layouts: the generate stage's JSON Lines (one record per sample) and the plain
text gpt-2-simple's `generate_to_file` writes (samples separated by a delimiter).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

from pipeline.core.errors import InputError

GPT2_SIMPLE_DELIM = "=" * 20 + "\n"
_READ_CHARS = 1 << 20


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"generated samples {path} do not exist; run `make generate` first")


def read_records(path: Path) -> Iterator[dict | str]:
    """Each line of the JSON Lines file `path`: the record, or why it is unusable.

    A record must be a JSON object with a string `text`, and, when present, a finite number (or
    null) as `logprob` and a boolean (or null) as `guided`; otherwise the reason ('invalid_utf8',
    'bad_json' or 'bad_record') is yielded in its place, so the caller can count it. A line cut
    short by an interrupted generate job reads as 'bad_json'.
    """
    _check_file(path)
    with path.open("rb") as f:
        for raw in f:
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield "invalid_utf8"
                continue
            except ValueError:
                yield "bad_json"
                continue
            yield record if valid_record(record) else "bad_record"


def valid_record(record: object) -> bool:
    """Whether a parsed JSON line has the fields decode relies on, with usable values.

    Python's json module reads NaN and Infinity; a log-prob like that would turn the stats
    and the report into invalid JSON, so it makes the record bad.
    """
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return False
    logprob, guided = record.get("logprob"), record.get("guided")
    if logprob is not None and (isinstance(logprob, bool) or not isinstance(logprob, (int, float))
                                or not math.isfinite(logprob)):
        return False
    return guided is None or isinstance(guided, bool)


def read_delimited(path: Path, delim: str = GPT2_SIMPLE_DELIM) -> Iterator[str]:
    """The samples of text file `path`, separated by `delim`; a trailing empty piece is not a sample.

    Reads a megabyte at a time and keeps only the unfinished piece between reads.
    """
    _check_file(path)
    if not delim:
        raise ValueError("doc_delim: must not be empty")
    pending = ""
    with path.open(encoding="utf-8", newline="") as f:
        while True:
            try:
                chunk = f.read(_READ_CHARS)
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: not UTF-8 text ({exc.reason} near byte {exc.start} of a read)") from None
            if not chunk:
                break
            pending += chunk
            *pieces, pending = pending.split(delim)
            yield from pieces
    if pending.strip():
        yield pending
