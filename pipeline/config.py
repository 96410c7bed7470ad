"""One YAML file per run, loaded into typed, frozen objects.

    python -m pipeline.config show configs/default.yaml encode.repeat=5

Each stage package owns the dataclass of its own section and names it in its face
(`pipeline.encode.EncodeConfig`, and so on); this module only assembles them, validates types,
rejects unknown keys and applies `section.key=value` overrides. It never calls a stage
(pipeline/stages.py ties sections and stages together). The `serve:` and `evaluate:` sections
live here because those packages load whole runs through this module.
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

from pipeline.core.errors import ConfigError, yaml_error
from pipeline.core.paths import RunPaths
from pipeline.decode import DecodeConfig
from pipeline.encode import EncodeConfig
from pipeline.export import ExportConfig
from pipeline.generate import GenerateConfig, GuidanceConfig
from pipeline.report import ReportConfig
from pipeline.train import ModelConfig, TrainConfig


# serve and evaluate load whole runs through this module, so their sections are declared here
# rather than in their packages: a package that imports pipeline.config cannot also be imported by it.
@dataclass(frozen=True)
class ServeConfig:
    """The `serve:` section.

    host, port: where `make serve` listens (127.0.0.1 only by default); max_n, max_keywords,
    max_keyword_chars, max_category_chars, max_temperature, max_body_bytes: request limits
    (a request over them is refused with 422, or 413 for the body); batch_window_ms: how long
    the worker waits for more requests after the first; max_batch: the most titles drawn in
    one batch (measured on the default run: 16 rows draw ~1.8x the titles/s of 4 rows, and 28
    rows fewer than 16, as a bigger batch more often waits for one long sample); queue_size: requests
    waiting beyond this are refused with 503; token, allowed_hosts: see below.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_n: int = 16
    max_keywords: int = 6
    max_keyword_chars: int = 40
    max_category_chars: int = 50
    max_temperature: float = 2.0
    max_body_bytes: int = 4096
    batch_window_ms: float = 20.0
    max_batch: int = 16
    queue_size: int = 64
    # Exposure (docs/serving.md, "Exposing the server"): a bearer token /v1/ requires when set, and
    # the Host header values answered (none: this machine's names and `host`; '*': any).
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("host: must not be empty (127.0.0.1 serves this machine only)")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port: must be between 1 and 65535, got {self.port}")
        for key in ("max_n", "max_keywords", "max_keyword_chars", "max_category_chars", "max_batch", "queue_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if self.max_body_bytes < 256:
            raise ConfigError(f"max_body_bytes: must be at least 256, got {self.max_body_bytes}")
        if self.max_temperature <= 0:
            raise ConfigError(f"max_temperature: must be positive, got {self.max_temperature}")
        if self.batch_window_ms < 0:
            raise ConfigError(f"batch_window_ms: must be 0 or more, got {self.batch_window_ms}")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError("token: must be at least 16 characters (e.g. `python -c 'import secrets; "
                              "print(secrets.token_urlsafe())'`)")
        if self.max_batch < self.max_n:
            raise ConfigError(f"max_batch: must be at least max_n ({self.max_n}) so any request fits a batch, "
                              f"got {self.max_batch}")


@dataclass(frozen=True)
class EvaluateConfig:
    """How `make eval` holds out titles and prompts the model with them.

    test_fraction: share of the encode input's titles held out (chosen by a hash of the title, so
    the split never depends on the seed, the row order or the file's other rows); prompts: held-out
    titles used as prompts (their category and `keywords_per_prompt` of the keywords the encoder
    extracts from them); samples_per_prompt: titles generated per prompt, guided and unguided each.
    """

    test_fraction: float = 0.1
    prompts: int = 120
    samples_per_prompt: int = 4
    keywords_per_prompt: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction: must be between 0 and 1 (exclusive), got {self.test_fraction}")
        for key in ("prompts", "samples_per_prompt", "keywords_per_prompt"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")


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
    report: ReportConfig = field(default_factory=ReportConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    @property
    def paths(self) -> RunPaths:
        return RunPaths(Path(self.data_dir) / "runs" / self.name, run_name=self.train.run_name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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
        try:
            node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_error(f"override {item!r}", exc)) from None
    return data


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The run config in YAML file `path` with `overrides` applied; its name is the file's stem."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; give a YAML file such as configs/default.yaml")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (at byte offset {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    if "name" in data:
        raise ConfigError("name: the run name is the config file's name; remove the key")
    data = apply_overrides(data, list(overrides))
    data["name"] = path.stem
    return build(Config, data)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "show":
        print(__doc__, file=sys.stderr)
        return 2
    try:
        cfg = load_config(argv[1], argv[2:])
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict(), default=str)), sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
