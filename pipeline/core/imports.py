"""The project's own import graph, read from the source with `ast` (nothing is imported).

Used by the stage table (a stage's code prerequisites for make are the modules its entry
reaches) and by the test that forbids import cycles. Every import counts: at module top,
inside functions and under `if TYPE_CHECKING:`; only a module's `if __name__ == "__main__":`
block is left out, since it runs when the module is the program and is no dependency of it.

Sub-packages (pipeline/<stage>/) are reached through their face, the package's `__init__`:
`face_breaches` lists the imports that reach into another package instead (pipeline.core is open
to all). Importing `pipeline.a.b` also runs `pipeline/a/__init__.py`; the graph leaves that edge
out, since every module of a package would otherwise form a cycle with its own face.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "pipeline"


def module_file(module: str) -> Path:
    """The source file of project module `module` ('pipeline.encode.stage' or a top-level script 'keyword_encode')."""
    parts = module.split(".")
    path = ROOT.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _is_main_block(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def imports_of(module: str) -> set[str]:
    """The project modules (`pipeline.*`) that `module` imports anywhere but in its `__main__` block."""
    tree = ast.parse(module_file(module).read_text(encoding="utf-8"))
    body = [node for node in tree.body if not _is_main_block(node)]
    found: set[str] = set()
    for node in (n for top in body for n in ast.walk(top)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pipeline import x` may name a submodule x.
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] == PACKAGE and module_file(n).is_file())
    found.discard(module)
    return found


def package_modules() -> list[str]:
    """Every module of the package and of its sub-packages (a package by its own name), sorted."""
    found = []
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(found)


def owner(module: str) -> str | None:
    """The sub-package that holds `module` ('pipeline.generate.sampler' -> 'pipeline.generate');
    None for the top-level assembly (pipeline, pipeline.config, pipeline.stages) and for scripts."""
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) < 2 or not (ROOT / PACKAGE / parts[1]).is_dir():
        return None
    return ".".join(parts[:2])


def face_breaches(module: str, open_packages: tuple[str, ...] = (f"{PACKAGE}.core",)) -> set[str]:
    """The modules `module` imports from inside another sub-package instead of through its face
    (the sub-package's `__init__`). A package's own modules and `open_packages` may be reached directly."""
    mine = owner(module)
    return {dep for dep in imports_of(module)
            if (pkg := owner(dep)) and dep != pkg and pkg != mine and pkg not in open_packages}


def closure(module: str) -> set[str]:
    """`module` and every project module it reaches through imports."""
    seen, todo = {module}, [module]
    while todo:
        for dep in imports_of(todo.pop()) - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def find_cycle(modules: list[str]) -> list[str] | None:
    """One import cycle among `modules` as [a, b, ..., a], or None when the graph has none."""
    graph = {m: imports_of(m) for m in modules}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for dep in sorted(graph.get(m, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in modules:
        if m not in state and (cycle := visit(m)):
            return cycle
    return None
