"""Stage 3, generate: bulk conditioned generation (owned by the generate issue)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GenerateConfig:
    prompts_file: str | None = None
    categories: tuple[str, ...] = ()
    keyword_sets: tuple[tuple[str, ...], ...] = ()
    count: int = 1
    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 0.9
    length: int = 64
    batch_size: int = 16
