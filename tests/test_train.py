"""The train stage's resume bookkeeping (pipeline.train_log): the step counter, the loss log, the sessions.

These work on files laid out as gpt-2-simple leaves them, without TensorFlow; tests/test_kill.py
kills a real training run and resumes it.
"""
import io
import json

import pytest

from pipeline.errors import InputError
from pipeline.train_log import LossCapture, newest_checkpoint, read_counter


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


def loss_line(step, seconds):
    return f"[{step} | {seconds:.2f}] loss=1.{step:02d} avg=1.00\n"


def test_a_resume_cuts_the_loss_log_back_and_keeps_every_session(tmp_path):
    log, sessions = tmp_path / "loss.csv", tmp_path / "sessions.json"
    first = LossCapture(io.StringIO(), 100, log, start=0, sessions_path=sessions)
    for step in range(1, 25):  # killed at step 24; the last checkpoint is at 20
        first.write(loss_line(step, step / 10))
    assert json.loads(sessions.read_text()) == [
        {"steps": 24, "loop_seconds": 2.4, "wall_seconds": json.loads(sessions.read_text())[0]["wall_seconds"],
         "start_step": 0}]
    second = LossCapture(io.StringIO(), 100, log, start=20, sessions_path=sessions)
    assert [int(r.split(",")[0]) for r in log.read_text().splitlines()[1:]] == list(range(1, 21))
    for step in range(21, 31):
        second.write(loss_line(step, (step - 20) / 10))
    record = second.end_session()
    assert [int(r.split(",")[0]) for r in log.read_text().splitlines()[1:]] == list(range(1, 31))
    assert [(s["steps"], s["start_step"]) for s in record] == [(24, 0), (10, 20)]
    assert json.loads(sessions.read_text()) == record
    assert second.last_row()["step"] == 30
    # restore_from=fresh starts the sessions afresh.
    assert LossCapture(io.StringIO(), 100, log, start=0, sessions_path=sessions, keep_sessions=False).sessions == []
