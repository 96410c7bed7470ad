"""Validation in training (pipeline.train.validation, train.val_fraction / val_every / keep_best / patience)."""
import csv
import dataclasses
import json
import os

import pytest

from pipeline.config import Config, load_config
from pipeline.core.errors import ConfigError
from pipeline.core.format import section_regex
from pipeline.train import ModelConfig, TrainConfig
from pipeline.train.stage import run as train_stage
from pipeline.train.validation import Validator, split_documents
from tests.conftest import write_encoded

_TITLE = section_regex("title")


def test_validation_documents_never_share_a_title_with_training_ones(tmp_path):
    docs = write_encoded(tmp_path / "encoded.txt", 600)
    train, val = split_documents((tmp_path / "encoded.txt").read_text(encoding="utf-8"), 0.2)
    titles = [{_TITLE.search(d).group(1) for d in part.splitlines()} for part in (train, val)]
    assert titles[0] and titles[1] and not titles[0] & titles[1]
    assert len(train.splitlines()) + len(val.splitlines()) == len(docs)
    # The same text gives the same split.
    assert split_documents((tmp_path / "encoded.txt").read_text(encoding="utf-8"), 0.2) == (train, val)


def test_bad_validation_settings_name_the_key(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("seed: 1\n", encoding="utf-8")
    for override, key in (("train.val_fraction=1", "val_fraction"), ("train.keep_best=true", "keep_best"),
                          ("train.val_every=0", "val_every")):
        with pytest.raises(ConfigError, match=rf"train\.{key}"):
            load_config(cfg, [override])
    with pytest.raises(ConfigError, match=r"train\.patience: .*keep_best"):
        load_config(cfg, ["train.val_fraction=0.1", "train.patience=2"])


def test_the_validator_warns_keeps_the_best_and_says_when_to_stop(tmp_path, capsys):
    v = Validator(None, list(range(3000)), every=10, keep_best=False, patience=2, best_dir=tmp_path / "best")
    losses = iter([3.0, 2.5, 2.7, 2.6])
    v.loss = lambda: next(losses)
    assert v(5, 4.0) is None  # not a validation step
    assert v(10, 4.0) == 3.0 and v(20, 3.5) == 2.5 and v.stop_reason() is None
    assert v(30, 3.0) == 2.7 and "validation loss rose to 2.7 while training loss fell" in capsys.readouterr().err
    assert v(40, 3.1) == 2.6 and v.stop_reason() and v.record()["best_step"] == 20
    assert v.record()["overfitting_warnings"] == 1


def test_training_logs_validation_loss_and_keeps_the_best_weights(tmp_path):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        cfg = dataclasses.replace(
            Config(), name="val", seed=3, data_dir="data",
            model=ModelConfig(n_embd=32, n_layer=2, n_head=2, vocab_size=350),
            train=TrainConfig(steps=40, learning_rate=3e-3, save_every=0, print_every=100, val_fraction=0.2,
                              val_every=10, keep_best=True))
        cfg.paths.run_dir.mkdir(parents=True)
        write_encoded(cfg.paths.encoded, 300)
        line = train_stage(cfg.model, cfg.train, cfg.seed, cfg.paths)  # the stage, as make runs it
        record = json.loads(cfg.paths.train_done.read_text())
    finally:
        os.chdir(cwd)
    assert f"weights of step {record['validation']['weights_from_step']}," in line and "stopped early" not in line
    ckpt = tmp_path / "data" / "runs" / "val" / "checkpoint" / "run1"
    rows = list(csv.DictReader((ckpt / "loss.csv").open(encoding="utf-8")))
    assert [int(r["step"]) for r in rows if r["val_loss"]] == [10, 20, 30, 40] and len(rows) == 40
    v = record["validation"]
    assert v["best_step"] in (10, 20, 30, 40) and v["weights_from_step"] == v["best_step"]
    assert f'best-model-{v["best_step"]}' in (ckpt / "checkpoint").read_text()
    assert json.loads((tmp_path / "data" / "runs" / "val" / "train.done").read_text())["validation"] == v


def test_the_scratch_vocabulary_is_trained_on_the_training_part_only(tmp_path, monkeypatch):
    import pipeline.train.model
    import pipeline.train.stage
    from pipeline.core.format import Document, build_document
    from pipeline.train.validation import held_out

    write_encoded(tmp_path / "encoded.txt", 300)
    # Held-out titles full of a word no training title has: a vocabulary trained on them would learn it.
    rare = [f"Zebrafinch Zebrafinch number {i}" for i in range(400) if held_out(f"Zebrafinch Zebrafinch number {i}", 0.2)]
    with (tmp_path / "encoded.txt").open("a", encoding="utf-8") as f:
        f.writelines(build_document(Document("aww", ("bird",), t)) + "\n" for t in rare for _ in range(5))
    encoded = tmp_path / "encoded.txt"
    train_part, val_part = split_documents(encoded.read_text(encoding="utf-8"), 0.2)
    assert "Zebrafinch" in val_part and "Zebrafinch" not in train_part

    # train hands the model the training part as the vocabulary's text when val_fraction > 0, nothing otherwise.
    seen = []

    def prepare(m, seed, enc, scratch, vocab_text=None):
        seen.append(vocab_text)
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.train.stage, "prepare_base_model", prepare)
    for fraction in (0.2, 0.0):
        with pytest.raises(KeyboardInterrupt):
            pipeline.train.stage.train(ModelConfig(), TrainConfig(val_fraction=fraction), 1, encoded, tmp_path / "ckpt",
                                 tmp_path / "train.done", tmp_path / "scratch")
    assert seen == [train_part, None]

    # The vocabulary itself (the initial weights, which need TensorFlow, are left out here).
    monkeypatch.setattr(pipeline.train.model, "write_checkpoint", lambda path, seed: None)
    monkeypatch.setattr(pipeline.train.model, "_missing", lambda path: [])
    mcfg = ModelConfig(n_embd=32, n_layer=2, n_head=2, vocab_size=400)
    pipeline.train.model.ensure_scratch(mcfg, 1, encoded, tmp_path / "whole")
    pipeline.train.model.ensure_scratch(mcfg, 1, encoded, tmp_path / "part", train_part)
    whole, part = (json.loads((tmp_path / d / "encoder.json").read_text(encoding="utf-8")) for d in ("whole", "part"))
    assert any("ebraf" in token for token in whole) and not any("ebra" in token for token in part)
    assert sorted(p.name for p in (tmp_path / "part").iterdir()) == ["encoder.json", "hparams.json", "source.json",
                                                                     "vocab.bpe"]
    sources = [json.loads((tmp_path / d / "source.json").read_text()) for d in ("whole", "part")]
    assert "vocab_text_sha256" not in sources[0] and sources[1]["vocab_text_sha256"]
