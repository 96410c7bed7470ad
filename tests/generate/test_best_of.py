"""Best-of-n (pipeline.generate.best_of, `generate.candidates`) on the tiny model trained in the tests."""
import dataclasses

import numpy as np

from pipeline.core.format import END_TOKEN as E, START_TOKEN as S
from pipeline.generate import GuidanceConfig, generate
from pipeline.generate.best_of import MISSING_PENALTY, length_loglik, score
from pipeline.generate.sampling import Draw
from tests.conftest import checkpoint, read_jsonl, with_generate


def _draw(title, logprob, finished=True):
    return Draw(text=f"{S}~`aww~^dog~@{title}" + (E if finished else ""), finished=finished, logprob=logprob)


def test_the_score_puts_keywords_first_then_fluency_then_length():
    pool = np.array([5, 5, 5, 6, 9])
    assert score(_draw("my dog is here now", -3.0), ["dog"], pool) > score(_draw("my cat", -1.0), ["dog"], pool)
    assert score(_draw("my cat", -1.0), ["dog"], pool) < -MISSING_PENALTY + 0
    assert score(_draw("a dog b c d", -2.0), ["dog"], pool) > score(_draw("a dog b c d", -2.5), ["dog"], pool)
    # Same fluency: the more common length wins.
    assert score(_draw("a dog b c d", -2.0), ["dog"], pool) > score(_draw("a dog b c d e f", -2.0), ["dog"], pool)
    assert score(_draw("a dog", -0.5, finished=False), ["dog"], pool) < score(_draw("my cat", -9.0), ["dog"], pool)
    assert length_loglik(3, None) == 0.0


def test_best_of_n_keeps_the_highest_scoring_candidate_and_writes_the_others(trained, tmp_path):
    cfg, _ = trained
    k = 3
    cfg = with_generate(cfg, count=2, candidates=k)
    cfg = dataclasses.replace(cfg, guidance=GuidanceConfig(strength=8.0, end_bias=4.0, compare=True))
    out, side = tmp_path / "generated.jsonl", tmp_path / "generated.candidates.jsonl"
    stats = generate(cfg.generate, cfg.guidance, cfg.seed, checkpoint(cfg), out, tmp_path / "stats.json", side)
    kept, rejected = read_jsonl(out), read_jsonl(side)
    assert len(kept) == stats["samples"] and len(rejected) == (k - 1) * len(kept)
    assert not (tmp_path / "generated.candidates.jsonl.partial").exists()
    by_index = {}
    for r in rejected:
        by_index.setdefault(r["index"], []).append(r)
    for r in kept:
        others = by_index[r["index"]]
        assert r["rank"] == 1 and sorted(o["rank"] for o in others) == list(range(2, k + 1))
        assert all(r["score"] >= o["score"] for o in others) and r["candidates"] == k
        assert sorted([r["row"]] + [o["row"] for o in others]) == list(range(k))
        assert all((o["guided"], o["seed"], o["keywords"]) == (r["guided"], r["seed"], r["keywords"]) for o in others)
    # Candidates differ (each row draws its own random numbers).
    assert any(o["text"] != kept[0]["text"] for o in by_index[kept[0]["index"]])
