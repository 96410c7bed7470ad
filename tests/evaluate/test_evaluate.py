"""`make eval`'s split and prompts (pipeline.evaluate.heldout): deterministic, by title, never overlapping."""
import csv
import dataclasses
from pathlib import Path

from pipeline.config import Config, EvaluateConfig
from pipeline.evaluate import heldout as evaluate
from pipeline.evaluate.heldout import eval_config, is_test, make_prompts, split_input


def _write(path, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["subreddit", "title"], *rows])


def _read(path):
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[1:]


ROWS = [[f"cat{i % 3}", f"Title number {i} about dogs and coffee"] for i in range(400)]


def test_split_is_deterministic_by_title_and_never_overlaps(tmp_path):
    _write(tmp_path / "in.csv", ROWS + [ROWS[7]])  # a repeated title lands on the same side
    counts = split_input(tmp_path / "in.csv", "title", 0.2, tmp_path / "train.csv", tmp_path / "test.csv")
    train, test = _read(tmp_path / "train.csv"), _read(tmp_path / "test.csv")
    assert counts == {"train": len(train), "test": len(test)} and len(train) + len(test) == 401
    assert not {r[1] for r in train} & {r[1] for r in test}
    assert 40 <= len(test) <= 120  # about 20 %
    # The same rows in another order, and another run: the same split, and the files are not rewritten.
    mtime = (tmp_path / "test.csv").stat().st_mtime_ns
    split_input(tmp_path / "in.csv", "title", 0.2, tmp_path / "train.csv", tmp_path / "test.csv")
    assert (tmp_path / "test.csv").stat().st_mtime_ns == mtime
    _write(tmp_path / "shuffled.csv", ROWS[::-1])
    split_input(tmp_path / "shuffled.csv", "title", 0.2, tmp_path / "a.csv", tmp_path / "b.csv")
    assert sorted(map(tuple, _read(tmp_path / "b.csv"))) == sorted({tuple(r) for r in test})
    assert all(is_test(r[1], 0.2) for r in test) and not any(is_test(r[1], 0.2) for r in train)


def test_prompts_come_from_held_out_titles_deterministically(tmp_path, nlp):
    _write(tmp_path / "test.csv", [["aww", "My old dog loves the snowy garden"], ["Science", "Coffee study"],
                                   ["aww", "Ok"]])
    pairs = evaluate.test_titles(tmp_path / "test.csv", "subreddit", "title")
    assert pairs[1] == ("science", "Coffee study")
    cfg = dataclasses.replace(Config(), evaluate=EvaluateConfig(prompts=5, samples_per_prompt=3))
    first = make_prompts(pairs, nlp, cfg)
    assert first == make_prompts(list(reversed(pairs)), nlp, cfg)
    assert {p["category"] for p in first} <= {"aww", "science"} and all(len(p["keywords"]) == 2 for p in first)
    assert all(p["count"] == 3 for p in first)


def test_the_evaluation_run_trains_on_the_split_and_prompts_from_the_test_part():
    ecfg = eval_config(Config(name="default"))
    assert ecfg.name == "default-eval" and ecfg.encode.input.endswith("default-eval/eval_train.csv")
    assert ecfg.generate.prompts_file.endswith("eval_prompts.yaml") and ecfg.guidance.compare


def test_a_code_change_reruns_the_stage_whose_code_it_is_and_every_later_one(tmp_path, monkeypatch):
    import os
    import shutil
    import time

    from pipeline import stages
    from pipeline.core import imports

    # A copy of the project's code, so that its mtimes can be moved without touching the checkout's.
    root = tmp_path / "root"
    shutil.copytree(imports.ROOT / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__", "web"))
    for script in ("keyword_encode.py", "keyword_decode.py"):
        shutil.copy(imports.ROOT / script, root / script)
    monkeypatch.setattr(imports, "ROOT", root)
    monkeypatch.setattr(stages, "ROOT", root)
    cfg = eval_config(Config(name="t", data_dir=str(tmp_path / "data")))
    paths = cfg.paths
    base = time.time() - 1000
    code = [p for p in root.rglob("*.py")]
    for p in code:
        os.utime(p, (base, base))
    for i, name in enumerate(evaluate.EVAL_STAGES):
        stage = stages.BY_NAME[name]
        inputs = [Path(f) for key in stage.config_reads for f in stages.config_value(cfg, key)]
        for p in inputs + [getattr(paths, stage.writes[0])]:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
            os.utime(p, (base, base) if p in inputs else (base + 10 * (i + 1),) * 2)
        slice_path = paths.section_dir / f"eval-{name}.json"
        slice_path.parent.mkdir(parents=True, exist_ok=True)
        slice_path.write_text(stages._slice(cfg, stage), encoding="utf-8")
    assert evaluate.stale_stages(cfg) == []

    # Not in any eval stage's code: nothing to redo.
    os.utime(root / "pipeline" / "export" / "bigquery.py", (base + 100,) * 2)
    assert evaluate.stale_stages(cfg) == []
    # Train's code (newer than train.done, older than what generate made): train and every later stage.
    os.utime(root / "pipeline" / "train" / "validation.py", (base + 25,) * 2)
    assert evaluate.stale_stages(cfg) == ["train", "generate", "decode"]
    # The format every stage reads: all of them.
    os.utime(root / "pipeline" / "core" / "format.py", (base + 100,) * 2)
    assert evaluate.stale_stages(cfg) == ["encode", "train", "generate", "decode"]


def test_the_evaluation_report_splits_the_log_prob_between_keywords_and_the_rest(trained, tmp_path):
    """evaluation() and its markdown on a real guided + unguided job of the tiny model, generated and decoded."""
    import shutil

    from pipeline import stages
    from pipeline.evaluate.report import evaluation, markdown
    from pipeline.generate import GuidanceConfig
    from tests.conftest import with_generate

    cfg, _ = trained
    run = dataclasses.replace(with_generate(cfg, count=2), data_dir=str(tmp_path / "data"),
                              guidance=GuidanceConfig(strength=8.0, end_bias=4.0, compare=True))
    shutil.copytree(cfg.paths.checkpoint_dir, run.paths.checkpoint_dir)
    shutil.copy(cfg.paths.encoded, run.paths.encoded)
    shutil.copy(cfg.paths.train_done, run.paths.train_done)
    for name in ("generate", "decode"):
        stages.run_stage(stages.BY_NAME[name], run)
    result = evaluation(run.paths, [("aww", "My dog and Big Bird")], {"train": 300, "test": 1}, 4)
    guided, unguided = result["passes"]["guided"], result["passes"]["unguided"]
    assert guided["keyword_token_pct"] > unguided["keyword_token_pct"]
    assert guided["keyword_token_logprob"] < 0 and guided["other_token_logprob"] < 0
    text = markdown(result)
    assert "300 rows trained on, 1 held out" in text and "log-prob of a keyword token" in text
    # A model that began as random weights (pipeline.train.released's marker beside the checkpoint, issue 22).
    assert result["base_untrained"] is False and "UNTRAINED" not in text
    run.paths.untrained_marker.write_text("random weights", encoding="utf-8")
    assert evaluation(run.paths, [("aww", "My dog and Big Bird")], {"train": 300, "test": 1}, 4)["base_untrained"]
    assert markdown({**result, "base_untrained": True}).split("\n\n")[1].startswith("**UNTRAINED MODEL")
