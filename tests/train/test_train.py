"""The train stage: real training of the tiny model (conftest `trained`), resuming, gpt-2-simple
compatibility, and the resume bookkeeping (pipeline.train.log: step counter, loss log, sessions).

The bookkeeping tests work on files laid out as gpt-2-simple leaves them, without TensorFlow;
tests/test_kill.py kills a real training run and resumes it.
"""
import dataclasses
import io
import json

import pytest

from pipeline.core.errors import ConfigError, InputError
from pipeline.core.format import build_prefix
from pipeline.train.log import LossLog, newest_checkpoint, read_counter
from tests.conftest import TINY_STEPS as STEPS, checkpoint, train_run


def fake_checkpoint(folder, step, shards=1, index=True):
    """The files TensorFlow's Saver writes for `model-<step>`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        (folder / f"model-{step}.data-{i:05d}-of-{shards:05d}").write_bytes(b"x")
    if index:
        (folder / f"model-{step}.index").write_bytes(b"x")


def test_an_empty_counter_is_recovered_from_the_newest_complete_checkpoint(tmp_path):
    fake_checkpoint(tmp_path, 10)
    fake_checkpoint(tmp_path, 20)
    fake_checkpoint(tmp_path, 30, index=False)  # killed while saving: no index yet
    (tmp_path / "counter").write_text("")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model-30"\n')
    assert newest_checkpoint(tmp_path) == 20
    assert read_counter(tmp_path) == 20
    # gpt-2-simple reads both files: the counter and the checkpoint TensorFlow restores agree.
    assert (tmp_path / "counter").read_text() == "20\n"
    assert 'model_checkpoint_path: "model-20"' in (tmp_path / "checkpoint").read_text()


def test_a_missing_counter_beside_a_checkpoint_is_recovered(tmp_path):
    fake_checkpoint(tmp_path, 7, shards=2)
    assert read_counter(tmp_path) == 7
    assert read_counter(tmp_path / "nothing") == 0


def test_an_unreadable_counter_without_a_checkpoint_stops_the_run(tmp_path):
    (tmp_path / "counter").write_text("1x\n")
    fake_checkpoint(tmp_path, 5, shards=2)
    (tmp_path / "model-5.data-00001-of-00002").unlink()  # an incomplete save does not count
    with pytest.raises(InputError, match=r"counter: not a step number \('1x'\) and no complete checkpoint"):
        read_counter(tmp_path)


def log_step(log, step, seconds):
    log.record(step, round(seconds, 2), 1 + step / 100, 1.0)


def test_a_resume_cuts_the_loss_log_back_and_keeps_every_session(tmp_path):
    log, sessions = tmp_path / "loss.csv", tmp_path / "sessions.json"
    first = LossLog(io.StringIO(), 100, log, start=0, sessions_path=sessions)
    for step in range(1, 25):  # killed at step 24; the last checkpoint is at 20
        log_step(first, step, step / 10)
    assert json.loads(sessions.read_text()) == [
        {"steps": 24, "loop_seconds": 2.4, "wall_seconds": json.loads(sessions.read_text())[0]["wall_seconds"],
         "start_step": 0}]
    second = LossLog(io.StringIO(), 100, log, start=20, sessions_path=sessions)
    assert [int(r.split(",")[0]) for r in log.read_text().splitlines()[1:]] == list(range(1, 21))
    for step in range(21, 31):
        log_step(second, step, (step - 20) / 10)
    record = second.end_session()
    assert [int(r.split(",")[0]) for r in log.read_text().splitlines()[1:]] == list(range(1, 31))
    assert [(s["steps"], s["start_step"]) for s in record] == [(24, 0), (10, 20)]
    assert json.loads(sessions.read_text()) == record
    assert second.last_row()["step"] == 30
    # restore_from=fresh starts the sessions afresh.
    assert LossLog(io.StringIO(), 100, log, start=0, sessions_path=sessions, keep_sessions=False).sessions == []


def test_a_kill_between_the_log_row_and_the_sessions_write_is_made_good_on_resume(tmp_path):
    log, sessions = tmp_path / "loss.csv", tmp_path / "sessions.json"
    first = LossLog(io.StringIO(), 100, log, start=0, sessions_path=sessions)
    for step in range(1, 24):
        log_step(first, step, step / 10)
    # Killed after step 23's log row, before its sessions write: the file says 22 steps.
    short = json.loads(sessions.read_text())
    short[0]["steps"] = 22
    sessions.write_text(json.dumps(short))
    second = LossLog(io.StringIO(), 100, log, start=20, sessions_path=sessions)
    assert second.sessions[0]["steps"] == 23


def test_training_learns_and_records_its_run(trained):
    cfg, record = trained
    marker = json.loads(cfg.paths.train_done.read_text())
    assert marker == record
    assert marker["steps"] == STEPS and marker["config"]["model"]["n_embd"] == 32
    assert marker["config"]["train"]["steps"] == STEPS and marker["tokens_per_step"] == 1024
    losses = [float(line.split(",")[2]) for line in (checkpoint(cfg) / "loss.csv").read_text().splitlines()[1:]]
    assert len(losses) == STEPS and marker["final_loss"] == losses[-1]
    # A fresh model starts near ln(vocab) ~ 5.8; trained on this tiny regular text it falls far below.
    assert losses[0] > 4.5 and max(losses[-10:]) < 2.0
    assert marker["tokens_per_s"] > 0 and marker["sessions"][0]["steps"] == STEPS
    assert (checkpoint(cfg) / "counter").read_text().strip() == str(STEPS)


def test_training_resumes_with_only_the_missing_steps(trained, tmp_path):
    import shutil

    cfg, _ = trained
    # Work on a copy so the shared model stays as it is.
    # The extra steps also run with oneDNN bfloat16 mixed precision, which must not change the checkpoint format.
    copy = dataclasses.replace(cfg, data_dir=str(tmp_path),
                               train=dataclasses.replace(cfg.train, steps=STEPS + 5, precision="bf16"))
    shutil.copytree(cfg.paths.run_dir, copy.paths.run_dir)
    record = train_run(copy)
    assert record["steps"] == STEPS + 5
    assert [s["steps"] for s in record["sessions"]] == [STEPS, 5]
    rows = (checkpoint(copy) / "loss.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, STEPS + 6))
    # Asking again for the same number of steps trains nothing more.
    again = train_run(copy)
    assert again["sessions"] == record["sessions"] and again["steps"] == STEPS + 5


def test_checkpoint_works_with_gpt2_simple_generate(trained):
    import gpt_2_simple as gpt2
    import tensorflow as tf

    cfg, _ = trained
    prefix = build_prefix("science", ["coffee"])
    with tf.Graph().as_default():
        sess = gpt2.start_tf_sess()
        gpt2.load_gpt2(sess, checkpoint_dir=str(cfg.paths.checkpoint_dir), run_name=cfg.train.run_name)
        texts = gpt2.generate(sess, checkpoint_dir=str(cfg.paths.checkpoint_dir), run_name=cfg.train.run_name,
                              prefix=prefix, length=40, nsamples=2, batch_size=2, return_as_list=True, seed=1)
        sess.close()
    assert all(t.startswith(prefix) for t in texts)


def test_finetune_options_accumulation_transformer_layers_only_and_samples(trained, tmp_path, capsys):
    import shutil

    import numpy as np
    import tensorflow as tf

    cfg, _ = trained
    copy = dataclasses.replace(cfg, data_dir=str(tmp_path), train=dataclasses.replace(
        cfg.train, steps=STEPS + 4, accumulate_gradients=2, only_train_transformer_layers=True, sample_every=2,
        sample_length=12, save_every=0))
    shutil.copytree(cfg.paths.run_dir, copy.paths.run_dir)
    before = {name: tf.train.load_variable(str(checkpoint(cfg)), name) for name in ("model/wte", "model/h0/mlp/c_fc/w")}
    record = train_run(copy)
    after = {name: tf.train.load_variable(str(checkpoint(copy)), name) for name in before}
    assert record["steps"] == STEPS + 4 and record["tokens_per_step"] == 2 * 1024
    # Only the blocks were trained: the embeddings are as they were, a block's weights moved.
    assert np.array_equal(after["model/wte"], before["model/wte"])
    assert not np.array_equal(after["model/h0/mlp/c_fc/w"], before["model/h0/mlp/c_fc/w"])
    samples = sorted(p.name for p in (copy.paths.checkpoint_dir / "samples" / copy.train.run_name).iterdir())
    assert samples == [f"samples-{STEPS + 2}", f"samples-{STEPS + 4}"]
    assert f"======== SAMPLE at step {STEPS + 2} ========" in capsys.readouterr().out
    # The checkpoint folder is a model folder, as finetune left it (generate reads its vocabulary there).
    assert all((checkpoint(copy) / f).is_file() for f in ("hparams.json", "encoder.json", "vocab.bpe", "counter"))


def test_the_learning_rate_falls_along_a_cosine_to_a_tenth_and_a_resumed_run_goes_on_along_it(trained, tmp_path):
    import shutil

    import numpy as np
    import tensorflow as tf

    from pipeline.train import TrainConfig
    from pipeline.train.loop import learning_rate_at

    t = TrainConfig(learning_rate=1e-3, lr_decay_steps=100)
    rates = [learning_rate_at(t, n) for n in range(1, 200)]
    assert rates[0] == pytest.approx(1e-3) and rates[50] == pytest.approx(5.5e-4)
    assert rates[100:] == pytest.approx([1e-4] * 99) and all(a >= b for a, b in zip(rates, rates[1:]))
    assert learning_rate_at(TrainConfig(learning_rate=1e-3), 500) == 1e-3  # 0: finetune's constant rate
    with pytest.raises(ConfigError, match="lr_decay_steps"):
        TrainConfig(lr_decay_steps=-1)

    # The rate reaches the optimiser, at the run's step count: resumed past the fall, all three steps take a
    # tenth of the rate (counted from the session's first step, one would take it whole), so the same steps
    # from the same weights move them far less.
    cfg, _ = trained
    moved = {}
    for name, decay in (("constant", 0), ("decayed", 1)):
        copy = dataclasses.replace(cfg, data_dir=str(tmp_path / name),
                                   train=dataclasses.replace(cfg.train, steps=STEPS + 3, lr_decay_steps=decay))
        shutil.copytree(cfg.paths.run_dir, copy.paths.run_dir)
        train_run(copy)
        after = tf.train.load_variable(str(checkpoint(copy)), "model/h0/mlp/c_fc/w")
        moved[name] = np.abs(after - tf.train.load_variable(str(checkpoint(cfg)), "model/h0/mlp/c_fc/w")).sum()
    assert 0 < moved["decayed"] < 0.25 * moved["constant"]
