"""Stage 0, export: Reddit submissions to the `subreddit,title` CSV that encode reads.

    python -m pipeline.export --config configs/export-example.yaml [export.top_posts=10 ...]

One query, bigquery/titles.sql, run by one of two engines: DuckDB over local monthly
dump files (the default; pipeline.export_duckdb) or Google BigQuery
(pipeline.export_bigquery). The CSV and a stats JSON beside it
(`<output stem>.stats.json`) are written atomically.
"""
from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipeline.cli import run_stage
from pipeline.errors import ConfigError, InputError
from pipeline.export_sql import check_wildcard_table
from pipeline.io import atomic_path, write_json

if TYPE_CHECKING:
    from pipeline.config import Config

_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class DuckDBConfig:
    """The embedded engine (`export.duckdb:`)."""

    memory_limit: str = "2GB"  # DuckDB's own limit; it spills to a scratch folder beyond it
    threads: int = 2
    block_mb: int = 16  # decompressed NDJSON parsed at a time

    def __post_init__(self) -> None:
        if not _MEMORY.fullmatch(self.memory_limit):
            raise ConfigError(f"memory_limit: {self.memory_limit!r} is not a size like 2GB or 512MiB")
        if self.threads < 1:
            raise ConfigError("threads: must be at least 1")
        if not 1 <= self.block_mb <= 1024:
            raise ConfigError("block_mb: must be between 1 and 1024")


@dataclass(frozen=True)
class BigQueryConfig:
    """The BigQuery engine (`export.bigquery:`); credentials never go here."""

    table: str = "fh-bigquery.reddit_posts.*"  # a wildcard table of monthly tables named YYYY_MM
    months: tuple[str, ...] = ("2019-08",)
    project: str | None = None  # the project billed; default: the credentials' project
    location: str | None = None
    max_bytes_billed: int | None = None  # refuse when the dry run estimates more
    dry_run_only: bool = False

    def __post_init__(self) -> None:
        check_wildcard_table(self.table)
        if not self.months:
            raise ConfigError("months: name at least one month (YYYY-MM)")
        for month in self.months:
            if not _MONTH.fullmatch(month):
                raise ConfigError(f"months: {month!r} is not a month like 2019-08")
        if self.max_bytes_billed is not None and self.max_bytes_billed < 1:
            raise ConfigError("max_bytes_billed: must be positive (or null for no limit)")


@dataclass(frozen=True)
class ExportConfig:
    """Options of the export stage (the `export:` section)."""

    engine: Literal["duckdb", "bigquery"] = "duckdb"
    inputs: tuple[str, ...] = ()  # local dumps (duckdb engine): RS_YYYY-MM.zst, .parquet, .ndjson
    output: str = "data/export/titles.csv"
    top_subreddits: int = 1000  # N
    top_posts: int = 18  # K
    min_score: int = 5
    exclude: tuple[str, ...] = ("me_irl", "2meirl4meirl", "anime_irl", "furry_irl", "cursedimages")
    duckdb: DuckDBConfig = field(default_factory=DuckDBConfig)
    bigquery: BigQueryConfig = field(default_factory=BigQueryConfig)

    def __post_init__(self) -> None:
        for key in ("top_subreddits", "top_posts"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1")
        if any(not name.strip() for name in self.exclude):
            raise ConfigError("exclude: subreddit names must not be empty")
        if not self.output:
            raise ConfigError("output: must name a file")
        if Path(self.output).resolve() in {Path(p).resolve() for p in self.inputs}:
            raise ConfigError("output: must not be one of the inputs (raw input is never overwritten)")


def stats_path(output: Path) -> Path:
    """Where the stats of the export to `output` go: `<stem>.stats.json` beside it."""
    return output.with_name(f"{output.stem}.stats.json")


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["subreddit", "title"])
        writer.writerows(rows)


def export(ecfg: ExportConfig, inputs: tuple[Path, ...], output: Path) -> dict:
    """Run the export: `inputs` (local dumps, duckdb engine) -> `output` CSV plus its stats JSON.

    Returns the stats. With `bigquery.dry_run_only` only the estimate is made and nothing is
    written. InputError when no submission survives the filters (no CSV is written then).
    """
    if ecfg.engine == "duckdb":
        from pipeline.export_duckdb import run_duckdb

        rows, stats = run_duckdb(ecfg, inputs, output)
    else:
        from pipeline.export_bigquery import run_bigquery

        rows, stats = run_bigquery(ecfg)
        if rows is None:
            return stats
    if not rows:
        raise InputError(f"no submission passed the filters, so there is no CSV to write "
                         f"(rows read: {stats.get('rows_read', 'n/a')}, skipped: {stats.get('rows_skipped', {})})")
    stats.update(output=str(output), rows_written=len(rows),
                 subreddits_written=len({sub for sub, _ in rows}))
    _write_csv(output, rows)
    write_json(stats_path(output), stats)
    return stats


def _run(cfg: Config) -> str:
    ecfg = cfg.export
    stats = export(ecfg, tuple(Path(p) for p in ecfg.inputs), Path(ecfg.output))
    if "rows_written" not in stats:
        return "export: dry run only; nothing written"
    return (f"export: {stats['rows_written']} titles from {stats['subreddits_written']} subreddits -> "
            f"{stats['output']}; rows read: {stats.get('rows_read', 'n/a')}, "
            f"skipped: {stats.get('rows_skipped') or 'none'}, {stats.get('seconds')} s")


def main(argv: list[str]) -> int:
    from pipeline.export_bigquery import BigQueryError

    return run_stage("export", __doc__, argv, _run, errors=(BigQueryError,))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
