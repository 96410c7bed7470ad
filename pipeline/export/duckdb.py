"""The embedded export engine: bigquery/titles.sql run by DuckDB over local monthly dumps.

The dumps are streamed in (pipeline.export.dumps) as Arrow batches of six columns and appended
to a DuckDB table, so neither side ever holds a whole dump: DuckDB keeps to
`memory_limit` and spills what does not fit to a scratch folder beside the output
(an in-memory database that spills loaded faster here than an on-disk one). Then the
shared query runs with typed parameters and its few thousand rows become the CSV.
"""
from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from pipeline.core.errors import InputError
from pipeline.export.dumps import check_dump, iter_submissions, schema
from pipeline.export.sql import DUCKDB_TABLE, duckdb_query, query_parameters

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.export.config import ExportConfig

_COLUMNS = "subreddit VARCHAR, title VARCHAR, score BIGINT, author VARCHAR, over_18 BOOLEAN, created_utc DOUBLE"


class _Guarded:
    """Wraps a batch iterator so an error raised inside it survives DuckDB's scan of the stream."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self.batches = batches
        self.error: BaseException | None = None
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self.batches:
                self.rows += batch.num_rows
                yield batch
        except BaseException as exc:
            self.error = exc
            raise


def _progress(inputs: tuple[Path, ...]):
    from tqdm import tqdm

    total = sum(p.stat().st_size for p in inputs if p.is_file())
    return tqdm(total=total, unit="B", unit_scale=True, desc="export: reading dumps", disable=None)


def _load(con, inputs: tuple[Path, ...], block_bytes: int, skipped: Counter) -> int:
    """Append every submission of `inputs` to the submissions table; returns the rows parsed."""
    import duckdb
    import pyarrow as pa

    rows = 0
    with _progress(inputs) as bar:
        for path in inputs:
            guarded = _Guarded(iter_submissions(path, block_bytes, skipped, bar.update))
            reader = pa.RecordBatchReader.from_batches(schema(), iter(guarded))
            con.register("incoming", reader)
            try:
                con.execute(f"INSERT INTO {DUCKDB_TABLE} SELECT * FROM incoming")
            except duckdb.Error:
                if guarded.error is not None:
                    raise guarded.error from None
                raise
            finally:
                con.unregister("incoming")
            rows += guarded.rows
    return rows


def _count_filtered(con, exclude: list[str], skipped: Counter) -> dict:
    """Count the loaded rows the query leaves out: a missing field (skipped), NSFW, excluded."""
    missing, nsfw, excluded = con.execute(
        "SELECT count(*) FILTER (WHERE subreddit IS NULL OR title IS NULL OR score IS NULL OR over_18 IS NULL),"
        " count(*) FILTER (WHERE over_18),"
        " count(*) FILTER (WHERE lower(subreddit) IN (SELECT * FROM unnest($exclude)))"
        f" FROM {DUCKDB_TABLE}", {"exclude": exclude}).fetchone()
    if missing:
        skipped["missing_field"] += missing
    return {"nsfw_posts": nsfw, "excluded_subreddit_posts": excluded}


def run_duckdb(ecfg: ExportConfig, inputs: tuple[Path, ...], output: Path) -> tuple[list[tuple[str, str]], dict]:
    """Run the export over local dumps `inputs`; returns the (subreddit, title) rows and stats.

    `output` only chooses where DuckDB may spill (a scratch folder beside it, removed after).
    """
    import duckdb

    if not inputs:
        raise InputError("export.inputs: the duckdb engine needs at least one dump file")
    for path in inputs:  # before any work, not after loading the first months
        check_dump(path)
    started = time.perf_counter()
    skipped: Counter = Counter()
    params = {p.name: p.value for p in query_parameters(ecfg)}
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.scratch-", dir=output.parent) as scratch:
        con = duckdb.connect()
        try:
            dcfg = ecfg.duckdb
            # Values checked by DuckDBConfig; SET takes no parameters.
            con.execute(f"SET memory_limit = '{dcfg.memory_limit}'")
            con.execute(f"SET threads = {dcfg.threads}")
            spill = scratch.replace("'", "''")
            con.execute(f"SET temp_directory = '{spill}'")
            # Rows are ranked by the query, so load order need not be kept (less memory).
            con.execute("SET preserve_insertion_order = false")
            con.execute(f"CREATE TABLE {DUCKDB_TABLE} ({_COLUMNS})")
            rows_read = _load(con, inputs, dcfg.block_mb << 20, skipped)
            filtered = _count_filtered(con, params["exclude"], skipped)
            result = con.execute(duckdb_query(), params).fetchall()
        finally:
            con.close()
    seconds = time.perf_counter() - started
    # Lines that failed to parse count as read (and as skipped) too.
    rows_read += sum(n for reason, n in skipped.items() if reason != "missing_field")
    stats = {
        "engine": "duckdb",
        "inputs": [str(p) for p in inputs],
        "rows_read": rows_read,
        "rows_skipped": dict(sorted(skipped.items())),
        **filtered,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows_read / seconds, 1) if seconds else None,
    }
    return result, stats
