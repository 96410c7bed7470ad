"""Stage 0, export: Reddit submissions to a `subreddit,title` CSV (owned by the export issue)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ExportConfig:
    engine: Literal["duckdb", "bigquery"] = "duckdb"
    inputs: tuple[str, ...] = ()
    output: str = "data/export/titles.csv"
    top_subreddits: int = 1000
    top_posts: int = 18
    min_score: int = 5
    exclude: tuple[str, ...] = ("me_irl", "2meirl4meirl", "anime_irl", "furry_irl", "cursedimages")
