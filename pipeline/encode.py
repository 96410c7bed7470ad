"""Stage 1, encode: a titles CSV -> keyword-tagged training text, in parallel on Ray."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class EncodeConfig:
    """Options of the encode stage (the `encode:` section)."""

    input: str = "data/sample_titles.csv"
    category_field: str | None = "subreddit"
    title_field: str | None = "title"
    body_field: str | None = None
    keywords_field: str | None = None
    keyword_gen: Literal["title", "body", "both"] = "title"
    keyword_sep: str = ","
    repeat: int = 3
    min_keywords: int = 1
    max_keywords: int = 3
    keyword_length_max: int = 20
    max_field_chars: int = 2000
    spacy_model: str = "en_core_web_sm"
    workers: int = 2
    batch_rows: int = 1000
    csv_chunk_rows: int = 50_000
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for key in ("repeat", "min_keywords", "max_keywords", "keyword_length_max", "max_field_chars",
                    "workers", "batch_rows", "csv_chunk_rows"):
            if getattr(self, key) < (0 if key == "min_keywords" else 1):
                raise ConfigError(f"{key}: must be at least {0 if key == 'min_keywords' else 1}")
        if self.min_keywords > self.max_keywords:
            raise ConfigError(f"min_keywords: {self.min_keywords} is more than max_keywords {self.max_keywords}")
        if self.title_field is None and self.body_field is None:
            raise ConfigError("title_field: a title or a body column is needed")
        if not self.keyword_sep:
            raise ConfigError("keyword_sep: must not be empty")
