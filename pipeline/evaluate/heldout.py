"""`make eval`: judge a model on titles it never saw.

    python -m pipeline.evaluate --config configs/default.yaml [section.key=value ...]

1. Split the encode input by a hash of each title: `evaluate.test_fraction` of the titles are
   held out (the same title always lands on the same side, whatever the seed or row order).
2. Encode and train on the rest only, in the run folder data/runs/<config>-eval/.
3. Prompt with `evaluate.prompts` held-out titles: their category and `keywords_per_prompt` of
   the keywords the encoder extracts from them; generate guided and unguided (same seeds).
4. Decode, and compare with the held-out titles: keywords present, valid, fluency (the model's
   log-prob per token), length, vocabulary, near-copies and repeats (pipeline.report.realism), overall
   and per category, and the copy test (pipeline.evaluate.copy_test) -> eval.json and eval.md in
   the run folder.

A stage is skipped when its output is newer than its inputs and its code (the modules make's rule
for it lists, pipeline.stages.code_files) and its config slice is unchanged, so a second `make eval`
after changing only `guidance:` generates again without training; a stage that runs again runs
every later one again too.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import random
import sys
from pathlib import Path

import yaml

from pipeline import stages
from pipeline.config import Config, load_config
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.format import clean_text, normalise_category
from pipeline.core.io import atomic_path
from pipeline.encode import extract_keywords, straighten_quotes

_FIELD_LIMIT = 2**31 - 1
COPY_TEST_TITLES = 200  # held-out titles the copy test teacher-forces


def is_test(title: str, fraction: float) -> bool:
    """Whether `title` is held out: the first 8 bytes of its SHA-256 (of the stripped text), read as
    a fraction of 2**64, fall below `fraction`. Depends on nothing but the title."""
    h = int.from_bytes(hashlib.sha256(title.strip().encode("utf-8", "surrogateescape")).digest()[:8], "big")
    return h / 2**64 < fraction


def split_input(input_csv: Path, title_field: str, fraction: float, train_csv: Path, test_csv: Path) -> dict:
    """Write the rows of `input_csv` to `train_csv` or `test_csv` (same header) by `is_test` of their
    title column. Rows the csv module cannot pair with the header go to train, where encode counts
    them. Files are rewritten only when their text changes. Returns {'train': n, 'test': n}."""
    csv.field_size_limit(_FIELD_LIMIT)
    if not input_csv.is_file():
        raise InputError(f"encode.input: {input_csv} does not exist")
    with input_csv.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or title_field not in header:
            raise InputError(f"{input_csv}: no column {title_field!r} to split on (columns: {header})")
        col = header.index(title_field)
        parts: dict[str, list[list[str]]] = {"train": [], "test": []}
        for row in reader:
            test = len(row) == len(header) and is_test(row[col], fraction)
            parts["test" if test else "train"].append(row)
    for name, path in (("train", train_csv), ("test", test_csv)):
        _write_csv_if_changed(path, header, parts[name])
    return {name: len(rows) for name, rows in parts.items()}


def _write_csv_if_changed(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write a CSV atomically, keeping the old file (and its mtime, which make-like freshness reads)
    when the text is the same."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    _write_if_changed(path, buffer.getvalue())


def _write_if_changed(path: Path, text: str) -> None:
    data = text.encode("utf-8", "surrogateescape")
    if path.is_file() and path.read_bytes() == data:
        return
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def test_titles(test_csv: Path, category_field: str | None, title_field: str) -> list[tuple[str | None, str]]:
    """The held-out (category, title) pairs, normalised as encode does; empty titles left out."""
    with test_csv.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        pairs = []
        for row in csv.DictReader(f):
            title = clean_text(row[title_field] or "")
            category = normalise_category(row[category_field]) if category_field else None
            if title:
                pairs.append((category, title))
    return pairs


def make_prompts(pairs: list[tuple[str | None, str]], nlp, cfg: Config) -> list[dict]:
    """Prompt rows from held-out titles: the first `evaluate.prompts` titles in hash order that have at
    least `keywords_per_prompt` keywords, each with its category and that many of them, drawn with a
    generator seeded by the run's seed and the title."""
    ev, enc = cfg.evaluate, cfg.encode
    ordered = sorted(pairs, key=lambda p: hashlib.sha256(f"{p[0]}\n{p[1]}".encode()).hexdigest())
    rows = []
    for (category, title), doc in zip(ordered, nlp.pipe(straighten_quotes(t) for _, t in ordered)):
        keywords = extract_keywords(doc, enc.keyword_length_max)
        if len(keywords) < ev.keywords_per_prompt:
            continue
        chosen = random.Random(f"{cfg.seed}:{title}").sample(keywords, ev.keywords_per_prompt)
        rows.append({"category": category, "keywords": chosen, "count": ev.samples_per_prompt})
        if len(rows) == ev.prompts:
            break
    return rows


def eval_config(cfg: Config) -> Config:
    """The evaluation run's config: `cfg` renamed `<name>-eval`, encoding the training part of the
    split and generating from the held-out prompts, guided and unguided."""
    name = f"{cfg.name}-eval"
    paths = dataclasses.replace(cfg, name=name).paths
    return dataclasses.replace(
        cfg, name=name,
        encode=dataclasses.replace(cfg.encode, input=str(paths.eval_train_csv)),
        generate=dataclasses.replace(cfg.generate, prompts_file=str(paths.eval_prompts), categories=(),
                                     keyword_sets=()),
        guidance=dataclasses.replace(cfg.guidance, compare=True))


EVAL_STAGES = ("encode", "train", "generate", "decode")


def _fresh(stage: stages.Stage, cfg: Config) -> bool:
    """Whether `stage`'s first output exists, is newer than its inputs and its code (the files make's
    rule for it lists) and was made with this config slice."""
    paths = cfg.paths
    target = getattr(paths, stage.writes[0])
    slice_path = paths.section_dir / f"eval-{stage.name}.json"
    if not target.exists() or not slice_path.is_file():
        return False
    if slice_path.read_text(encoding="utf-8") != stages._slice(cfg, stage):
        return False
    inputs = [getattr(paths, r) for r in stage.reads]
    inputs += [Path(f) for key in stage.config_reads for f in stages.config_value(cfg, key)]
    inputs += [stages.ROOT / f for f in stages.code_files(stage)]
    made = target.stat().st_mtime
    return all(not p.is_file() or p.stat().st_mtime <= made for p in inputs)


def stale_stages(cfg: Config) -> list[str]:
    """The stages of EVAL_STAGES to run: from the first one that is not fresh on, every later one too."""
    for i, name in enumerate(EVAL_STAGES):
        if not _fresh(stages.BY_NAME[name], cfg):
            return list(EVAL_STAGES[i:])
    return []


def run_pipeline(cfg: Config, log=print) -> None:
    """Encode, train, generate and decode `cfg` (the evaluation run), skipping fresh stages."""
    todo = stale_stages(cfg)
    for name in EVAL_STAGES:
        stage = stages.BY_NAME[name]
        if name not in todo:
            log(f"evaluate: {name} is up to date")
            continue
        log(stages.run_stage(stage, cfg))
        slice_path = cfg.paths.section_dir / f"eval-{stage.name}.json"
        slice_path.parent.mkdir(parents=True, exist_ok=True)
        slice_path.write_text(stages._slice(cfg, stage), encoding="utf-8")


def evaluate(cfg: Config, log=print) -> dict:
    """The whole evaluation of `cfg` (see the module doc); returns eval.json's content."""
    from pipeline.core.nlp import load_spacy
    from pipeline.evaluate.report import evaluation, write_evaluation

    ecfg = eval_config(cfg)
    paths = ecfg.paths
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    title_field = cfg.encode.title_field
    if not title_field:
        raise ConfigError("encode.title_field: evaluation needs a title column")
    counts = split_input(Path(cfg.encode.input), title_field, cfg.evaluate.test_fraction,
                         paths.eval_train_csv, paths.eval_test_csv)
    log(f"evaluate: {counts['train']} rows to train on, {counts['test']} held out")
    pairs = test_titles(paths.eval_test_csv, cfg.encode.category_field, title_field)
    nlp = load_spacy(cfg.encode.spacy_model)
    prompts = make_prompts(pairs, nlp, cfg)
    if not prompts:
        raise InputError(f"{paths.eval_test_csv}: no held-out title has {cfg.evaluate.keywords_per_prompt} keywords")
    _write_if_changed(paths.eval_prompts, yaml.safe_dump({"prompts": prompts}, sort_keys=False, allow_unicode=True))
    run_pipeline(ecfg, log)
    from pipeline.evaluate.copy_test import copy_items, copy_test

    copy = copy_test(paths.checkpoint, copy_items(pairs, nlp, cfg.encode.keyword_length_max, COPY_TEST_TITLES))
    result = evaluation(paths, pairs, counts, len(prompts), copy)
    write_evaluation(result, paths.eval_json, paths.eval_md)
    return result


def main(argv: list[str]) -> int:
    """`--config FILE [overrides]`; prints eval.md. Config and input errors: one line, status 2."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_intermixed_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        evaluate(cfg)
    except (ConfigError, InputError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    paths = eval_config(cfg).paths
    print(paths.eval_md.read_text(encoding="utf-8"))
    print(f"evaluate: {paths.eval_json}, {paths.eval_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
