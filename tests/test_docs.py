"""The documentation keeps up with the code: every config key documented, every module on the
README's code map, the README short, and no link pointing at a missing file or section.

These fail when code changes without its docs (a new key, a new module), which is the point:
the reference pages are only useful while they are complete.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from pipeline.config import Config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 260


def config_keys(obj: object, prefix: str = "") -> list[str]:
    """Every key of a config dataclass, dotted (`export.duckdb.threads`); a section is not a key itself.

    Walks a default instance, so a new field in any section (or a new section) shows up here
    without this test knowing about it.
    """
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += config_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def test_the_walk_reaches_nested_sections():
    keys = config_keys(Config())
    assert {"seed", "encode.repeat", "export.duckdb.threads", "export.bigquery.months",
            "report.top_categories"} <= set(keys)


@pytest.mark.parametrize("key", config_keys(Config()))
def test_every_config_key_is_documented(key):
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    # A table row starting with the key in backticks: mentioning it in passing is not a reference entry.
    assert re.search(rf"^\| `{re.escape(key)}` \|", text, re.MULTILINE), \
        f"docs/configuration.md has no row for `{key}`"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, \
        f"README.md has {len(lines)} lines; move detail to docs/ (limit {MAX_README_LINES})"


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


PACKAGES = sorted(p.name for p in (ROOT / "pipeline").iterdir() if (p / "__init__.py").is_file())


def test_code_map_is_a_map_of_packages():
    code_map = _section(README.read_text(encoding="utf-8"), "Code map")
    rows = [line for line in code_map.splitlines() if line.startswith("| `")]
    assert len(rows) <= 15, f"README.md's code map has {len(rows)} rows; it maps packages, not modules"
    for name in [f"pipeline/{p}/" for p in PACKAGES] + ["pipeline/config.py", "pipeline/stages.py"]:
        assert f"`{name}`" in code_map, f"README.md's code map has no row for {name}"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_docstring_lists_its_modules(package):
    import ast

    folder = ROOT / "pipeline" / package
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))) or ""
    for module in sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("__")):
        assert re.search(rf"\b{module}\b", doc), f"pipeline/{package}/__init__.py's docstring does not list {module}"


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def _without_code(text: str) -> str:
    """Markdown with fenced blocks, indented blocks and inline code removed: links there are examples."""
    text = _without_fences(text)
    text = re.sub(r"^(    |\t).*$", "", text, flags=re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", text)


def _links() -> list[tuple[str, str]]:
    pages = [README, *sorted(DOCS.glob("*.md"))]
    return [(page.relative_to(ROOT).as_posix(), target)
            for page in pages
            for target in re.findall(r"\]\(([^)\s]+)\)", _without_code(page.read_text(encoding="utf-8")))
            if not re.match(r"[a-z]+:", target)]  # http:, https:, mailto: are not files here


@pytest.mark.parametrize("page,target", _links())
def test_relative_links_resolve(page, target):
    path, _, anchor = target.partition("#")
    file = (ROOT / page).parent / path if path else ROOT / page
    assert file.exists(), f"{page} links to {target}, which does not exist"
    if anchor and file.suffix == ".md":
        headings = re.findall(r"^#+ (.+)$", _without_fences(file.read_text(encoding="utf-8")), re.MULTILINE)
        assert anchor in {_slug(h) for h in headings}, f"{page} links to {target}: no such section"


def test_links_are_found():
    # Guards the link test itself: a regex that found nothing would pass vacuously.
    assert ("README.md", "docs/configuration.md") in _links()
