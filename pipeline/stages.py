"""The stage table: what each stage reads, writes and depends on, declared once.

    python -m pipeline.stages encode --config configs/default.yaml [section.key=value ...]
    python -m pipeline.stages make-deps --config configs/default.yaml [overrides...]   (the Makefile runs this)

The command line of every stage (`python keyword_encode.py`, `python -m pipeline.train`, ...),
the config slices make tracks and the Makefile's rules (targets, file and code prerequisites,
recipes) all come from `STAGES`, so they cannot drift apart. Each stage module has a
`run(<its sections>..., seed, paths) -> str` that does the work and returns the line to print.
"""
from __future__ import annotations

import argparse
import glob
import importlib
import json
import sys
from dataclasses import dataclass

from pipeline.config import Config, load_config
from pipeline.core.errors import ConfigError, InputError, StageError
from pipeline.core.imports import ROOT, closure, module_file


@dataclass(frozen=True)
class Stage:
    """One stage.

    module: holds `run`; sections: the config sections `run` takes, in order (each stage's
    outputs depend on them and on the top-level seed); reads / writes: RunPaths names (the first
    write is the make target); config_reads / config_writes: dotted config keys naming files
    outside the run folder; command: how make runs it; data: files the code reads (globs).
    """

    name: str
    module: str
    sections: tuple[str, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    command: str
    config_reads: tuple[str, ...] = ()
    config_writes: tuple[str, ...] = ()
    data: tuple[str, ...] = ()

    @property
    def script(self) -> str:
        """The project module or script the command starts ('keyword_encode' or 'pipeline.train.stage')."""
        return self.command.removeprefix("-m ").removesuffix(".py")


STAGES: tuple[Stage, ...] = (
    Stage("export", "pipeline.export", ("export",), reads=(), writes=(), command="-m pipeline.export",
          config_reads=("export.inputs",), config_writes=("export.output",), data=("bigquery/*.sql",)),
    Stage("encode", "pipeline.encode", ("encode",), reads=(), writes=("encoded", "encode_stats"),
          command="keyword_encode.py", config_reads=("encode.input",)),
    Stage("train", "pipeline.train", ("model", "train"), reads=("encoded",),
          writes=("train_done", "checkpoint_dir", "scratch_model"), command="-m pipeline.train"),
    Stage("generate", "pipeline.generate", ("generate", "guidance"), reads=("train_done", "checkpoint"),
          writes=("generated", "generate_stats", "generated_candidates"), command="-m pipeline.generate",
          config_reads=("generate.prompts_file",)),
    Stage("decode", "pipeline.decode", ("decode",), reads=("generated", "encoded"),
          writes=("decoded", "decoded_rejected", "decode_stats"), command="keyword_decode.py"),
    Stage("report", "pipeline.report", ("report",), reads=("decoded", "decoded_rejected", "decode_stats", "encoded",
                                                               "checkpoint"),
          writes=("report_json", "report_md", "report_png"), command="-m pipeline.report"),
)
BY_NAME = {stage.name: stage for stage in STAGES}


def config_value(cfg: Config, dotted: str) -> tuple[str, ...]:
    """The file names a dotted config key holds (none when it is null or empty)."""
    value: object = cfg
    for key in dotted.split("."):
        value = getattr(value, key)
    if not value:
        return ()
    return tuple(value) if isinstance(value, tuple) else (str(value),)


def stage_seed(cfg: Config, stage: Stage) -> int:
    """The seed a stage runs with: a section's own `seed` when set, else the top-level one."""
    own = [getattr(cfg, s).seed for s in stage.sections if getattr(getattr(cfg, s), "seed", None) is not None]
    return own[0] if own else cfg.seed


def run_stage(stage: Stage, cfg: Config) -> str:
    """Run `stage` on `cfg`; returns the line to print."""
    run = importlib.import_module(stage.module).run
    return run(*(getattr(cfg, s) for s in stage.sections), stage_seed(cfg, stage), cfg.paths)


def code_files(stage: Stage) -> list[str]:
    """The source files a stage's outputs depend on: every project module its command reaches, and its data."""
    files = {module_file(m) for m in closure(stage.script) | closure(stage.module)}
    files |= {ROOT / p for pattern in stage.data for p in glob.glob(pattern, root_dir=ROOT)}
    return sorted(str(f.relative_to(ROOT)) for f in files)


def make_escape(path: str, key: str) -> str:
    """`path` as one make word: `$` doubled, spaces and `#` escaped; ConfigError naming `key` for
    characters make cannot take in a file name (control characters, newlines, ':', ';', '%', '*', '?', '[')."""
    bad = sorted({c for c in path if ord(c) < 32 or ord(c) == 127 or c in ":;%*?[\\"})
    if bad:
        raise ConfigError(f"{key}: {path!r} has {', '.join(map(repr, bad))}, which a file name used by make cannot hold")
    return path.replace("$", "$$").replace("#", r"\#").replace(" ", r"\ ")


def _slice(cfg: Config, stage: Stage) -> str:
    full = cfg.to_dict()
    return json.dumps({"seed": stage_seed(cfg, stage), **{s: full[s] for s in stage.sections}},
                      indent=2, default=str) + "\n"


def _write_if_changed(path, text: str) -> None:
    """Keep the old mtime when nothing changed, so make rebuilds only the stale stages."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_deps(cfg: Config) -> str:
    """Write each stage's config slice under `paths.section_dir` and return the run's make rules.

    For each stage: `<NAME>_TARGET` (its first output) and a rule from its outputs' first file to its
    config slice, inputs and code, whose recipe runs the stage's command.
    """
    paths = cfg.paths
    # Make tracks each stage by its first output (the one written last, when the rest is complete);
    # a folder's mtime says nothing of its contents and some outputs exist only with some options.
    made = {stage.writes[0] for stage in STAGES if stage.writes}
    lines = [f"RUN_DIR := {make_escape(str(paths.run_dir), 'data_dir')}"]
    for stage in STAGES:
        slice_path = paths.section_dir / f"{stage.name}.json"
        _write_if_changed(slice_path, _slice(cfg, stage))
        # (file, the config key that names it) pairs: an error names the key to fix.
        targets = [(str(getattr(paths, w)), "data_dir") for w in stage.writes[:1]]
        targets += [(f, key) for key in stage.config_writes for f in config_value(cfg, key)]
        prereqs = [(str(slice_path), "data_dir")]
        prereqs += [(str(getattr(paths, r)), "data_dir") for r in stage.reads if r in made]
        prereqs += [(f, key) for key in stage.config_reads for f in config_value(cfg, key)]
        prereqs += [(f, "code") for f in code_files(stage)]
        target = make_escape(*targets[0])
        lines += [f"{stage.name.upper()}_TARGET := {target}",
                  f"{target}: {' '.join(make_escape(f, key) for f, key in prereqs)}",
                  f"\t$(PY) {stage.command} --config $(CONFIG) $(OVERRIDES)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """`<stage> --config FILE [overrides]` or `make-deps --config FILE [overrides]`; returns the exit status.

    Config and input errors print one line, `<stage>: error: <message>`, and give status 2.
    """
    parser = argparse.ArgumentParser(prog="python -m pipeline.stages", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=[*BY_NAME, "make-deps"])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_intermixed_args(argv)
    name = "config" if args.stage == "make-deps" else args.stage
    try:
        if args.stage == "make-deps":
            sys.stdout.write(make_deps(load_config(args.config, args.overrides)))
        else:
            print(run_stage(BY_NAME[args.stage], load_config(args.config, args.overrides)))
    except (ConfigError, InputError, StageError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
