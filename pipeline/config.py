"""One YAML file per run, loaded into typed, frozen objects.

    python -m pipeline.config show configs/default.yaml encode.repeat=5
    python -m pipeline.config make-deps configs/default.yaml [overrides...]   (used by the Makefile)

Each stage owns the dataclass of its own section (EncodeConfig lives in
pipeline/encode.py, and so on); this module only assembles them, validates types,
rejects unknown keys and applies `section.key=value` overrides.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.decode import DecodeConfig
from pipeline.encode import EncodeConfig
from pipeline.errors import ConfigError
from pipeline.export import ExportConfig
from pipeline.generate import GenerateConfig
from pipeline.guidance import GuidanceConfig
from pipeline.model import ModelConfig
from pipeline.train import TrainConfig


@dataclass(frozen=True)
class RunPaths:
    """Where each stage of one run reads and writes (all under data/, git-ignored)."""

    run_dir: Path

    @property
    def encoded(self) -> Path:
        return self.run_dir / "encoded.txt"

    @property
    def encode_stats(self) -> Path:
        return self.run_dir / "encode_stats.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoint"

    @property
    def train_done(self) -> Path:
        return self.run_dir / "train.done"

    @property
    def generated(self) -> Path:
        return self.run_dir / "generated.jsonl"

    @property
    def decoded(self) -> Path:
        return self.run_dir / "decoded.csv"

    @property
    def decode_stats(self) -> Path:
        return self.run_dir / "decode_stats.json"

    @property
    def report_json(self) -> Path:
        return self.run_dir / "report.json"

    @property
    def report_md(self) -> Path:
        return self.run_dir / "report.md"

    @property
    def report_png(self) -> Path:
        return self.run_dir / "report.png"

    @property
    def section_dir(self) -> Path:
        """One JSON per config section, rewritten only when that section changes (make prerequisites)."""
        return self.run_dir / ".config"


@dataclass(frozen=True)
class Config:
    """A whole run. `name` is the config file's stem and names the run folder."""

    name: str = "default"
    seed: int = 42
    data_dir: str = "data"
    export: ExportConfig = field(default_factory=ExportConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    @property
    def paths(self) -> RunPaths:
        return RunPaths(Path(self.data_dir) / "runs" / self.name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Which sections (plus the top-level seed) each stage's outputs depend on.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "export": ("export",),
    "encode": ("encode",),
    "train": ("model", "train"),
    "generate": ("generate", "guidance"),
    "decode": ("decode",),
}


def _type_name(tp: object) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: object, tp: object, key: str) -> object:
    """`value` checked against type `tp`; lists become tuples so configs stay frozen."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1] if errors else f"{key}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")


def build(cls: type, data: object, prefix: str = ""):
    """An instance of dataclass `cls` from a mapping; unknown keys and bad values raise ConfigError.

    A section's own `__post_init__` may raise ConfigError('key: ...'); the section name is prefixed.
    """
    where = prefix or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{prefix + '.' if prefix else ''}{unknown[0]}: unknown key"
            f" (known keys{' in ' + prefix if prefix else ''}: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(v, hints[k], f"{prefix + '.' if prefix else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{prefix + '.' if prefix else ''}{exc}") from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """`data` with each 'a.b=value' override set; the value is parsed as YAML ('3', 'true', '[a, b]')."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{item}: an override looks like section.key=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{dotted}: {k} is not a section")
        node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else None
    return data


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The run config in YAML file `path` with `overrides` applied; its name is the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    if "name" in data:
        raise ConfigError("name: the run name is the config file's name; remove the key")
    data = apply_overrides(data, list(overrides))
    data["name"] = path.stem
    return build(Config, data)


def _write_if_changed(path: Path, text: str) -> None:
    """Keep the old mtime when nothing changed, so make rebuilds only the stale stages."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_deps(cfg: Config) -> str:
    """Write one JSON per stage's config sections and return Makefile variables for the run."""
    full = cfg.to_dict()
    for stage, sections in STAGE_SECTIONS.items():
        slice_ = {"seed": cfg.seed, **{s: full[s] for s in sections}}
        _write_if_changed(cfg.paths.section_dir / f"{stage}.json", json.dumps(slice_, indent=2, default=str) + "\n")
    lines = [
        f"RUN_DIR := {cfg.paths.run_dir}",
        f"ENCODE_INPUT := {cfg.encode.input}",
        f"PROMPTS_FILE := {cfg.generate.prompts_file or ''}",
        f"EXPORT_OUTPUT := {cfg.export.output}",
        f"EXPORT_INPUTS := {' '.join(cfg.export.inputs)}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("show", "make-deps"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        cfg = load_config(argv[1], argv[2:])
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if argv[0] == "show":
        print(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict(), default=str)), sort_keys=False))
    else:
        sys.stdout.write(make_deps(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
