"""gpt-2-simple's TensorFlow variable names <-> transformers' GPT-2 parameter names.

gpt-2-simple: `model/wte`, `model/wpe`, `model/h{i}/ln_1/g` (gain) and `/b`, `model/h{i}/attn/c_attn/w`
[1, nx, nf] and `/b`, ..., `model/ln_f/g`. transformers: `transformer.wte.weight`, `transformer.wpe.weight`,
`transformer.h.{i}.ln_1.weight` and `.bias`, `transformer.h.{i}.attn.c_attn.weight` [nx, nf] (Conv1D: the
TF kernel without its leading 1), ..., `transformer.ln_f.weight`. The output embedding is tied to wte in both.
"""
from __future__ import annotations

import re

# The model's parameters; the optimizer's slots (`.../w/Adam`) and counters do not match.
PARAM = re.compile(r"model/(wte|wpe|ln_f/[gb]|h\d+/(ln_1|ln_2)/[gb]|h\d+/(attn/c_attn|attn/c_proj|mlp/c_fc|mlp/c_proj)/[wb])")
LEAF = {"g": "weight", "w": "weight", "b": "bias"}
PREFIX = "transformer."


def is_param(tf_name: str) -> bool:
    """Whether `tf_name` is one of the model's parameters."""
    return PARAM.fullmatch(tf_name) is not None


def hf_name(tf_name: str) -> str:
    """transformers' name of gpt-2-simple's variable `tf_name` (`model/h0/ln_1/g` -> `transformer.h.0.ln_1.weight`)."""
    parts = tf_name.split("/")[1:]
    if parts in (["wte"], ["wpe"]):
        return f"{PREFIX}{parts[0]}.weight"
    if re.fullmatch(r"h\d+", parts[0]):
        parts = ["h", parts[0][1:], *parts[1:]]
    return PREFIX + ".".join([*parts[:-1], LEAF[parts[-1]]])


def expected_names(n_layer: int) -> set[str]:
    """Every parameter name transformers' GPT2LMHeadModel of `n_layer` layers saves (lm_head tied, not saved)."""
    names = {f"{PREFIX}wte.weight", f"{PREFIX}wpe.weight", f"{PREFIX}ln_f.weight", f"{PREFIX}ln_f.bias"}
    for i in range(n_layer):
        for part in ("ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            names |= {f"{PREFIX}h.{i}.{part}.weight", f"{PREFIX}h.{i}.{part}.bias"}
    return names


def to_hf_array(tf_name: str, array):
    """The transformers layout of variable `tf_name`'s value: a Conv1D kernel [1, nx, nf] loses its leading 1."""
    return array[0] if tf_name.endswith("/w") else array


def to_tf_array(shape: tuple[int, ...], array):
    """`array` (transformers' layout) in the TF variable's `shape`: a Conv1D kernel gets its leading 1 back."""
    return array.reshape(shape) if len(shape) == array.ndim + 1 and shape[0] == 1 else array
