"""GPT-2 124M's real shape and vocabulary end to end, offline, on CPU (issue 22).

`python -m pipeline.train.released` writes an untrained 124M (OpenAI's hparams, GPT-2's own BPE,
random weights) into a temporary models_dir; configs/gpt2-124M.yaml then runs on it unchanged but
for small overrides: encode, train (a subprocess, as make runs it, so its peak RSS is its own), a
resumed train (another), guided generate in batches of 64, decode, report and one titles-on-demand call.
Random weights never write the end marker on purpose, so this checks what each stage did at that
shape, not the titles. Select it alone with `pytest -m released_shape`.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.released_shape

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "gpt2-124M.yaml"
N_VOCAB = 50257
BATCH = 64
LENGTH = 16
# OpenAI's 124M model.ckpt.data-00000-of-00001 has exactly this many bytes (float32 weights of that shape).
CKPT_DATA_BYTES = 497_759_232


def _overrides(tmp: Path) -> list[str]:
    return [f"model.models_dir={tmp / 'models'}", f"data_dir={tmp / 'data'}", f"encode.input={tmp / 'titles.csv'}",
            "encode.workers=1", "train.steps=2", "train.batch_size=1", "train.print_every=1",
            "generate.prompts_file=null", "generate.categories=[aww]", "generate.keyword_sets=[[dog, rescue]]",
            f"generate.count={BATCH}", f"generate.batch_size={BATCH}", f"generate.length={LENGTH}",
            "guidance.strength=8.0", "guidance.end_bias=4.0"]


def _run_measured(args: list[str], log: Path) -> tuple[int, int]:
    """Run `python args...` from the repository root, output to `log`; (exit status, peak RSS in bytes)."""
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def test_gpt2_124m_shape_end_to_end(tmp_path, monkeypatch, capsys):
    from pipeline.config import load_config
    from pipeline.core.paths import UNTRAINED_MARKER
    from pipeline.stages import BY_NAME, run_stage
    from pipeline.core.gpt2 import MODEL_FILES as RELEASED_FILES
    from pipeline.train.released import BPE_SHA256, SHAPES

    started = time.monotonic()
    times: dict[str, float] = {}

    def lap(name: str) -> None:
        times[name] = round(time.monotonic() - started - sum(times.values()), 1)

    # -- the untrained model, by its command ---------------------------------------------------------
    model = tmp_path / "models" / "124M"
    rc, _ = _run_measured(["-m", "pipeline.train.released", "--shape", "124M", "--out", str(model)],
                          tmp_path / "released.log")
    assert rc == 0, (tmp_path / "released.log").read_text()
    assert set(RELEASED_FILES) | {UNTRAINED_MARKER} == {p.name for p in model.iterdir()}
    assert json.loads((model / "hparams.json").read_text()) == SHAPES["124M"] == {
        "n_vocab": 50257, "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12}
    for name, digest in BPE_SHA256.items():
        assert hashlib.sha256((model / name).read_bytes()).hexdigest() == digest
    assert (model / "model.ckpt.data-00000-of-00001").stat().st_size == CKPT_DATA_BYTES
    assert "random" in (model / UNTRAINED_MARKER).read_text()
    # Real weights are never replaced: a folder without the marker is refused.
    real = tmp_path / "real"
    real.mkdir()
    (real / "model.ckpt.index").write_text("x")
    rc, _ = _run_measured(["-m", "pipeline.train.released", "--shape", "124M", "--out", str(real)],
                          tmp_path / "refused.log")
    assert rc == 2 and (real / "model.ckpt.index").read_text() == "x"
    assert "is not an untrained model" in (tmp_path / "refused.log").read_text()
    lap("released (2 commands)")

    # -- encode: a few dozen rows of the sample --------------------------------------------------------
    lines = (ROOT / "data" / "sample_titles.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "titles.csv").write_text("\n".join([lines[0], *lines[1::40]]) + "\n", encoding="utf-8")
    overrides = _overrides(tmp_path)
    cfg = load_config(CONFIG, overrides)
    assert (cfg.model.kind, cfg.model.released, cfg.name) == ("released", "124M", "gpt2-124M")
    paths = cfg.paths
    run_stage(BY_NAME["encode"], cfg)
    assert paths.encoded.stat().st_size > 0
    lap("encode")

    # -- train, as make runs it, in its own process -------------------------------------------------
    rc, peak_rss = _run_measured(["-m", "pipeline.train", "--config", str(CONFIG), *overrides], tmp_path / "train.log")
    train_log = (tmp_path / "train.log").read_text()
    assert rc == 0, train_log
    assert "UNTRAINED" in train_log and "disagrees" not in train_log  # the fast tokenizer was used
    done = json.loads(paths.train_done.read_text())
    assert done["steps"] == 2 and done["base_untrained"] is True
    assert done["base_model"] == str(model.resolve())
    assert (paths.checkpoint / "model-2.index").is_file()
    assert (paths.checkpoint / "counter").read_text().strip() == "2"
    assert (paths.checkpoint / UNTRAINED_MARKER).read_bytes() == (model / UNTRAINED_MARKER).read_bytes()
    assert json.loads((paths.checkpoint / "hparams.json").read_text())["n_vocab"] == N_VOCAB
    # Random weights spread the first prediction over the whole vocabulary: a loss near ln(50257) = 10.8.
    first_loss = float((paths.checkpoint / "loss.csv").read_text().splitlines()[1].split(",")[2])
    assert 9.5 < first_loss < 12.5, first_loss
    lap("train 2 steps (subprocess)")

    # -- resume: more steps continue from step 2 -----------------------------------------------------
    # (A subprocess too: training takes ~7 GiB, which this process would keep for the tests after it.)
    rc, _ = _run_measured(["-m", "pipeline.train", "--config", str(CONFIG), *overrides, "train.steps=3"],
                          tmp_path / "resume.log")
    resume_log = (tmp_path / "resume.log").read_text()
    assert rc == 0, resume_log
    assert "train: 2 steps done, training 1 more" in resume_log and "3 steps saved" in resume_log
    assert f"Loading checkpoint {paths.checkpoint.resolve() / 'model-2'}" in resume_log  # not the base model
    done = json.loads(paths.train_done.read_text())
    assert done["steps"] == 3 and done["base_untrained"] is True
    assert [s["start_step"] for s in done["sessions"]] == [0, 2]
    loss_steps = [int(r.split(",")[0]) for r in (paths.checkpoint / "loss.csv").read_text().splitlines()[1:]]
    assert loss_steps == [1, 2, 3]
    assert (paths.checkpoint / "model-3.index").is_file()
    lap("train resumed +1 step (subprocess)")

    # -- generate, guided and unguided, batches of 64: the vocabulary's width everywhere -------------
    from pipeline.generate import guidance as guidance_mod
    from pipeline.generate import sampler as sampler_mod

    seen: dict[str, list] = {"hooks": [], "step_width": [], "top_p_width": [], "batch_rows": []}
    init, step, top_p = guidance_mod.KeywordGuidance.__init__, guidance_mod.KeywordGuidance.step, sampler_mod._top_p
    sample = sampler_mod.Sampler.sample

    def spy_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen["hooks"].append(self)

    def spy_step(self, logits, *args):
        seen["step_width"].append(logits.shape[-1])
        return step(self, logits, *args)

    def spy_top_p(tf, logits, *args, **kwargs):
        seen["top_p_width"].append(logits.shape[-1])
        return top_p(tf, logits, *args, **kwargs)

    def spy_sample(self, prompts, *args, **kwargs):
        seen["batch_rows"].append(len(prompts))
        return sample(self, prompts, *args, **kwargs)

    monkeypatch.setattr(guidance_mod.KeywordGuidance, "__init__", spy_init)
    monkeypatch.setattr(sampler_mod.Sampler, "sample", spy_sample)
    monkeypatch.setattr(guidance_mod.KeywordGuidance, "step", spy_step)
    monkeypatch.setattr(sampler_mod, "_top_p", spy_top_p)
    run_stage(BY_NAME["generate"], cfg)
    (hook,) = seen["hooks"]
    assert hook.n_vocab == N_VOCAB
    assert {t.shape for t in (hook.closing, hook.ending, hook.word_cont, hook.new_word)} == {(N_VOCAB,)}
    # One graph: the guidance hook and nucleus sampling see logits 50,257 wide; two draws of 64 rows.
    assert seen["step_width"] == [N_VOCAB] and seen["top_p_width"] == [N_VOCAB]
    assert seen["batch_rows"] == [BATCH, BATCH]
    # Keyword tokens are GPT-2's own BPE ids, straight from its encoder.json.
    vocab = json.loads((paths.checkpoint / "encoder.json").read_text(encoding="utf-8"))
    assert len(vocab) == N_VOCAB and vocab["<|endoftext|>"] == N_VOCAB - 1
    ids, lens, _ = hook.keyword_table([["dog", "rescue"]])
    assert list(ids[0, 0, 0, : lens[0, 0, 0]]) == [vocab["Ġdog"]]
    assert list(ids[0, 1, 0, : lens[0, 1, 0]]) == [vocab["Ġrescue"]]
    records = [json.loads(x) for x in paths.generated.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 2 * BATCH and sum(r["guided"] for r in records) == BATCH
    stats = json.loads(paths.generate_stats.read_text())
    assert (stats["samples"], stats["batches"]) == (2 * BATCH, 2)
    assert {p: stats["passes"][p]["samples"] for p in ("guided", "unguided")} == {"guided": BATCH, "unguided": BATCH}
    lap("generate 2 x 64")

    # -- decode and report: every sample counted; the report says the model is untrained -----------
    run_stage(BY_NAME["decode"], cfg)
    dstats = json.loads(paths.decode_stats.read_text())
    assert dstats["samples"] == 2 * BATCH
    assert dstats["valid"] + sum(dstats["dropped"].values()) == 2 * BATCH
    assert dstats["dropped"].get("unfinished", 0) >= BATCH  # random weights almost never end a title
    run_stage(BY_NAME["report"], cfg)
    report = json.loads(paths.report_json.read_text())
    assert report["base_untrained"] is True and report["overall"]["samples"] == 2 * BATCH
    assert "UNTRAINED MODEL" in paths.report_md.read_text().split("\n\n")[1]
    lap("decode + report")

    # -- titles on demand -----------------------------------------------------------------------------
    from pipeline.serve import TitleGenerator

    with TitleGenerator.from_config(cfg) as gen:
        assert gen.loop.sampler.hparams.n_vocab == N_VOCAB and gen.loop.guidance.n_vocab == N_VOCAB
        titles = gen.titles("aww", ["dog"], n=2, seed=7)
    assert len(titles) == 2 and all(t.keywords == ("dog",) for t in titles)
    lap("titles on demand")

    total = round(time.monotonic() - started, 1)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with capsys.disabled():
        print(f"\n124M shape end to end: {total} s {times}; peak RSS of training (2 steps, batch 1, 1024 tokens): "
              f"{peak_rss / 2**30:.2f} GiB; of this test process (generate, titles): {own / 2**30:.2f} GiB")
