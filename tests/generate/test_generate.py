"""The generate stage on the tiny model trained in the tests (conftest `trained`): the records it writes,
its batch plan, and resuming an interrupted job."""
import json

import pytest

from pipeline.core.format import END_TOKEN, build_prefix, parse
from tests.conftest import checkpoint, generate_to, read_jsonl, with_generate


def test_generated_samples_carry_the_prompt_and_follow_the_format(trained, tmp_path):
    cfg, _ = trained
    job = with_generate(cfg)
    out = tmp_path / "generated.jsonl"
    stats = generate_to(job, checkpoint(cfg), out)
    records = read_jsonl(out)
    assert [r["index"] for r in records] == list(range(12)) and stats["samples"] == 12
    for r in records:
        assert set(r) == {"index", "category", "keywords", "seed", "text", "finished", "logprob"}
        assert r["logprob"] < 0
        prefix = build_prefix(r["category"], r["keywords"])
        assert r["text"].startswith(prefix)
        assert r["finished"] == r["text"].endswith(END_TOKEN)
        assert r["text"].count(END_TOKEN) <= 1
    by_prompt = {(r["category"], tuple(r["keywords"])) for r in records}
    assert by_prompt == {("aww", ("dog", "Big-Bird")), ("aww", ("coffee",)), ("science", ("dog", "Big-Bird")),
                         ("science", ("coffee",))}
    finished = [r for r in records if r["finished"]]
    assert len(finished) >= 10
    for r in finished:
        doc = parse(r["text"]).document
        assert doc.category == r["category"] and list(doc.keywords) == r["keywords"] and doc.title


class Killed(Exception):
    pass


def test_interrupted_generation_resumes_without_duplicates(trained, tmp_path, monkeypatch):
    from pipeline.generate import jobfile

    cfg, _ = trained
    job = with_generate(cfg, count=5, batch_size=3)
    reference = tmp_path / "reference.jsonl"
    generate_to(job, checkpoint(cfg), reference)

    out = tmp_path / "generated.jsonl"
    real_append = jobfile.JobFile.append
    calls = []

    def append_then_die(self, records):
        calls.append(len(records))
        if len(calls) == 3:
            raise Killed()
        real_append(self, records)

    monkeypatch.setattr(jobfile.JobFile, "append", append_then_die)
    with pytest.raises(Killed):
        generate_to(job, checkpoint(cfg), out)
    monkeypatch.setattr(jobfile.JobFile, "append", real_append)
    partial = out.with_name(out.name + ".partial")
    assert not out.exists() and len(read_jsonl(partial)) == sum(calls[:2])
    # A kill in the middle of a line leaves half a record; resuming drops it.
    with partial.open("a") as fh:
        fh.write('{"index": 17, "categ')

    stats = generate_to(job, checkpoint(cfg), out)
    records = read_jsonl(out)
    assert [r["index"] for r in records] == list(range(20))
    assert stats["resumed_from"] == sum(calls[:2]) and stats["made_this_run"] == 20 - sum(calls[:2])
    assert records == read_jsonl(reference)
    assert not partial.exists()


def test_a_changed_job_does_not_resume_an_old_partial_file(trained, tmp_path):
    cfg, _ = trained
    out = tmp_path / "generated.jsonl"
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps({"index": 0, "category": "x", "keywords": [], "seed": 0, "text": "stale",
                                   "finished": False}) + "\n")
    out.with_name(out.name + ".partial.job").write_text("another job\n")
    generate_to(with_generate(cfg, count=1), checkpoint(cfg), out)
    assert all(r["text"] != "stale" for r in read_jsonl(out))


def test_the_trained_categories_are_kept_with_the_model(trained):
    import json

    cfg, _ = trained
    # Written by train beside the checkpoint, from the training text (tests/test_model.write_encoded).
    assert json.loads((cfg.paths.checkpoint / "categories.json").read_text()) == ["aww", "science"]


def test_a_large_job_is_announced_with_its_size_and_time(trained, tmp_path, capsys):
    import json

    from pipeline.generate import make_prompt
    from pipeline.generate.stage import LARGE_JOB, warn_job

    cfg, _ = trained
    prompts = [make_prompt("aww", ["dog"], 100_000, "p1")]
    stats = tmp_path / "generate_stats.json"
    assert warn_job(prompts, LARGE_JOB, 0, cfg.paths.checkpoint, stats) == []
    # generate.count=100000 with guidance.compare: 200,000 samples.
    assert warn_job(prompts, 200_000, 0, cfg.paths.checkpoint, stats) == [
        "200,000 samples to make (200,000 planned, 0 already made, guided and unguided passes included); "
        "time unknown until the first batches"]
    stats.write_text(json.dumps({"samples_per_s": 20.0}))
    [line] = warn_job(prompts, 200_002, 2, cfg.paths.checkpoint, stats)
    assert line.endswith("about 2.8 h at the last job's 20 samples/s")
    assert capsys.readouterr().err.splitlines()[-1] == f"generate: warning: {line}"


def test_a_category_the_model_never_saw_is_named_before_generating(trained, tmp_path, capsys):
    from tests.conftest import generate_to, with_generate

    cfg, _ = trained
    job = with_generate(cfg, categories=("aww", "Gardening", "r/cooking"), keyword_sets=(("dog",),), count=1,
                        length=8)
    generate_to(job, cfg.paths.checkpoint, tmp_path / "generated.jsonl")
    assert ("generate: warning: 2 prompt categories are not in the training text, so the model never saw them: "
            "gardening, r-cooking") in capsys.readouterr().err.splitlines()


def test_a_prompt_over_the_context_window_is_skipped_and_counted(trained, tmp_path, capsys):
    # It used to fail its whole batch in TensorFlow (positions past n_ctx); now the job goes on without it.
    cfg, _ = trained
    long = "\U00020000" * 40
    job = with_generate(cfg, keyword_sets=(("dog",), tuple([long] * 6)), categories=("aww",), count=2)
    out = tmp_path / "generated.jsonl"
    stats = generate_to(job, checkpoint(cfg), out)
    assert stats["skipped_prompts"] == {"too_long": 1, "samples": 2}
    records = read_jsonl(out)
    assert len(records) == stats["samples"] and all(r["keywords"] == ["dog"] for r in records)
    assert "1 prompt(s) skipped (2 samples): longer than the" in capsys.readouterr().err
