"""Train a tiny from-scratch GPT-2 for real with gpt-2-simple, then generate from it.

The model (the `trained` fixture in conftest.py, about 15 s on a 2-core CPU) is shared by the tests.
"""
import dataclasses
import json

import pytest

from pipeline.format import END_TOKEN, build_prefix, parse
from pipeline.generate import GenerateConfig, generate
from pipeline.train import train
from tests.conftest import TINY_STEPS as STEPS


def checkpoint(cfg):
    return cfg.paths.checkpoint


def train_run(cfg):
    p = cfg.paths
    return train(cfg.model, cfg.train, cfg.seed, p.encoded, p.checkpoint_dir, p.train_done, p.scratch_model)


def generate_to(cfg, checkpoint, out):
    """Run the generate job of `cfg` from `checkpoint` into `out` (stats beside it)."""
    return generate(cfg.generate, cfg.guidance, cfg.seed, checkpoint, out, out.with_name("generate_stats.json"))


def with_generate(cfg, **kw):
    base = dict(prompts_file=None, categories=("aww", "science"), keyword_sets=(("dog", "Big Bird"), ("coffee",)),
                count=3, length=60, batch_size=4, temperature=0.8)
    return dataclasses.replace(cfg, generate=GenerateConfig(**{**base, **kw}))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


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
                               train=dataclasses.replace(cfg.train, steps=STEPS + 5, onednn_bf16=True))
    shutil.copytree(cfg.paths.run_dir, copy.paths.run_dir)
    record = train_run(copy)
    assert record["steps"] == STEPS + 5
    assert [s["steps"] for s in record["sessions"]] == [STEPS, 5]
    rows = (checkpoint(copy) / "loss.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, STEPS + 6))
    # Asking again for the same number of steps trains nothing more.
    again = train_run(copy)
    assert again["sessions"] == record["sessions"] and again["steps"] == STEPS + 5


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


def test_batch_stops_as_soon_as_every_sample_ended(trained):
    from pipeline.sampler import Sampler, SamplingSettings

    cfg, _ = trained
    length = 200
    with Sampler(checkpoint(cfg), SamplingSettings(temperature=0.7)) as sampler:
        prompt = sampler.encode(build_prefix("aww", ["dog"]))
        out = sampler.sample([prompt] * 4, length=length, seed=1)
        assert out.steps < length and out.tokens.shape[1] == len(prompt) + out.steps
        # The loop ran exactly until the slowest sample produced the end marker, no further.
        k = len(sampler.tail)
        ends = []
        for row in out.tokens[:, len(prompt):].tolist():
            ends.append(next(i for i in range(k, len(row) + 1) if row[i - k:i] == sampler.tail))
            assert END_TOKEN in sampler.decode(row[:ends[-1]])
        assert max(ends) == out.steps and min(ends) < out.steps
        # With a limit below that, the batch runs to the limit and no sample has ended.
        short = sampler.sample([prompt] * 4, length=2, seed=1)
        assert short.steps == 2
        assert not any(END_TOKEN in sampler.decode(row[len(prompt):]) for row in short.tokens.tolist())
        # Same seed, same samples: a batch does not depend on what the session ran before.
        assert (sampler.sample([prompt] * 4, length=length, seed=1).tokens == out.tokens).all()


class Killed(Exception):
    pass


def test_interrupted_generation_resumes_without_duplicates(trained, tmp_path, monkeypatch):
    from pipeline import jobfile

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
