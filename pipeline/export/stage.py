"""Stage 0, export: Reddit submissions to the `subreddit,title` CSV that encode reads.

    python -m pipeline.export --config configs/export-example.yaml [export.top_posts=10 ...]

One query, bigquery/titles.sql, run by one of two engines: DuckDB over local monthly
dump files (the default; pipeline.export.duckdb) or Google BigQuery
(pipeline.export.bigquery). The CSV and a stats JSON beside it
(`<output stem>.stats.json`) are written atomically.
"""
from __future__ import annotations

import csv
from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_path, write_json
from pipeline.core.paths import RunPaths
from pipeline.export.config import BigQueryConfig, DuckDBConfig, ExportConfig

__all__ = ["BigQueryConfig", "DuckDBConfig", "ExportConfig", "export", "run", "stats_path"]


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
        from pipeline.export.duckdb import run_duckdb

        rows, stats = run_duckdb(ecfg, inputs, output)
    else:
        from pipeline.export.bigquery import run_bigquery

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


def run(ecfg: ExportConfig, seed: int, paths: RunPaths) -> str:
    """The stage: `ecfg.inputs` -> `ecfg.output` and its stats JSON (outside the run folder: the CSV is
    an input that several runs may share). Returns the line the command prints."""
    from pipeline.export.bigquery import BigQueryError

    try:
        stats = export(ecfg, tuple(Path(p) for p in ecfg.inputs), Path(ecfg.output))
    except BigQueryError as exc:
        raise InputError(str(exc)) from None
    if "rows_written" not in stats:
        return "export: dry run only; nothing written"
    return (f"export: {stats['rows_written']} titles from {stats['subreddits_written']} subreddits -> "
            f"{stats['output']}; rows read: {stats.get('rows_read', 'n/a')}, "
            f"skipped: {stats.get('rows_skipped') or 'none'}, {stats.get('seconds')} s")

