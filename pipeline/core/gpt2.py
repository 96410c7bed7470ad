"""A model folder in the layout gpt-2-simple reads, shared by the stages that make one (train: from
scratch, released, untrained stand-ins) and by pipeline.hf (a transformers folder converted).

MODEL_FILES: what such a folder holds, as OpenAI's released models do; SOURCE_FILE: the record
beside a made model of what it was made from; load_hparams and write_checkpoint read and write it;
TRAINED_CATEGORIES: the record beside a checkpoint of its training text's categories; token_bytes:
what each token of its vocabulary spells, in bytes; WINDOW: the tokens of one training window.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

MODEL_FILES = ("checkpoint", "encoder.json", "hparams.json", "model.ckpt.data-00000-of-00001",
               "model.ckpt.index", "model.ckpt.meta", "vocab.bpe")
# Written beside a made model: what it was made from, so a changed config or source makes a new one
# instead of silently reusing the old folder.
SOURCE_FILE = "source.json"
# Written beside a checkpoint by train: the categories of its training text (a sorted JSON list), so
# generate can warn about a prompt category the model never saw and the hf export can list them.
TRAINED_CATEGORIES = "categories.json"
# Tokens in one training window: gpt-2-simple's finetune sampled 1024-token windows, and the
# project's own training step keeps them, so a model needs n_ctx >= WINDOW.
WINDOW = 1024


def token_bytes(enc, size: int) -> list[bytes | None]:
    """The bytes each token id below `size` stands for in gpt-2-simple's byte-level encoder `enc`; None
    for an id the vocabulary lacks or whose spelling is not byte-level."""
    out: list[bytes | None] = [None] * size
    for text, idx in enc.encoder.items():
        if idx < size and all(ch in enc.byte_decoder for ch in text):
            out[idx] = bytes(enc.byte_decoder[ch] for ch in text)
    return out


def write_checkpoint(model_path: Path, seed: int, values: Callable[[str, tuple], Any] | None = None) -> None:
    """Weights for the hparams.json in `model_path`, saved as `model.ckpt`: randomly initialised from
    `seed`, or with `values` each variable set to `values(name, shape)` (name as 'model/h0/attn/c_attn/w').

    Uses gpt-2-simple's own model code (and so its variable names, shapes and initialisers); paths in
    the `checkpoint` file are relative so the folder can be renamed.
    """
    import tensorflow as tf
    from gpt_2_simple.src import model as gpt_model

    hparams = load_hparams(model_path)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        tokens = tf.compat.v1.placeholder(tf.int32, [1, None])
        gpt_model.model(hparams=hparams, X=tokens)
        variables = [v for v in tf.compat.v1.global_variables() if v.name.startswith("model/")]
        saver = tf.compat.v1.train.Saver(var_list=variables, save_relative_paths=True)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.variables_initializer(variables))
            for var in variables if values is not None else ():
                value = tf.compat.v1.placeholder(var.dtype.base_dtype, var.shape)
                sess.run(var.assign(value), {value: values(var.name.split(":")[0], tuple(var.shape.as_list()))})
            saver.save(sess, str(model_path / "model.ckpt"))


def load_hparams(model_path: Path):
    """gpt-2-simple's HParams from `model_path/hparams.json`."""
    from gpt_2_simple.src import model as gpt_model

    hparams = gpt_model.default_hparams()
    hparams.override_from_dict(json.loads((model_path / "hparams.json").read_text(encoding="utf-8")))
    return hparams
