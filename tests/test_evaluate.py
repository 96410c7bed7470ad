"""`make eval`'s split and prompts (pipeline.evaluate): deterministic, by title, never overlapping."""
import csv
import dataclasses

from pipeline.config import Config
from pipeline.eval_config import EvaluateConfig
from pipeline import evaluate
from pipeline.evaluate import eval_config, is_test, make_prompts, split_input


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
