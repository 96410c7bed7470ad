"""A local transformers GPT-2 folder -> the layout gpt-2-simple reads, for fine-tuning (`model.kind: hf`).

    import_hf(folder, models_dir)   # -> <models_dir>/hf-<sha256 of the folder's model files, short>/

Reads config.json, model.safetensors (safetensors' numpy API), vocab.json and merges.txt; writes hparams.json,
encoder.json, vocab.bpe and a TF checkpoint of gpt-2-simple's own graph (its variable names and shapes) with
the converted arrays assigned. Done once per folder content: a converted folder is reused when present.
Built in a temporary sibling folder and renamed into place.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.core.gpt2 import MODEL_FILES, SOURCE_FILE, WINDOW, write_checkpoint
from pipeline.core.io import atomic_folder
from pipeline.core.paths import UNTRAINED_MARKER
from pipeline.hf.names import PREFIX, expected_names, hf_name, to_tf_array

READ = ("config.json", "model.safetensors", "vocab.json", "merges.txt")


def check_folder(folder: Path) -> dict:
    """config.json of the transformers folder `folder`, after checking it holds a GPT-2 this project can train.

    InputError (one line) for a missing folder or file, another architecture, torch-only or sharded weights,
    a context shorter than 1024 tokens.
    """
    if not folder.is_dir():
        raise InputError(f"model.hf_dir: {folder} does not exist (a transformers model folder is expected)")
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder / 'config.json'} is missing (not a transformers model folder)")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{folder / 'config.json'}: not JSON ({exc})") from exc
    if config.get("model_type") != "gpt2":
        raise InputError(f"{folder / 'config.json'}: model_type is {config.get('model_type')!r}; only GPT-2 "
                         f"(model_type gpt2) can be trained with gpt-2-simple")
    n_ctx = config.get("n_positions", config.get("n_ctx", 0))
    if n_ctx < WINDOW:
        raise InputError(f"{folder / 'config.json'}: n_positions is {n_ctx}; gpt-2-simple trains on {WINDOW}-token "
                         f"windows, so at least {WINDOW} is needed")
    if config.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise InputError(f"{folder / 'config.json'}: activation_function {config['activation_function']!r} is not "
                         f"GPT-2's tanh GELU (gelu_new), the only one gpt-2-simple's model has")
    if config.get("n_inner") not in (None, 4 * config.get("n_embd", 0)):
        raise InputError(f"{folder / 'config.json'}: n_inner {config['n_inner']} is not 4 x n_embd, the only "
                         f"MLP width gpt-2-simple's model has")
    if not (folder / "model.safetensors").is_file():
        if (folder / "model.safetensors.index.json").is_file():
            raise InputError(f"{folder}: sharded weights (model.safetensors.index.json) are not supported; "
                             f"save the model as one model.safetensors")
        if (folder / "pytorch_model.bin").is_file():
            raise InputError(f"{folder} has pytorch_model.bin but no model.safetensors: convert it to safetensors, "
                             f"we do not install torch")
        raise InputError(f"{folder / 'model.safetensors'} is missing")
    for name in ("vocab.json", "merges.txt"):
        if not (folder / name).is_file():
            raise InputError(f"{folder / name} is missing (GPT-2's tokenizer files are needed)")
    return config


def folder_digest(folder: Path) -> str:
    """sha256 of the files the conversion reads (their names and contents)."""
    h = hashlib.sha256()
    for name in READ:
        h.update(name.encode() + b"\0")
        with (folder / name).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def read_weights(folder: Path, n_layer: int) -> dict:
    """transformers' parameter name -> float32 array; names without the `transformer.` prefix (as on the Hub's
    gpt2) are accepted, lm_head.weight and attention-mask buffers are left out (the output embedding is tied)."""
    import numpy as np
    from safetensors.numpy import load_file

    path = folder / "model.safetensors"
    try:
        raw = load_file(str(path))
    except Exception as exc:  # a bfloat16 file cannot be read into numpy, a truncated one not at all
        raise InputError(f"{path}: cannot be read with safetensors' numpy API ({exc}); float32 or float16 weights are needed") from exc
    weights = {}
    for name, array in raw.items():
        full = name if name.startswith(PREFIX) or name.startswith("lm_head.") else PREFIX + name
        weights[full] = array.astype(np.float32) if array.dtype != np.float32 else array
    missing = expected_names(n_layer) - weights.keys()
    if missing:
        raise InputError(f"{path}: {len(missing)} GPT-2 parameters are missing, e.g. {sorted(missing)[0]}")
    return weights


def converted(weights: dict):
    """values() for pipeline.core.gpt2.write_checkpoint: each TF variable's array from the transformers
    `weights`; InputError when one does not fit the shape config.json's sizes give it."""
    def value(tf_name: str, shape: tuple):
        array = to_tf_array(shape, weights[hf_name(tf_name)])
        if array.shape != shape:
            raise InputError(f"{hf_name(tf_name)}: shape {array.shape} does not fit GPT-2's {shape} "
                             f"for the sizes in config.json")
        return array
    return value


def import_hf(folder: Path, models_dir: Path) -> Path:
    """The transformers GPT-2 in `folder` converted to gpt-2-simple's layout; returns the converted folder
    (`<models_dir>/hf-<digest>/`, reused when it is there already). See the module docstring."""
    folder, models_dir = Path(folder), Path(models_dir)
    config = check_folder(folder)
    digest = folder_digest(folder)
    path = models_dir / f"hf-{digest[:16]}"
    source = {"hf_dir": str(folder.resolve()), "sha256": digest}
    if all((path / f).is_file() for f in MODEL_FILES) and (path / SOURCE_FILE).is_file():
        return path
    hparams = {"n_vocab": config["vocab_size"], "n_ctx": config.get("n_positions", config.get("n_ctx")),
               "n_embd": config["n_embd"], "n_head": config["n_head"], "n_layer": config["n_layer"]}
    weights = read_weights(folder, hparams["n_layer"])
    merges = [line for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#version")]
    with atomic_folder(path) as tmp:
        (tmp / "hparams.json").write_text(json.dumps(hparams, indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(folder / "vocab.json", tmp / "encoder.json")
        # gpt-2-simple skips the first line of vocab.bpe and drops the last one.
        (tmp / "vocab.bpe").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        write_checkpoint(tmp, 0, converted(weights))
        if (folder / UNTRAINED_MARKER).is_file():
            shutil.copyfile(folder / UNTRAINED_MARKER, tmp / UNTRAINED_MARKER)
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    return path
