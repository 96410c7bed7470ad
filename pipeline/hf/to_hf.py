"""A gpt-2-simple model folder -> a folder transformers' AutoModelForCausalLM and AutoTokenizer load unchanged.

    export_run(paths, generate)          # the command: a trained run -> data/runs/<run>/hf/
    export_hf(model_dir, out)            # any folder with hparams.json, encoder.json, vocab.bpe and a checkpoint

Writes config.json, model.safetensors (safetensors' numpy API: no torch), vocab.json (= encoder.json),
merges.txt (= vocab.bpe), tokenizer_config.json, generation_config.json and README.md (the model card) into
a temporary sibling folder, renamed onto `out` when complete.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from pipeline.core.copy_head import head_spec
from pipeline.core.errors import InputError
from pipeline.core.io import atomic_folder
from pipeline.core.format import END_TOKEN
from pipeline.core.gpt2 import TRAINED_CATEGORIES
from pipeline.core.paths import UNTRAINED_MARKER, RunPaths
from pipeline.hf.card import config_json, generation_config, model_card, tokenizer_config
from pipeline.hf.names import expected_names, hf_name, is_param, to_hf_array



def _read_json(path: Path | None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None


def read_params(model_dir: Path) -> dict:
    """transformers' name -> float32 array in its layout, for every parameter of the latest checkpoint in `model_dir`."""
    import numpy as np
    import tensorflow as tf

    ckpt = tf.train.latest_checkpoint(str(model_dir))
    if ckpt is None:
        raise InputError(f"no TensorFlow checkpoint in {model_dir} (run the train stage first)")
    reader = tf.train.load_checkpoint(ckpt)
    return {hf_name(name): np.ascontiguousarray(to_hf_array(name, reader.get_tensor(name)), dtype=np.float32)
            for name, _ in tf.train.list_variables(ckpt) if is_param(name)}


def export_hf(model_dir: Path, out: Path, *, train_done: Path | None = None, encode_stats: Path | None = None,
              sampling: dict | None = None, run: str | None = None) -> Path:
    """Export the model in `model_dir` (gpt-2-simple's layout) into folder `out`; returns `out`.

    train_done / encode_stats: the run's records, for the model card; sampling: temperature, top_k, top_p and
    max_new_tokens for generation_config.json. The output embedding is tied to wte and not written twice.
    """
    from safetensors.numpy import save_file

    model_dir, out = Path(model_dir), Path(out)
    for name in ("hparams.json", "encoder.json", "vocab.bpe"):
        if not (model_dir / name).is_file():
            raise InputError(f"{model_dir / name} is missing (not a gpt-2-simple model folder)")
    hparams = _read_json(model_dir / "hparams.json")
    encoder = _read_json(model_dir / "encoder.json")
    if END_TOKEN not in encoder:
        raise InputError(f"{model_dir / 'encoder.json'} has no {END_TOKEN} entry")
    eos_id = encoder[END_TOKEN]
    params = read_params(model_dir)
    missing = expected_names(hparams["n_layer"]) - params.keys()
    if missing:
        raise InputError(f"{model_dir}: the checkpoint lacks {len(missing)} GPT-2 parameters, e.g. {sorted(missing)[0]}")
    done = _read_json(train_done)
    untrained = (model_dir / UNTRAINED_MARKER).is_file() or bool(done and done.get("base_untrained"))

    with atomic_folder(out) as tmp:
        save_file(params, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        shutil.copyfile(model_dir / "encoder.json", tmp / "vocab.json")
        shutil.copyfile(model_dir / "vocab.bpe", tmp / "merges.txt")
        files = {"config.json": config_json(hparams, eos_id), "generation_config.json": generation_config(eos_id, sampling),
                 "tokenizer_config.json": tokenizer_config(hparams["n_ctx"])}
        for name, data in files.items():
            (tmp / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        card = model_card(hparams, done, _read_json(encode_stats), _read_json(model_dir / TRAINED_CATEGORIES),
                          untrained, run)
        if head_spec(model_dir):
            # transformers' GPT-2 has no place for the head; the trunk alone is a complete language model.
            print(f"export-hf: warning: {model_dir} was trained with the copy head (model.copy_head); the export "
                  f"holds the transformer without it, which copies keywords less well", file=sys.stderr)
            card += COPY_HEAD_NOTE
        (tmp / "README.md").write_text(card, encoding="utf-8")
        if untrained and (model_dir / UNTRAINED_MARKER).is_file():
            shutil.copyfile(model_dir / UNTRAINED_MARKER, tmp / UNTRAINED_MARKER)
    return out


COPY_HEAD_NOTE = """
## Without its copy head

This run trained a copy head beside the transformer (a pointer from each title position to the
prompt's keywords, in the pipeline that made it). GPT-2's architecture in `transformers` has no
place for it, so these weights are the transformer alone: a complete language model that writes
titles in the same format, but that copies the prompt's keywords less often than the pipeline's
own sampler does with the head.
"""


def export_run(paths: RunPaths, generate: Any, run: str | None = None) -> Path:
    """The command's export: the trained model of `paths` -> `paths.hf_export`, with `generate`'s sampling settings
    (the `generate:` section). InputError when the run is not trained yet."""
    if not paths.train_done.is_file():
        raise InputError(f"{paths.train_done} does not exist: this run is not trained yet (make train first)")
    sampling = {"temperature": generate.temperature, "top_k": generate.top_k, "top_p": generate.top_p,
                "max_new_tokens": generate.length}
    return export_hf(paths.checkpoint, paths.hf_export, train_done=paths.train_done, encode_stats=paths.encode_stats,
                     sampling=sampling, run=run)
