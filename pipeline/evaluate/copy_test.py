"""The copy test: does the model copy a title's keywords from its prompt?

Each held-out title is teacher-forced twice, after a prompt with its own keywords and after one with
another held-out title's keywords (the next title's in hash order). Both times only the title's own
keywords' tokens are scored (where they stand verbatim in the title: pipeline.evaluate.token_scores),
in nats per keyword. A model that copies finds its keywords far likelier after its own prompt; one
that only remembers titles finds them about as likely either way.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.core.format import END_TOKEN, build_prefix
from pipeline.evaluate.token_scores import TokenScorer, keyword_spans


def copy_items(pairs: list[tuple[str | None, str]], nlp, keyword_length_max: int, limit: int) -> list[dict]:
    """Up to `limit` held-out titles (hash order) with the keywords the encoder extracts from them that
    stand verbatim in the title: [{'category', 'title', 'keywords'}] (only titles with one or more)."""
    from pipeline.encode import extract_keywords, straighten_quotes

    ordered = sorted(pairs, key=lambda p: hashlib.sha256(f"copy\n{p[0]}\n{p[1]}".encode()).hexdigest())
    items = []
    for (category, title), doc in zip(ordered, nlp.pipe(straighten_quotes(t) for _, t in ordered)):
        keywords = [k for k in extract_keywords(doc, keyword_length_max) if keyword_spans(title, [k])]
        if keywords:
            items.append({"category": category, "title": title, "keywords": keywords})
        if len(items) == limit:
            break
    return items


def copy_test(model_path: Path, items: list[dict]) -> dict:
    """Nats per keyword of `items`' own keywords, after their own prompt and after another's; the
    difference (positive: the own prompt helps)."""
    if len(items) < 2:
        return {"titles": len(items), "own_nats_per_keyword": None, "other_nats_per_keyword": None, "difference": None}
    scorer = TokenScorer(model_path)
    try:
        own = other = 0.0
        keywords = 0
        for i, item in enumerate(items):
            text = item["title"] + END_TOKEN
            swapped = items[(i + 1) % len(items)]["keywords"]
            own += scorer.split(build_prefix(item["category"], item["keywords"]) + text, item["keywords"]).keyword_sum
            other += scorer.split(build_prefix(item["category"], swapped) + text, item["keywords"]).keyword_sum
            keywords += len(item["keywords"])
    finally:
        scorer.close()
    return {"titles": len(items), "keywords": keywords, "own_nats_per_keyword": round(own / keywords, 3),
            "other_nats_per_keyword": round(other / keywords, 3), "difference": round((own - other) / keywords, 3)}
