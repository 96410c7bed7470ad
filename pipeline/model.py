"""Base models: released GPT-2 sizes or a small GPT-2 made from scratch (owned by the train issue)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal["scratch", "released"] = "scratch"
    released: Literal["124M", "355M", "774M", "1558M"] = "124M"
    models_dir: str = "data/models"
    n_ctx: int = 1024
    n_embd: int = 128
    n_layer: int = 2
    n_head: int = 4
    vocab_size: int = 2000
