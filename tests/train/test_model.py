"""Base models: the released-model offline error, the from-scratch vocabulary and checkpoint, prompts."""
import dataclasses
import json

import pytest

from pipeline.config import load_config
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.format import END_TOKEN
from pipeline.core.gpt2 import MODEL_FILES as RELEASED_FILES
from pipeline.train.model import ModelConfig, ensure_released, ensure_scratch
from tests.conftest import write_encoded

TINY = ModelConfig(n_embd=32, n_layer=2, n_head=2, vocab_size=350)


def test_released_model_offline_error_names_folder_and_files(tmp_path):
    models = tmp_path / "models"
    (models / "124M").mkdir(parents=True)
    (models / "124M" / "hparams.json").write_text("{}")
    mcfg = ModelConfig(kind="released", released="124M", models_dir=str(models), allow_download=False)
    with pytest.raises(InputError) as err:
        ensure_released(mcfg)
    message = str(err.value)
    assert str(models / "124M") in message
    for name in RELEASED_FILES:
        assert (name in message) == (name != "hparams.json"), name


def test_released_model_present_is_used_without_download(tmp_path):
    folder = tmp_path / "355M"
    folder.mkdir()
    for name in RELEASED_FILES:
        (folder / name).write_text("x")
    base = ensure_released(ModelConfig(kind="released", released="355M", models_dir=str(tmp_path),
                                       allow_download=False))
    assert base.path == folder


@pytest.mark.parametrize("override, key", [("model.n_ctx=512", "model.n_ctx"), ("model.n_head=3", "model.n_embd"),
                                           ("model.vocab_size=100", "model.vocab_size"),
                                           ("generate.top_p=1.5", "generate.top_p"),
                                           ("generate.temperature=0", "generate.temperature"),
                                           ("generate.categories=[aww]", "generate.prompts_file")])
def test_bad_model_train_generate_values_name_the_key(tmp_path, override, key):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path, [override])


def test_scratch_model_vocabulary_encodes_like_the_training_text(tmp_path):
    from gpt_2_simple.src import encoder

    from pipeline.generate.sampler import end_tail
    from pipeline.train.log import dataset_tokens

    encoded = tmp_path / "encoded.txt"
    docs = write_encoded(encoded, 150)
    base = ensure_scratch(TINY, 3, encoded, tmp_path / "scratch")

    hparams = json.loads((base.path / "hparams.json").read_text())
    enc = encoder.get_encoder(str(base.path))
    assert hparams["n_vocab"] == len(enc.encoder) and hparams["n_embd"] == 32 and hparams["n_layer"] == 2
    assert len(enc.encoder) <= TINY.vocab_size + 1 and END_TOKEN in enc.encoder
    # Lossless round trip, and the learned merges really compress the text.
    text = "\n".join(docs[:20])
    ids = enc.encode(text)
    assert enc.decode(ids) == text and len(ids) < len(text.encode()) / 2
    # The fast tokenizer used for the training dataset gives gpt-2-simple's ids exactly.
    import numpy as np

    n = dataset_tokens(base.path, encoded, tmp_path / "d.npz")
    fast = np.load(tmp_path / "d.npz")["arr_0"]
    assert n == len(fast) and fast.tolist() == enc.encode(encoded.read_text())
    # The end marker's tail is what every document ends with, whatever precedes it.
    tail = end_tail(enc)
    for doc in docs[:30]:
        assert enc.encode(doc)[-len(tail):] == tail


def test_scratch_model_checkpoint_is_reused_or_rebuilt(tmp_path):
    import tensorflow as tf

    encoded = tmp_path / "encoded.txt"
    write_encoded(encoded, 120)
    base = ensure_scratch(TINY, 3, encoded, tmp_path / "scratch")
    reader = tf.train.load_checkpoint(str(base.path / "model.ckpt"))
    shapes = reader.get_variable_to_shape_map()
    n_vocab = json.loads((base.path / "hparams.json").read_text())["n_vocab"]
    assert shapes["model/wte"] == [n_vocab, 32] and shapes["model/wpe"] == [1024, 32]
    assert "model/h1/attn/c_attn/w" in shapes and "model/h2/attn/c_attn/w" not in shapes
    assert tf.train.latest_checkpoint(str(base.path)) is not None

    stamp = (base.path / "model.ckpt.index").stat().st_mtime_ns
    ensure_scratch(TINY, 3, encoded, tmp_path / "scratch")
    assert (base.path / "model.ckpt.index").stat().st_mtime_ns == stamp
    ensure_scratch(dataclasses.replace(TINY, n_embd=48), 3, encoded, tmp_path / "scratch")
    assert tf.train.load_checkpoint(str(base.path / "model.ckpt")).get_variable_to_shape_map()["model/wpe"] == [1024, 48]
