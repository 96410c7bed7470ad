"""The package's import graph (pipeline.imports): no cycles, and the walker sees every kind of import."""
from pipeline.imports import closure, find_cycle, imports_of, package_modules


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
    # pipeline.generate imports pipeline.stages only in its __main__ block; pipeline.sampling imports
    # pipeline.guidance inside a function and pipeline.prompts under TYPE_CHECKING.
    assert "pipeline.stages" not in imports_of("pipeline.generate")
    assert {"pipeline.guidance", "pipeline.prompts"} <= imports_of("pipeline.sampling")


def test_a_cycle_is_found(tmp_path, monkeypatch):
    import pipeline.imports as imports

    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    monkeypatch.setattr(imports, "imports_of", lambda m: graph[m])
    assert imports.find_cycle(["d", "a", "b", "c"]) == ["a", "b", "c", "a"]
    graph["c"] = set()
    assert imports.find_cycle(["d", "a", "b", "c"]) is None
