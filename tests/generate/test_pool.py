"""Generation on a pool of Ray actors (generate.workers > 1; pipeline.generate.pool) with the tiny model trained
in the tests (conftest `trained`), on a real local Ray: the output equals the in-process path's byte for byte,
guided and unguided, with the checkpoint read in place or shipped through the object store, after an actor is
killed mid-job and after the driver is killed and the job re-run."""
import dataclasses
import os
import signal

import pytest

from tests.conftest import checkpoint, generate_to, read_jsonl, with_generate


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def job(trained, tmp_path_factory):
    """(cfg, reference): a guided job of 24 samples in 12 batches of 2 (with the unguided comparison pass)
    and its output from the in-process path (workers 1)."""
    from pipeline.generate import GuidanceConfig

    cfg, _ = trained
    cfg = dataclasses.replace(with_generate(cfg, count=3, batch_size=2),
                              guidance=GuidanceConfig(strength=8.0, end_bias=4.0, compare=True))
    reference = tmp_path_factory.mktemp("reference") / "generated.jsonl"
    generate_to(cfg, checkpoint(cfg), reference)
    return cfg, reference.read_bytes()


def pooled(cfg, **kw):
    """`cfg` with its generate section on a pool (`kw` overriding workers=2, one thread each)."""
    return dataclasses.replace(cfg, generate=dataclasses.replace(cfg.generate, **{"workers": 2, "threads": 1, **kw}))


def test_two_workers_with_the_checkpoint_shipped_as_on_a_cluster_write_the_in_process_bytes(
        job, ray_session, tmp_path, monkeypatch):
    # Ray is already up in this session, so start_ray keeps it instead of connecting to ray_address; what runs
    # is the cluster path: the actors sample from a copy of the checkpoint unpacked from the object store.
    from pipeline.generate import pool as generate_pool

    cfg, reference = job
    shipped = []
    real_ship = generate_pool.ship_checkpoint
    monkeypatch.setattr(generate_pool, "ship_checkpoint", lambda path: shipped.append(path) or real_ship(path))
    out = tmp_path / "generated.jsonl"
    stats = generate_to(pooled(cfg, ray_address="cluster.example:6379"), checkpoint(cfg), out)
    assert shipped == [checkpoint(cfg)]
    assert out.read_bytes() == reference
    assert stats["workers"] == 2 and stats["made_this_run"] == 24
    assert {r["guided"] for r in read_jsonl(out)} == {True, False}


def test_an_actor_killed_mid_job_loses_and_duplicates_nothing(job, ray_session, tmp_path, monkeypatch):
    import psutil

    from pipeline.generate import jobfile

    cfg, reference = job
    real_append = jobfile.JobFile.append
    appended, killed = [], []

    def append_then_kill(self, records):
        appended.extend(r["index"] for r in records)
        real_append(self, records)
        if not killed:
            # An actor's process, as `ps` shows it (Ray titles it ray::GenerateWorker...), killed with SIGKILL.
            actors = [p for p in psutil.process_iter(["cmdline"])
                      if "ray::GenerateWorker" in " ".join(p.info["cmdline"] or [])]
            assert actors, "no GenerateWorker process found"
            os.kill(actors[0].pid, signal.SIGKILL)
            killed.append(actors[0].pid)

    monkeypatch.setattr(jobfile.JobFile, "append", append_then_kill)
    out = tmp_path / "generated.jsonl"
    generate_to(pooled(cfg), checkpoint(cfg), out)
    assert killed and not psutil.pid_exists(killed[0])
    assert sorted(appended) == list(range(24))  # every sample written once
    assert out.read_bytes() == reference


def test_a_job_whose_driver_was_killed_resumes_on_the_pool(job, ray_session, tmp_path, monkeypatch):
    from pipeline.generate import jobfile

    cfg, reference = job
    real_append = jobfile.JobFile.append
    calls = []

    def append_then_die(self, records):
        calls.append(len(records))
        if len(calls) == 4:
            raise Killed()
        real_append(self, records)

    monkeypatch.setattr(jobfile.JobFile, "append", append_then_die)
    out = tmp_path / "generated.jsonl"
    with pytest.raises(Killed):
        generate_to(pooled(cfg), checkpoint(cfg), out)
    monkeypatch.setattr(jobfile.JobFile, "append", real_append)
    assert not out.exists() and len(read_jsonl(out.with_name(out.name + ".partial"))) == 6
    stats = generate_to(pooled(cfg), checkpoint(cfg), out)
    assert stats["resumed_from"] == 6 and stats["made_this_run"] == 18
    assert out.read_bytes() == reference


def test_best_of_n_on_two_workers_writes_the_in_process_records_and_candidates(job, ray_session, tmp_path):
    from pipeline.generate import generate

    cfg, _ = job
    cfg = dataclasses.replace(cfg, generate=dataclasses.replace(cfg.generate, candidates=2))
    outputs = []
    for name, run_cfg in (("one", cfg), ("pool", pooled(cfg))):
        out, side = tmp_path / name / "generated.jsonl", tmp_path / name / "generated.candidates.jsonl"
        out.parent.mkdir()
        stats = generate(run_cfg.generate, run_cfg.guidance, run_cfg.seed, checkpoint(cfg), out,
                         tmp_path / name / "stats.json", side)
        assert stats["made_this_run"] == 24 and not side.with_name(side.name + ".partial").exists()
        outputs.append((out.read_bytes(), side.read_bytes()))
    assert outputs[0] == outputs[1]
    kept, rejected = read_jsonl(tmp_path / "pool" / "generated.jsonl"), read_jsonl(tmp_path / "pool" /
                                                                                   "generated.candidates.jsonl")
    assert len(rejected) == len(kept) == 24 and {r["candidates"] for r in kept} == {2}
    assert {r["rank"] for r in rejected} == {2}
