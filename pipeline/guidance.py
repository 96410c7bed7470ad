"""Keyword-guided decoding (owned by the guidance issue)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuidanceConfig:
    strength: float = 0.0
