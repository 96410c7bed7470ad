"""Realism measures: do generated titles look like real ones of their category?

Per group of titles (guided, unguided, a category...) against reference titles:

* length in words (whitespace-separated): mean, median, and the two-sample Kolmogorov-Smirnov
  statistic against the reference titles' lengths (0: same distribution, 1: disjoint), plus a
  histogram for the report's plot;
* out-of-vocabulary share: words (lower-cased runs of word characters, pipeline.core.measures) not in
  the training titles' vocabulary, over all words of the group;
* near-copies: titles that share a 5-gram of words with a training title (a verbatim copy is
  one too);
* repeats: titles in which a word that is not a stop word appears twice ("dog ... dog").

The reference for length is the category's training titles in the report, and the held-out
test titles in `make eval` (pipeline.evaluate.heldout); vocabulary and 5-grams are always the training
titles', since that is what a title could have copied.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline.core.format import read_documents
from pipeline.core.measures import ngrams, word_list

NEAR_COPY_N = 5


def n_words(title: str) -> int:
    """A title's length: its whitespace-separated words."""
    return len(title.split())


def ks_statistic(a: Iterable[float], b: Iterable[float]) -> float | None:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs
    (0..1); None when either sample is empty."""
    a, b = np.sort(np.asarray(list(a), dtype=float)), np.sort(np.asarray(list(b), dtype=float))
    if not len(a) or not len(b):
        return None
    grid = np.concatenate([a, b])
    gap = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)
    return round(float(np.max(np.abs(gap))), 4)


def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


class Reference:
    """What generated titles are compared with: training vocabulary and 5-grams, and reference
    title lengths overall and per category.

    train: (category, title) pairs of the training titles; lengths: (category, title) pairs whose
    lengths are the target (None: the training titles themselves).
    """

    def __init__(self, train: Iterable[tuple[str | None, str]],
                 lengths: Iterable[tuple[str | None, str]] | None = None) -> None:
        self.vocab: set[str] = set()
        self.grams: set[tuple[str, ...]] = set()
        self.lengths: dict[str | None, list[int]] = defaultdict(list)
        seen = set()
        for category, title in train:
            if (category, title) in seen:
                continue
            seen.add((category, title))
            tokens = word_list(title)
            self.vocab.update(tokens)
            self.grams.update(ngrams(tokens, NEAR_COPY_N))
            if lengths is None:
                self._add_length(category, title)
        for category, title in (lengths or ()):
            self._add_length(category, title)
        self.stop_words = _stop_words()

    def _add_length(self, category: str | None, title: str) -> None:
        self.lengths[category].append(n_words(title))
        self.lengths["*"].append(n_words(title))

    def target_lengths(self, category: str | None = None) -> list[int]:
        """Reference lengths of `category` (every category when None or unknown)."""
        return self.lengths.get(category) or self.lengths.get("*", [])

    @classmethod
    def from_encoded(cls, encoded: Path) -> Reference:
        """The training titles of the encoded training text at `encoded` (augmented copies count once)."""
        return cls(training_pairs(encoded))


def training_pairs(encoded: Path) -> list[tuple[str | None, str]]:
    """Distinct (category, title) pairs of an encoded training text (category None when absent)."""
    pairs: dict[tuple[str | None, str], None] = {}
    for doc in read_documents(encoded):
        if doc.title and doc.title.strip():
            pairs[(doc.category.strip() if doc.category is not None else None, doc.title.strip())] = None
    return list(pairs)


class Realism:
    """Running totals of the realism measures for one group of titles."""

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.words = self.oov = self.near_copies = self.repeats = 0

    def add(self, title: str, ref: Reference) -> None:
        """Count one title against `ref`."""
        tokens = word_list(title)
        self.lengths.append(n_words(title))
        self.words += len(tokens)
        self.oov += sum(t not in ref.vocab for t in tokens)
        self.near_copies += any(g in ref.grams for g in ngrams(tokens, NEAR_COPY_N))
        content = [t for t in tokens if t not in ref.stop_words]
        self.repeats += len(set(content)) < len(content)

    def result(self, target: list[int]) -> dict:
        """The measures, lengths compared with the reference lengths `target`."""
        n = len(self.lengths)
        pct = (lambda part, whole: round(100 * part / whole, 2) if whole else None)
        return {
            "titles": n,
            "mean_words": round(statistics.fmean(self.lengths), 2) if n else None,
            "median_words": statistics.median(self.lengths) if n else None,
            "reference_mean_words": round(statistics.fmean(target), 2) if target else None,
            "reference_median_words": statistics.median(target) if target else None,
            "length_ks": ks_statistic(self.lengths, target),
            "oov_words_pct": pct(self.oov, self.words),
            "near_copy_pct": pct(self.near_copies, n),
            "repeated_word_pct": pct(self.repeats, n),
            "length_histogram": dict(sorted(Counter(self.lengths).items())),
        }


def realism_by_group(titles: Iterable[tuple[str | None, str | None, str]], ref: Reference) -> dict:
    """Realism of (category, group, title) triples: {'overall': {group: ...}, 'by_category':
    {category: {group: ...}}} where group is e.g. 'true'/'false' for guided (None: one group 'all').

    Overall groups are compared with every reference length, categories with their own.
    """
    overall: dict[str, Realism] = defaultdict(Realism)
    per_cat: dict[str, dict[str, Realism]] = defaultdict(lambda: defaultdict(Realism))
    for category, group, title in titles:
        key = "all" if group is None else group
        overall[key].add(title, ref)
        per_cat[category or ""][key].add(title, ref)
    return {
        "overall": {g: r.result(ref.target_lengths()) for g, r in sorted(overall.items())},
        "reference_histogram": dict(sorted(Counter(ref.target_lengths()).items())),
        "by_category": {c: {g: r.result(ref.target_lengths(c or None)) for g, r in sorted(groups.items())}
                        for c, groups in sorted(per_cat.items())},
    }


# Markdown columns of the realism tables.
_COLUMNS = {"titles": "titles", "mean_words": "mean words", "median_words": "median words",
            "reference_mean_words": "reference mean", "length_ks": "length KS", "oov_words_pct": "OOV words %",
            "near_copy_pct": "near-copies %", "repeated_word_pct": "repeated word %"}
_GROUP_NAMES = {"true": "guided", "false": "unguided", "all": "all"}


def realism_markdown(realism: dict, reference: str, top: int | None = None) -> list[str]:
    """Markdown lines: the overall table and the per-category one (`top` categories at most);
    `reference` says what the lengths are compared with."""
    def fmt(v):
        return "n/a" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    def table(label, rows):
        out = ["| " + " | ".join([label, *_COLUMNS.values()]) + " |", "|" + "---|" * (len(_COLUMNS) + 1)]
        out += ["| " + " | ".join([name, *(fmt(m[k]) for k in _COLUMNS)]) + " |" for name, m in rows]
        return out

    lines = [f"Lengths in words against {reference}; OOV: words not in the training titles' vocabulary; "
             f"near-copy: shares a {NEAR_COPY_N}-gram with a training title; repeated word: a non-stop word "
             "twice in one title. KS: the two-sample Kolmogorov-Smirnov statistic of the length distributions "
             "(0 same, 1 disjoint).", ""]
    lines += table("titles", [(_GROUP_NAMES.get(g, g), m) for g, m in realism["overall"].items()]) + [""]
    cats = list(realism["by_category"].items())[:top]
    lines += [f"By category ({len(cats)} of {len(realism['by_category'])}):", ""]
    lines += table("category", [(f"{c or '(none)'} {_GROUP_NAMES.get(g, g)}", m)
                                for c, groups in cats for g, m in groups.items()]) + [""]
    return lines
