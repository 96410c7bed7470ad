"""The `export:` section and its engines' sub-sections (read by pipeline.export.stage and its engines)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.core.errors import ConfigError

# A wildcard table `project.dataset.prefix*`: BigQuery project ids may hold dashes, dataset
# and table names only letters, digits and underscores. Nothing that could end the quoting.
_WILDCARD_TABLE = re.compile(r"[a-z][a-z0-9-]{4,61}[a-z0-9]\.[A-Za-z0-9_]{1,1024}\.[A-Za-z0-9_]{0,1000}\*")
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


def check_wildcard_table(table: str) -> str:
    """`table` when it is a plain `project.dataset.prefix*` name; ConfigError otherwise."""
    if not _WILDCARD_TABLE.fullmatch(table):
        raise ConfigError(f"table: {table!r} is not a wildcard table name like fh-bigquery.reddit_posts.*")
    return table
