"""Kill -9 each stage's real command mid-way, run it again, and check what it leaves.

Encode, generate and decode must end byte-identical to an uninterrupted run with the same seed;
train must end with a complete run whose logs list every step once (a resumed run is not
bit-identical to an uninterrupted one: docs/errors.md says why). Each command runs in its own
process group, which the test kills as a whole (Ray's and TensorFlow's helpers included).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"encode": ["keyword_encode.py"], "train": ["-m", "pipeline.train"],
            "generate": ["-m", "pipeline.generate"], "decode": ["keyword_decode.py"]}
TINY_MODEL = "model: {n_embd: 32, n_layer: 2, n_head: 2, vocab_size: 350}\n"


def write_config(tmp_path, name, data_dir, extra=""):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"seed: 5\ndata_dir: {data_dir}\n{extra}", encoding="utf-8")
    return path


def start(stage, config, *overrides):
    """The stage's command, started in a new process group; stderr goes to a file beside the config."""
    log = open(config.with_suffix(f".{stage}.log"), "ab")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_AUTH_MODE": "disabled"}
    return subprocess.Popen([sys.executable, *COMMANDS[stage], "--config", str(config), *overrides], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def run(stage, config, *overrides, timeout=240):
    proc = start(stage, config, *overrides)
    try:
        assert proc.wait(timeout) == 0, config.with_suffix(f".{stage}.log").read_text(errors="replace")[-3000:]
    finally:
        kill(proc)


def kill(proc):
    """SIGKILL the process group of `proc` (a no-op when it is gone)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def kill_when(proc, ready, timeout=180):
    """Kill `proc` as soon as `ready()` is true; fails if the command ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the command finished before it could be killed; make its job bigger"
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill"
        time.sleep(0.02)
    kill(proc)


def files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_encode_killed_mid_way(tmp_path):
    rng = random.Random(0)
    words = "dog cat pizza robot garden coffee book planet river cake train movie song city".split()
    rows = ["subreddit,title"] + [f"{rng.choice(['aww', 'food', 'pics'])},My {' '.join(rng.sample(words, 5))} {i}"
                                  for i in range(600)]
    titles = tmp_path / "titles.csv"
    titles.write_text("\n".join(rows) + "\n", encoding="utf-8")
    extra = f"encode: {{input: {titles}, workers: 2, batch_rows: 50}}\n"
    killed = write_config(tmp_path, "run", tmp_path / "data", extra)
    reference = write_config(tmp_path, "ref", tmp_path / "data", extra)
    run_dir = tmp_path / "data" / "runs" / "run"
    log = killed.with_suffix(".encode.log")
    # Killed once its Ray workers are encoding: nothing is written before the end.
    proc = start("encode", killed)
    kill_when(proc, lambda: log.is_file() and b"Started a local Ray instance" in log.read_bytes())
    assert not (run_dir / "encoded.txt").exists() and not (run_dir / "encode_stats.json").exists()
    run("encode", killed)
    run("encode", reference)
    ref_dir = tmp_path / "data" / "runs" / "ref"
    assert (run_dir / "encoded.txt").read_bytes() == (ref_dir / "encoded.txt").read_bytes()
    assert json.loads((run_dir / "encode_stats.json").read_text())["rows_encoded"] == 600
    assert [f for f in files(run_dir) if not f.startswith(".")] == ["encode_stats.json", "encoded.txt"]


def test_train_killed_mid_way_with_an_empty_counter(tmp_path):
    from tests.conftest import write_encoded

    config = write_config(tmp_path, "run", tmp_path / "data", TINY_MODEL +
                          "train: {steps: 60, save_every: 20, print_every: 100, learning_rate: 0.003}\n")
    run_dir = tmp_path / "data" / "runs" / "run"
    run_dir.mkdir(parents=True)
    write_encoded(run_dir / "encoded.txt", 300)
    ckpt = run_dir / "checkpoint" / "run1"
    loss = ckpt / "loss.csv"

    def past_checkpoint():
        # Killed between two checkpoints: steps after the one at 20 were trained and logged.
        return (ckpt / "model-20.index").is_file() and loss.is_file() and len(loss.read_text().splitlines()) > 23

    kill_when(start("train", config), past_checkpoint)
    steps_before = len(loss.read_text().splitlines()) - 1
    assert 22 <= steps_before < 60 and not (run_dir / "train.done").exists()
    (ckpt / "counter").write_text("")  # gpt-2-simple's counter, caught mid-write
    run("train", config)
    steps = [int(line.split(",")[0]) for line in loss.read_text().splitlines()[1:]]
    assert steps == list(range(1, 61))  # every step once: the log was cut back to the checkpoint
    record = json.loads((run_dir / "train.done").read_text())
    assert record["steps"] == 60 and (ckpt / "counter").read_text() == "60\n"
    # Both sessions are recorded; the killed one with every step it trained.
    assert [(s["start_step"], s["steps"]) for s in record["sessions"]] == [(0, steps_before), (20, 40)]


@pytest.fixture
def tiny_run(trained, tmp_path):
    """A copy of the shared tiny model's run folder, and a config naming it."""
    cfg, _ = trained
    shutil.copytree(cfg.paths.run_dir, tmp_path / "data" / "runs" / "run")
    train = json.dumps(json.loads(cfg.paths.train_done.read_text())["config"]["train"])
    extra = (TINY_MODEL + f"train: {train}\n" + "generate: {prompts_file: null, categories: [aww, science], "
             "keyword_sets: [[dog], [coffee, Big Bird]], count: 24, length: 24, batch_size: 8}\n")
    return write_config(tmp_path, "run", tmp_path / "data", extra), tmp_path / "data" / "runs" / "run"


def test_generate_killed_mid_way(tiny_run, tmp_path):
    config, run_dir = tiny_run
    partial = run_dir / "generated.jsonl.partial"
    proc = start("generate", config)
    kill_when(proc, lambda: partial.is_file() and partial.read_text().count("\n") >= 24)
    assert not (run_dir / "generated.jsonl").exists()
    run("generate", config)
    reference = tmp_path / "reference"
    shutil.copytree(run_dir, reference / "runs" / "ref", ignore=shutil.ignore_patterns("generate*"))
    ref_config = write_config(tmp_path, "ref", reference, config.read_text().split("\n", 2)[2])
    run("generate", ref_config)
    made = (run_dir / "generated.jsonl").read_bytes()
    assert made == (reference / "runs" / "ref" / "generated.jsonl").read_bytes() and made.count(b"\n") == 96
    assert not partial.exists() and not list(run_dir.glob("*.tmp"))


def test_decode_killed_mid_way(tmp_path):
    start_token, end_token = "<|startoftext|>", "<|endoftext|>"
    rng = random.Random(1)
    words = "dog cat pizza robot garden coffee book planet river cake train movie song city".split()
    data = tmp_path / "data"
    run_dir = data / "runs" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "encoded.txt").write_text(f"{start_token}~`aww~^dog~@My dog ate the cake{end_token}\n")
    records = [{"index": i, "category": "aww", "keywords": ["dog"], "seed": 1, "finished": True, "logprob": -1.0,
                "text": f"{start_token}~`aww~^dog~@My {' '.join(rng.sample(words, 4))} ran {i % 5000}{end_token}"}
               for i in range(20_000)]
    (run_dir / "generated.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    shutil.copytree(run_dir, data / "runs" / "ref")
    config, reference = write_config(tmp_path, "run", data), write_config(tmp_path, "ref", data)
    scratch = run_dir / "decoded.csv.dedupe.sqlite"
    proc = start("decode", config)
    kill_when(proc, scratch.is_file)
    time.sleep(0.5)  # decoding; nothing is written before the end
    kill(proc)
    assert not (run_dir / "decoded.csv").exists()
    run("decode", config)
    run("decode", reference)
    assert (run_dir / "decoded.csv").read_bytes() == (data / "runs" / "ref" / "decoded.csv").read_bytes()
    # The killed run's scratch database is gone; nothing but the outputs is left.
    assert files(run_dir) == ["decode_stats.json", "decoded.csv", "encoded.txt", "generated.jsonl"]
