"""The stage table (pipeline.stages) against the code it describes, the Makefile, and a real make run."""
import inspect
import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.core.errors import ConfigError
from pipeline.core.paths import RunPaths
from pipeline.stages import STAGES, code_files, make_deps, make_escape

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_each_stage_run_takes_its_sections_the_seed_and_the_paths(stage):
    import importlib

    run = importlib.import_module(stage.module).run
    hints = typing.get_type_hints(run)
    params = list(inspect.signature(run).parameters)
    section_types = typing.get_type_hints(Config)
    assert len(params) == len(stage.sections) + 2 and params[-2:] == ["seed", "paths"]
    assert [hints[p] for p in params[:-2]] == [section_types[s] for s in stage.sections]
    assert hints["paths"] is RunPaths and hints["return"] is str


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_each_stage_uses_exactly_the_paths_it_declares(stage):
    import importlib

    source = inspect.getsource(importlib.import_module(stage.module).run)
    used = set(re.findall(r"paths\.(\w+)", source))
    declared = set(stage.reads) | set(stage.writes)
    assert used - {"run_dir"} == declared
    assert all(isinstance(getattr(RunPaths, name, None), property) for name in declared)


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_makefile_and_commands_come_from_the_table(stage):
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^{stage.name}: \$\({stage.name.upper()}_TARGET\)", makefile, re.M)
    # `-m pipeline.train` runs the package's __main__.py; `keyword_encode.py` is a script.
    target = ROOT / stage.script.replace(".", "/")
    script = target / "__main__.py" if target.is_dir() else target.with_suffix(".py")
    assert f'main(["{stage.name}", *sys.argv[1:]])' in script.read_text(encoding="utf-8")
    files = code_files(stage)
    assert f"{stage.module.replace('.', '/')}/__init__.py" in files and "pipeline/config.py" not in files


def test_make_rules_escape_what_make_would_read_as_syntax(tmp_path):
    assert make_escape("data/my $(shell touch PWNED)/a #1", "k") == r"data/my\ $$(shell\ touch\ PWNED)/a\ \#1"
    for bad in ("data/a\nb: c", "data/a\tb", "data/a:b"):
        with pytest.raises(ConfigError, match="encode.input: .* which a file name used by make cannot hold"):
            make_deps(load_config(_write(tmp_path, f"data_dir: {tmp_path}\n"), [f"encode.input={bad!r}"]))
    text = make_deps(load_config(_write(tmp_path, f"data_dir: {tmp_path}\n"), ["encode.input=in put$x.csv"]))
    assert r"in\ put$$x.csv" in text


def test_a_config_value_cannot_run_commands_through_make(tmp_path):
    """A `$(shell ...)` in a path reaches make as text: `make -n encode` must not run it."""
    marker = tmp_path / "PWNED"
    config = _write(tmp_path, f'data_dir: {tmp_path}/data\nencode:\n  input: "$(shell touch {marker})in put.csv"\n',
                    name=f"pytest-escape-{os.getpid()}.yaml")
    try:
        dry = _make("-n", "encode", f"CONFIG={config}")
        assert not marker.exists()
        # make sees one file name, spaces and all: it names it as the missing input.
        assert dry.returncode != 0 and f"$(shell touch {marker})in put.csv" in dry.stderr, dry.stderr
    finally:
        shutil.rmtree(ROOT / "data" / "runs" / config.stem, ignore_errors=True)


def _write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _make(*args, env=None):
    # -o: never reinstall the venv from inside the tests, whatever the stamp's age.
    return subprocess.run(["make", "-o", ".venv/.installed", f"PY={sys.executable}", *args],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)


def test_make_workflow_on_a_tiny_config(tmp_path):
    """`make encode train generate decode` on a tiny run, then make rebuilds only what is stale."""
    rows = (ROOT / "data/sample_titles.csv").read_text(encoding="utf-8").splitlines()[:301]
    (tmp_path / "titles.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    name = f"pytest-make-{os.getpid()}"
    config = _write(tmp_path, f"""seed: 3
data_dir: {tmp_path}/data
encode: {{input: {tmp_path}/titles.csv, workers: 1}}
model: {{n_embd: 32, n_layer: 2, n_head: 2, vocab_size: 350}}
train: {{steps: 4, save_every: 0, print_every: 2}}
generate: {{prompts_file: null, categories: [aww], keyword_sets: [[dog]], count: 2, length: 16, batch_size: 2}}
guidance: {{strength: 0.0}}
""", name=f"{name}.yaml")
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    try:
        dry = _make("-n", "test", "encode", f"CONFIG={config}", env=env)
        assert dry.returncode == 0 and "keyword_encode.py" in dry.stdout, dry.stderr
        first = _make("encode", "train", "generate", "decode", f"CONFIG={config}", env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        run = tmp_path / "data" / "runs" / name
        for out in ("encoded.txt", "train.done", "generated.jsonl", "decoded.csv", "report.md"):
            assert (run / out).is_file(), out
        again = _make("decode", f"CONFIG={config}", env=env)
        assert again.returncode == 0 and "pipeline." not in again.stdout and ".py --config" not in again.stdout
        changed = _make("generate", f"CONFIG={config}", "OVERRIDES=generate.count=3", env=env)
        assert changed.returncode == 0, changed.stderr[-3000:]
        assert "-m pipeline.generate " in changed.stdout and "-m pipeline.train " not in changed.stdout
        assert "keyword_encode.py" not in changed.stdout
    finally:
        shutil.rmtree(ROOT / "data" / "runs" / name, ignore_errors=True)
