"""pipeline.hf: a trained run -> transformers' format -> back, bit for bit, with the same draws; the import's
one-line errors; the released 124M shape; a run that fine-tunes from an imported folder (issue 23).
transformers itself is not installed (it needs torch): the exported files are checked against its format."""
import dataclasses
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline.core.errors import ConfigError, InputError
from pipeline.core.format import END_TOKEN
from pipeline.hf import export_hf, export_run, import_hf
from tests.conftest import checkpoint, with_generate, write_encoded


def _params(folder):
    import tensorflow as tf

    from pipeline.hf.names import is_param

    ckpt = tf.train.latest_checkpoint(str(folder))
    reader = tf.train.load_checkpoint(ckpt)
    names = [n for n, _ in tf.train.list_variables(ckpt)]
    return {n: reader.get_tensor(n) for n in names if is_param(n)}, names


@pytest.fixture(scope="module")
def round_trip(trained, tmp_path_factory):
    """The tiny trained run exported (into its run folder's hf/) and imported into a fresh models folder."""
    cfg, _ = trained
    cfg = with_generate(cfg, temperature=0.8, top_k=40, top_p=0.0, length=50)
    out = export_run(cfg.paths, cfg.generate, cfg.name)
    models = tmp_path_factory.mktemp("models")
    return cfg, out, import_hf(out, models), models


def test_the_export_is_in_transformers_format(round_trip):
    from safetensors.numpy import load_file

    cfg, out, _, _ = round_trip
    src = checkpoint(cfg)
    hp = json.loads((src / "hparams.json").read_text())
    encoder = json.loads((src / "encoder.json").read_text())
    assert out == cfg.paths.run_dir / "hf" and not (out.parent / ".hf.tmp").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    assert (config["n_embd"], config["n_layer"], config["n_head"], config["n_positions"], config["vocab_size"]) == \
        (32, 2, 2, 1024, hp["n_vocab"])
    assert config["eos_token_id"] == config["bos_token_id"] == encoder[END_TOKEN]
    assert (config["layer_norm_epsilon"], config["activation_function"], config["tie_word_embeddings"]) == \
        (1e-5, "gelu_new", True)
    assert (out / "vocab.json").read_bytes() == (src / "encoder.json").read_bytes()
    assert (out / "merges.txt").read_bytes() == (src / "vocab.bpe").read_bytes()
    gen = json.loads((out / "generation_config.json").read_text())
    assert (gen["temperature"], gen["top_k"], gen["top_p"], gen["max_new_tokens"], gen["eos_token_id"]) == \
        (0.8, 40, 1.0, 50, encoder[END_TOKEN])
    weights = load_file(str(out / "model.safetensors"))
    assert "lm_head.weight" not in weights and len(weights) == 4 + 2 * 12
    assert weights["transformer.wte.weight"].shape == (hp["n_vocab"], 32)
    assert weights["transformer.wpe.weight"].shape == (1024, 32)
    assert weights["transformer.h.1.attn.c_attn.weight"].shape == (32, 96)
    assert weights["transformer.h.0.mlp.c_proj.weight"].shape == (128, 32)
    assert weights["transformer.h.0.ln_1.bias"].shape == (32,)
    card = (out / "README.md").read_text()
    assert "<|startoftext|>~`aww~^dog Big-Bird~@" in card and "keyword guidance" in card.lower()
    assert "Steps: 200" in card and "UNTRAINED" not in card and "science" in card


def test_export_then_import_gives_the_same_variables_bit_for_bit(round_trip):
    cfg, _, imported, models = round_trip
    original, _ = _params(checkpoint(cfg))
    again, names = _params(imported)
    assert sorted(names) == sorted(original) and len(original) == 4 + 2 * 12
    for name, value in original.items():
        assert again[name].dtype == value.dtype and again[name].shape == value.shape, name
        assert np.array_equal(again[name], value), name
    assert imported.parent == models and imported.name.startswith("hf-")
    hp = json.loads((imported / "hparams.json").read_text())
    assert hp == json.loads((checkpoint(cfg) / "hparams.json").read_text())
    assert (imported / "encoder.json").read_bytes() == (checkpoint(cfg) / "encoder.json").read_bytes()
    assert (imported / "vocab.bpe").read_bytes() == (checkpoint(cfg) / "vocab.bpe").read_bytes()


def test_the_same_folder_is_imported_once(round_trip):
    _, out, imported, models = round_trip
    stamp = (imported / "model.ckpt.index").stat().st_mtime_ns
    assert import_hf(out, models) == imported
    assert (imported / "model.ckpt.index").stat().st_mtime_ns == stamp


def test_our_sampler_draws_the_same_from_the_imported_model(round_trip, tmp_path):
    from pipeline.generate import GuidanceConfig, SamplingLoop, SamplingSettings, make_prompt

    cfg, _, imported, _ = round_trip
    # Guided titles aim at lengths drawn from the training text (dataset.npz beside a trained checkpoint), which
    # is the run's data, not the weights: the imported copy gets it too, as a run trained from it would have.
    beside = shutil.copytree(imported, tmp_path / "imported")
    shutil.copyfile(checkpoint(cfg) / "dataset.npz", beside / "dataset.npz")
    prompts = [make_prompt("aww", ["dog", "Big Bird"], 1, "test")] * 4
    draws = []
    for folder in (checkpoint(cfg), beside):
        with SamplingLoop(folder, SamplingSettings(temperature=0.8), length=40,
                          guidance=GuidanceConfig(strength=8.0, end_bias=4.0)) as loop:
            got = loop.draw(prompts, seed=7)[0] + loop.draw(prompts, seed=8, guided=False)[0]
        draws.append([(d.text, d.finished, d.logprob) for d in got])
    assert draws[0] == draws[1]
    assert len({text for text, _, _ in draws[0]}) > 1


def _folder(tmp_path, **config):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_positions": 1024, "n_embd": 8,
                                                     "n_head": 2, "n_layer": 1, "vocab_size": 300, **config}))
    for name in ("model.safetensors", "vocab.json", "merges.txt"):
        (folder / name).write_text("{}")
    return folder


@pytest.mark.parametrize("breakage,message", [
    (lambda f: shutil.rmtree(f), "does not exist"),
    (lambda f: (f / "config.json").unlink(), "config.json is missing"),
    (lambda f: (f / "config.json").write_text(json.dumps({"model_type": "llama", "n_positions": 4096})),
     "model_type is 'llama'"),
    (lambda f: (f / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_positions": 512})),
     "n_positions is 512"),
    (lambda f: ((f / "model.safetensors").unlink(), (f / "pytorch_model.bin").write_text("x")),
     "convert it to safetensors, we do not install torch"),
    (lambda f: ((f / "model.safetensors").unlink(), (f / "model.safetensors.index.json").write_text("{}")),
     "sharded weights (model.safetensors.index.json) are not supported"),
    (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda f: (f / "vocab.json").unlink(), "vocab.json is missing"),
    (lambda f: (f / "merges.txt").unlink(), "merges.txt is missing"),
])
def test_an_unusable_folder_is_a_one_line_error(tmp_path, breakage, message):
    folder = _folder(tmp_path)
    breakage(folder)
    with pytest.raises(InputError) as err:
        import_hf(folder, tmp_path / "models")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "models").exists()


def test_kind_hf_needs_a_folder():
    from pipeline.train import ModelConfig

    with pytest.raises(ConfigError, match="hf_dir"):
        ModelConfig(kind="hf")


def test_an_untrained_run_is_not_exported(tmp_path):
    from pipeline.core.paths import RunPaths

    with pytest.raises(InputError, match="not trained yet"):
        export_run(RunPaths(tmp_path / "run"), with_generate_section())
    (tmp_path / "default.yaml").write_text(f"data_dir: {tmp_path}\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline.hf", "--config", str(tmp_path / "default.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("hf: error:") and "not trained yet" in proc.stderr
    assert "\n" not in proc.stderr.strip()


def with_generate_section():
    from pipeline.generate import GenerateConfig

    return GenerateConfig(prompts_file=None, categories=("aww",))


def test_a_run_fine_tunes_from_an_imported_folder(round_trip, tmp_path):
    from pipeline.config import Config
    from pipeline.stages import BY_NAME, run_stage
    from pipeline.train import ModelConfig, TrainConfig

    _, out, _, _ = round_trip
    cfg = dataclasses.replace(Config(), name="fromhf", seed=3, data_dir=str(tmp_path / "data"),
                              model=ModelConfig(kind="hf", hf_dir=str(out), models_dir=str(tmp_path / "models")),
                              train=TrainConfig(steps=2, save_every=0, print_every=1, val_fraction=0.0))
    cfg.paths.run_dir.mkdir(parents=True)
    write_encoded(cfg.paths.encoded, 60, seed=1)
    line = run_stage(BY_NAME["train"], cfg)
    done = json.loads(cfg.paths.train_done.read_text())
    assert done["steps"] == 2 and "2 steps saved" in line
    assert done["base_model"].startswith(str(tmp_path / "models" / "hf-")) and not done["base_untrained"]


def test_the_released_124M_shape_exports_and_imports(tmp_path):
    from pipeline.core.paths import UNTRAINED_MARKER
    from pipeline.train.released import SHAPES, write_untrained

    started = time.perf_counter()
    base = write_untrained("124M", tmp_path / "124M", seed=1)
    out = export_hf(base, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert (config["n_embd"], config["n_layer"], config["n_head"], config["vocab_size"]) == (768, 12, 12, 50257)
    assert config["eos_token_id"] == 50256
    assert (out / "README.md").read_text().startswith("# UNTRAINED") and (out / UNTRAINED_MARKER).is_file()
    imported = import_hf(out, tmp_path / "models")
    assert json.loads((imported / "hparams.json").read_text()) == SHAPES["124M"]
    assert (imported / UNTRAINED_MARKER).is_file()
    original, _ = _params(base)
    again, names = _params(imported)
    assert sorted(names) == sorted(original) and len(original) == 4 + 12 * 12
    assert all(np.array_equal(again[n], v) for n, v in original.items())
    print(f"124M export + import: {time.perf_counter() - started:.1f} s")
