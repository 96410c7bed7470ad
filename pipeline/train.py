"""Stage 2, train: fine-tune with gpt-2-simple (owned by the train issue)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 100
    batch_size: int = 1
    learning_rate: float = 1e-4
    accumulate_gradients: int = 1
    save_every: int = 100
    sample_every: int = 0
    restore_from: Literal["fresh", "latest"] = "latest"
