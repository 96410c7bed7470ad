"""The decode stage's keyword filter: keep only titles that contain the requested keywords.

Titles that fail go to a side file (`decoded.rejected.csv`) instead of vanishing, and the
yield (kept / all) is counted overall and per value of a group column (`guided`), over
distinct rows and over samples.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from pipeline.core.format import KEYWORD_SEP

FilterRule = Literal["off", "all", "at_least"]


@dataclass(frozen=True)
class KeywordFilter:
    """rule 'all': every requested keyword present; 'at_least': `min_present` of them (or all,
    when fewer were requested); 'off': keep everything. A title with no requested keywords passes."""

    rule: FilterRule = "off"
    min_present: int = 1

    @property
    def active(self) -> bool:
        return self.rule != "off"

    def passes(self, n_keywords: int, missing: str) -> bool:
        """Whether a row with `n_keywords` requested and the `missing` ones (KEYWORD_SEP-joined) is kept."""
        n_missing = len(missing.split(KEYWORD_SEP)) if missing else 0
        if self.rule == "all":
            return n_missing == 0
        if self.rule == "at_least":
            return n_keywords - n_missing >= min(self.min_present, n_keywords)
        return True


class FilterTally:
    """Kept and rejected rows and samples, overall and per group value."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, keys: tuple[str, ...], kept: bool, samples: int) -> None:
        """Count one distinct row seen `samples` times under each of `keys` ('all', 'guided=true')."""
        outcome = "kept" if kept else "rejected"
        for key in keys:
            self.counts[key][f"rows_{outcome}"] += 1
            self.counts[key][f"samples_{outcome}"] += samples

    def as_dict(self, kfilter: KeywordFilter) -> dict:
        """The stats entry: the rule and, per key ('all', 'guided=true', ...), counts and yield %."""
        out: dict = {"rule": kfilter.rule, "min_present": kfilter.min_present}
        for key, c in sorted(self.counts.items()):
            samples = c["samples_kept"] + c["samples_rejected"]
            out[key] = {**{k: c[k] for k in ("rows_kept", "rows_rejected", "samples_kept", "samples_rejected")},
                        "yield_pct": round(100 * c["samples_kept"] / samples, 2) if samples else None}
        return out
