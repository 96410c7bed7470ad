"""De-duplicating rows in constant memory: an on-disk SQLite table keyed by the row.

A Python set of every row seen grows with the output; SQLite keeps the rows and
their unique index in a temporary file and only a bounded page cache in memory,
so decoding a million samples costs disk, not RAM. Rows come back in the order
they were first seen, each with how many times it was added.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable, Iterator, Sequence

_CACHE_KIB = 16 * 1024


class DedupeStore:
    """Rows of `key_columns` (identity) plus `value_columns` (carried along), kept once each.

    Use as a context manager; the scratch database `<near>.dedupe.sqlite` is removed on exit. Its
    name is fixed (not per process), so a run killed mid-way leaves one file that the next run
    replaces, and no file that looks like an output.
    """

    def __init__(self, near: Path, key_columns: Sequence[str], value_columns: Sequence[str] = ()) -> None:
        self.key_columns = tuple(key_columns)
        self.value_columns = tuple(value_columns)
        self.path = near.with_name(f"{near.name}.dedupe.sqlite")
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> "DedupeStore":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self._db = sqlite3.connect(self.path)
        # A scratch table: nothing to recover after a crash, so skip the journal and fsyncs.
        self._db.executescript(f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-{_CACHE_KIB};")
        cols = ", ".join(f"c{i} TEXT NOT NULL" for i in range(len(self.columns)))
        keys = ", ".join(f"c{i}" for i in range(len(self.key_columns)))
        self._db.execute(f"CREATE TABLE rows (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, {cols}, UNIQUE ({keys}))")
        placeholders = ", ".join("?" * len(self.columns))
        names = ", ".join(f"c{i}" for i in range(len(self.columns)))
        self._insert = (f"INSERT INTO rows (n, {names}) VALUES (1, {placeholders}) "
                        f"ON CONFLICT ({keys}) DO UPDATE SET n = n + 1")
        return self

    def __exit__(self, *exc) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self.path.unlink(missing_ok=True)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key_columns + self.value_columns

    def add_many(self, rows: Iterable[Sequence[str]]) -> None:
        """Add rows (strings in `columns` order); a row whose key was seen before only bumps its count."""
        self._db.executemany(self._insert, rows)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]

    def rows(self) -> Iterator[tuple[tuple[str, ...], int]]:
        """(row, times added) for each distinct row, in first-seen order, streamed from disk."""
        names = ", ".join(f"c{i}" for i in range(len(self.columns)))
        for record in self._db.execute(f"SELECT n, {names} FROM rows ORDER BY id"):
            yield tuple(record[1:]), record[0]
