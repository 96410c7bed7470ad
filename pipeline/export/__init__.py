"""Stage 0, export: Reddit submissions -> the `subreddit,title` CSV that encode reads.

    python -m pipeline.export --config configs/export-example.yaml

Modules, in the order data flows: config (the `export:` section), dumps (monthly dumps read as
Arrow batches), sql (bigquery/titles.sql adapted per engine), duckdb and bigquery (the engines),
stage (`run`: engine -> CSV + stats); dumpgen writes synthetic dumps for examples and benchmarks.
"""
from pipeline.export.config import ExportConfig
from pipeline.export.stage import export, run

__all__ = ["ExportConfig", "export", "run"]
