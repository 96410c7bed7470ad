"""Keyword extraction from a spaCy Doc, and the per-row keyword augmentation.

Rules (SPEC, stage 1): stop words and pronouns are skipped; a NOUN keeps its
surface text; a VERB, ADJ or ADV contributes its lemma; every named entity and
noun chunk shorter than `keyword_length_max` characters is a keyword. All are
normalised by pipeline.core.format.normalise_keyword, deduplicated, and empty ones dropped.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Iterable

from pipeline.core.format import normalise_keyword

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

LEMMA_POS = frozenset({"VERB", "ADJ", "ADV"})
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"'})


def straighten_quotes(text: str) -> str:
    """Curly single and double quotes replaced by straight ones (spaCy tags straight ones better)."""
    return text.translate(_QUOTES)


def _skipped(tok: Token) -> bool:
    return tok.is_stop or tok.pos_ == "PRON" or tok.is_punct or tok.is_space


def _trimmed(span: Span) -> str:
    """Span text without leading/trailing stop words, pronouns and punctuation.

    Noun chunks such as 'your dog' or a lone 'you' would otherwise bring back the
    pronouns and stop words the token rule skips.
    """
    start, end = span.start, span.end
    doc = span.doc
    while start < end and (_skipped(doc[start]) or doc[start].pos_ == "DET"):
        start += 1
    while end > start and (_skipped(doc[end - 1]) or doc[end - 1].pos_ == "DET"):
        end -= 1
    return doc[start:end].text if end > start else ""


def extract_keywords(doc: Doc, keyword_length_max: int = 20) -> list[str]:
    """The normalised, deduplicated keywords of `doc`, in order of first appearance."""
    raw: list[str] = []
    for tok in doc:
        if _skipped(tok):
            continue
        if tok.pos_ == "NOUN":
            raw.append(tok.text)
        elif tok.pos_ in LEMMA_POS:
            raw.append(tok.lemma_)
    for span in list(doc.ents) + list(doc.noun_chunks):
        if len(span.text) < keyword_length_max:
            raw.append(_trimmed(span))
    return dedupe(normalise_keyword(k) for k in raw)


def dedupe(keywords: Iterable[str]) -> list[str]:
    """`keywords` without empty strings and repeats, first occurrence kept."""
    seen: dict[str, None] = {}
    for k in keywords:
        if k and k not in seen:
            seen[k] = None
    return list(seen)


def keyword_subsets(keywords: list[str], repeat: int, min_k: int, max_k: int,
                    rng: random.Random) -> list[tuple[str, ...]]:
    """`repeat` random keyword subsets (size min_k..max_k, random order), duplicates removed.

    A row with no keywords gives one empty subset; the model then learns an empty keyword section.
    """
    if not keywords:
        return [()]
    out: dict[tuple[str, ...], None] = {}
    for _ in range(repeat):
        k = rng.randint(min(min_k, len(keywords)), min(max_k, len(keywords)))
        out[tuple(rng.sample(keywords, k))] = None
    return list(out)
