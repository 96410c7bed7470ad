"""Stage 4, decode: regex decoding, measures and report (owned by the decode issue)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeConfig:
    sections: tuple[str, ...] = ("title",)
    keep_unfinished: bool = False
