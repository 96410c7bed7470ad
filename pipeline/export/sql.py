"""The export query, read from bigquery/*.sql and adapted to each engine's dialect.

The semantics live once, in bigquery/titles.sql; this module only fills in where the
submissions come from and the parameter marker each engine uses. User values never
enter the SQL text: they travel as typed query parameters (`query_parameters`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pipeline.export.config import check_wildcard_table

if TYPE_CHECKING:
    from pipeline.export.config import ExportConfig

SQL_DIR = Path(__file__).resolve().parents[2] / "bigquery"
QUERY_FILE = SQL_DIR / "titles.sql"
BIGQUERY_SOURCE_FILE = SQL_DIR / "source_bigquery.sql"
# The DuckDB runner loads the dumps into a table of this name.
DUCKDB_TABLE = "submissions"

_PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


class Param(NamedTuple):
    """One query parameter: its BigQuery type (of the elements, for an array) and value."""

    name: str
    bq_type: str
    value: object
    is_array: bool = False


def query_parameters(ecfg: ExportConfig) -> list[Param]:
    """The parameters titles.sql uses, from the export config (exclusions lower-cased)."""
    return [
        Param("min_score", "INT64", ecfg.min_score),
        Param("exclude", "STRING", sorted({name.lower() for name in ecfg.exclude}), is_array=True),
        Param("top_subreddits", "INT64", ecfg.top_subreddits),
        Param("top_posts", "INT64", ecfg.top_posts),
    ]


def _fill(path: Path, placeholder: str, text: str) -> str:
    """The SQL in `path` with its one `placeholder` replaced by `text`."""
    sql = path.read_text(encoding="utf-8")
    if sql.count(placeholder) != 1:  # a second one (in a comment, say) would be filled too
        raise RuntimeError(f"{path}: expected {placeholder} exactly once")
    return sql.replace(placeholder, text)


def bigquery_query(table: str) -> str:
    """titles.sql reading the wildcard `table`, months selected by the @months parameter."""
    source = _fill(BIGQUERY_SOURCE_FILE, "{table}", check_wildcard_table(table))
    # The source's own comments explain the file; inside the query they would only be noise.
    source = "\n  ".join(line for line in source.strip().splitlines() if not line.startswith("--"))
    return _fill(QUERY_FILE, "{submissions}", source)


def duckdb_query() -> str:
    """titles.sql reading the loaded table, with DuckDB's `$name` parameter marker."""
    return _PARAM.sub(r"$\1", _fill(QUERY_FILE, "{submissions}", DUCKDB_TABLE))
