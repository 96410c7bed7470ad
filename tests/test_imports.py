"""The package's import graph and layout (pipeline.core.imports): no cycles, packages reached through
their faces, one folder per stage, and the walker sees every kind of import."""
from pipeline.core.imports import ROOT, closure, face_breaches, find_cycle, imports_of, owner, package_modules
from pipeline.stages import STAGES

ENTRY_SCRIPTS = ("keyword_encode", "keyword_decode")
ASSEMBLY = {"pipeline", "pipeline.config", "pipeline.stages"}


def test_the_package_has_no_import_cycle():
    modules = package_modules()
    assert "pipeline.config" in modules and "pipeline.stages" in modules
    assert find_cycle(modules) is None


def test_stage_modules_do_not_reach_the_config_or_the_stage_table():
    # A stage receives its sections, the seed and the run paths: it never needs the whole Config.
    for stage in ("encode", "train", "generate", "decode", "report", "export"):
        reached = closure(f"pipeline.{stage}")
        assert "pipeline.config" not in reached and "pipeline.stages" not in reached, stage


def test_imports_inside_functions_and_type_checking_blocks_count_but_main_blocks_do_not():
    # pipeline.generate.__main__ imports pipeline.stages only in its __main__ block; pipeline.generate.sampling
    # imports pipeline.generate.guidance inside a function and pipeline.generate.prompts under TYPE_CHECKING.
    assert "pipeline.stages" not in imports_of("pipeline.generate.__main__")
    assert {"pipeline.generate.guidance", "pipeline.generate.prompts"} <= imports_of("pipeline.generate.sampling")


def test_a_cycle_is_found(tmp_path, monkeypatch):
    import pipeline.core.imports as imports

    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    monkeypatch.setattr(imports, "imports_of", lambda m: graph[m])
    assert imports.find_cycle(["d", "a", "b", "c"]) == ["a", "b", "c", "a"]
    graph["c"] = set()
    assert imports.find_cycle(["d", "a", "b", "c"]) is None


def test_packages_are_reached_only_through_their_faces():
    breaches = {m: sorted(face_breaches(m)) for m in package_modules() + list(ENTRY_SCRIPTS)}
    assert {m: b for m, b in breaches.items() if b} == {}


def test_the_face_test_catches_a_reach_into_another_package(tmp_path, monkeypatch):
    import pipeline.core.imports as imports

    graph = {"pipeline.serve.titles": {"pipeline.generate.sampler", "pipeline.generate", "pipeline.core.io",
                                       "pipeline.serve.batcher"}}
    monkeypatch.setattr(imports, "imports_of", lambda m: graph[m])
    assert imports.face_breaches("pipeline.serve.titles") == {"pipeline.generate.sampler"}


def test_the_tree_shows_the_stages():
    # Only the assembly sits at the top of pipeline/; every stage of the table is a package whose
    # face holds its `run`, and no module's name repeats its folder's name as a prefix.
    top = {m for m in package_modules() if owner(m) is None}
    assert top == ASSEMBLY
    for stage in STAGES:
        assert owner(stage.module) == stage.module, stage.name
    for path in (ROOT / "pipeline").rglob("*.py"):
        assert not path.stem.startswith(path.parent.name + "_"), path
    for stage in STAGES:
        import importlib

        assert callable(importlib.import_module(stage.module).run), stage.name


def test_tests_mirror_the_packages():
    packages = {p.name for p in (ROOT / "pipeline").iterdir() if (p / "__init__.py").is_file()}
    tested = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert tested == packages
