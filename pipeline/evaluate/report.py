"""The result of `make eval` (pipeline.evaluate.heldout): generated titles against held-out real ones.

Inputs are the evaluation run's files: decoded.csv and decode_stats.json (what decode made of the
guided and unguided samples), generated.jsonl and the trained model (each token's log-probability,
keywords apart: pipeline.evaluate.token_scores), encoded.txt (the training titles) and the held-out titles.
"""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from pipeline.core.io import write_json, write_text
from pipeline.core.paths import UNTRAINED_MARKER, RunPaths
from pipeline.evaluate.token_scores import split_records
from pipeline.report import Realism, Reference, realism_by_group, realism_markdown, training_pairs

# The goals of guided titles (issue 13): against the unguided samples and the real titles.
LENGTH_TOLERANCE = 0.15  # guided mean words within 15 % of the training titles' mean
LOGPROB_GAP = 0.5  # guided log-prob/token at most this far below unguided
MIN_COPY_GAP = 3.0  # nats per keyword a title's own prompt must add (a model that copies)
MIN_ALL_PRESENT = 95.0
MIN_VALID = 97.0
_NAMES = {"true": "guided", "false": "unguided"}


def _pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def evaluation(paths: RunPaths, test_pairs: list[tuple[str | None, str]], split: dict, n_prompts: int,
               copy: dict | None = None) -> dict:
    """eval.json's content for the evaluation run in `paths`; `test_pairs`: held-out (category, title);
    `split`: rows on each side; `n_prompts`: prompts made from held-out titles; `copy`: the copy test's
    result (pipeline.evaluate.copy_test), when measured."""
    stats = json.loads(paths.decode_stats.read_text(encoding="utf-8"))
    train_pairs = training_pairs(paths.encoded)
    ref = Reference(train_pairs, lengths=test_pairs)
    with paths.decoded.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    by_pass = {}
    for value, name in _NAMES.items():
        mine = [r for r in rows if r.get("guided") == value]
        with_kw = [r for r in mine if r["keyword_coverage"] != ""]
        counts = stats["groups"].get("guided", {}).get(value, {})
        by_pass[name] = {
            "samples": counts.get("samples", 0), "valid_pct": _pct(counts.get("valid", 0), counts.get("samples", 0)),
            "distinct_titles": len(mine),
            "all_keywords_present_pct": _pct(sum(r["all_keywords_present"] == "true" for r in with_kw), len(with_kw)),
            "novel_pct": _pct(sum(r["novel"] == "true" for r in mine), len(mine)),
            "mean_logprob": counts.get("mean_logprob"),
        }
    with paths.generated.open(encoding="utf-8") as f:
        splits = split_records(paths.checkpoint, (json.loads(line) for line in f))
    for name, tokens in splits.items():
        if name in by_pass:
            by_pass[name].update(tokens.summary())
    realism = realism_by_group(((r["category"], r.get("guided"), r["title"]) for r in rows), ref)
    real = Realism()
    for _, title in test_pairs:
        real.add(title, ref)
    realism["overall"]["real"] = real.result(ref.target_lengths())
    train_mean = statistics.fmean(len(t.split()) for _, t in train_pairs) if train_pairs else None
    result = {"base_untrained": paths.untrained_marker.is_file(), "split": split, "test_titles": len(test_pairs),
              "training_titles": len(train_pairs), "prompts": n_prompts,
              "training_mean_words": round(train_mean, 2) if train_mean else None, "passes": by_pass, "realism": realism}
    if copy is not None:
        result["copy_test"] = copy
    result["checks"] = checks(result)
    return result


def checks(result: dict) -> dict[str, dict]:
    """The goals, each {'value', 'goal', 'ok'}: guided length near the training titles', fluency near
    unguided, keywords present, valid, and the copy test (pipeline.evaluate.copy_test)."""
    guided, unguided = result["passes"]["guided"], result["passes"]["unguided"]
    words = result["realism"]["overall"].get("true", {}).get("mean_words")
    train = result["training_mean_words"]
    gap = (None if guided["mean_logprob"] is None or unguided["mean_logprob"] is None
           else round(unguided["mean_logprob"] - guided["mean_logprob"], 4))
    ratio = round(words / train - 1, 4) if words and train else None
    copy_gap = (result.get("copy_test") or {}).get("difference")
    return {
        "guided mean words vs training mean": {"value": ratio, "goal": f"within ±{LENGTH_TOLERANCE:.0%}",
                                               "ok": ratio is not None and abs(ratio) <= LENGTH_TOLERANCE},
        "log-prob/token, unguided minus guided": {"value": gap, "goal": f"<= {LOGPROB_GAP}",
                                                  "ok": gap is not None and gap <= LOGPROB_GAP},
        "guided titles with every keyword %": {"value": guided["all_keywords_present_pct"],
                                               "goal": f">= {MIN_ALL_PRESENT:g}",
                                               "ok": (guided["all_keywords_present_pct"] or 0) >= MIN_ALL_PRESENT},
        "guided valid %": {"value": guided["valid_pct"], "goal": f">= {MIN_VALID:g}",
                           "ok": (guided["valid_pct"] or 0) >= MIN_VALID},
        "copy test: own keywords likelier than another's, nats per keyword": {
            "value": copy_gap, "goal": f">= {MIN_COPY_GAP:g}", "ok": copy_gap is not None and copy_gap >= MIN_COPY_GAP},
    }


def markdown(result: dict) -> str:
    """eval.md: the goals, then guided / unguided / real side by side, then per category."""
    fmt = (lambda v: "n/a" if v is None else f"{v:g}" if isinstance(v, float) else str(v))
    s = result["split"]
    lines = ["# Evaluation on held-out titles", ""]
    if result.get("base_untrained"):
        lines += [f"**UNTRAINED MODEL: the base model's weights are random** (`{UNTRAINED_MARKER}` in the model "
                  "folder, written by `python -m pipeline.train.released`); this evaluation measures the pipeline "
                  "at the model's shape, not the model, and no goal below means anything.", ""]
    lines += [f"{s['train']} rows trained on, {s['test']} held out ({result['test_titles']} titles); "
              f"{result['prompts']} prompts from held-out titles (category + keywords the encoder extracts). "
              f"Training titles: {result['training_titles']}, mean {fmt(result['training_mean_words'])} words.", "",
              "| goal | value | target | met |", "|---|---|---|---|"]
    lines += [f"| {name} | {fmt(c['value'])} | {c['goal']} | {'yes' if c['ok'] else 'NO'} |"
              for name, c in result["checks"].items()]
    lines += ["", "| pass | samples | valid % | distinct titles | all keywords present % | novel % | log-prob/token "
              "| keyword tokens % | log-prob of a keyword token | of any other token |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {p['samples']} | {fmt(p['valid_pct'])} | {p['distinct_titles']} | "
              f"{fmt(p['all_keywords_present_pct'])} | {fmt(p['novel_pct'])} | {fmt(p['mean_logprob'])} | "
              f"{fmt(p.get('keyword_token_pct'))} | "
              f"{fmt(p.get('keyword_token_logprob'))} | {fmt(p.get('other_token_logprob'))} |"
              for name, p in result["passes"].items()]
    lines += ["", "Keyword tokens: the tokens of the requested keywords in the finished samples (re-tokenised and "
              "scored by the model, pipeline/evaluate/token_scores.py); the last two columns split the log-prob/token "
              "between them and every other token, so a gap that is all in the keyword tokens means the "
              "title around them reads as the model would write it."]
    c = result.get("copy_test")
    if c and c.get("difference") is not None:
        lines += ["", f"Copy test ({c['titles']} held-out titles, {c['keywords']} keywords standing in them, "
                  f"pipeline/evaluate/copy_test.py): their keywords' tokens cost {fmt(-c['own_nats_per_keyword'])} nats "
                  f"per keyword after a prompt with their own keywords, {fmt(-c['other_nats_per_keyword'])} after "
                  f"another title's: {fmt(c['difference'])} nats of copying."]
    lines += ["", "## Do they read like real titles?", ""]
    lines += realism_markdown(result["realism"], "the held-out titles (of the same category, per category)")
    return "\n".join(lines)


def write_evaluation(result: dict, json_path: Path, md_path: Path) -> None:
    """Write eval.json and eval.md."""
    write_json(json_path, result)
    write_text(md_path, markdown(result) + "\n")
