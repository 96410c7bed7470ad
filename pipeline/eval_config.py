"""The `evaluate:` section, read by pipeline.evaluate (`make eval`)."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class EvaluateConfig:
    """How `make eval` holds out titles and prompts the model with them.

    test_fraction: share of the encode input's titles held out (chosen by a hash of the title, so
    the split never depends on the seed, the row order or the file's other rows); prompts: held-out
    titles used as prompts (their category and `keywords_per_prompt` of the keywords the encoder
    extracts from them); samples_per_prompt: titles generated per prompt, guided and unguided each.
    """

    test_fraction: float = 0.1
    prompts: int = 120
    samples_per_prompt: int = 4
    keywords_per_prompt: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction: must be between 0 and 1 (exclusive), got {self.test_fraction}")
        for key in ("prompts", "samples_per_prompt", "keywords_per_prompt"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
