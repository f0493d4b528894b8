"""The API reference (docs/reference.md, built by mkdocs + mkdocstrings) builds with
warnings as errors and covers every name each public module exports.

A renamed parameter, a broken cross-reference or a new public name left out of the
reference fails here, not on a reader's screen.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import fakellm

ROOT = Path(__file__).resolve().parent.parent


def _public_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(fakellm.__path__)]
    # `scenarios` holds the bundled YAML scripts only; `__main__` runs the CLI.
    return ["fakellm"] + [
        f"fakellm.{n}" for n in names if not n.startswith("_") and n != "scenarios"
    ]


def _inventory(site: Path) -> set[str]:
    """The object names of a Sphinx v2 inventory (what mkdocstrings writes)."""
    data = (site / "objects.inv").read_bytes()
    header = data.split(b"\n", 4)
    assert header[0] == b"# Sphinx inventory version 2"
    return {line.split(" ", 1)[0] for line in zlib.decompress(header[4]).decode().splitlines()}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}{proc.stderr}"
    return out


def test_every_public_module_declares_its_names() -> None:
    missing = [m for m in _public_modules() if not hasattr(importlib.import_module(m), "__all__")]
    assert missing == []


def test_the_reference_documents_every_exported_name(site: Path) -> None:
    inventory = _inventory(site)
    missing = [
        f"{module}.{name}"
        for module in _public_modules()
        for name in importlib.import_module(module).__all__
        if f"{module}.{name}" not in inventory
    ]
    assert missing == []


def test_the_reference_page_names_every_public_module() -> None:
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    missing = [m for m in _public_modules() if f"::: {m}\n" not in text]
    assert missing == []


def test_every_strategy_says_what_it_generates_and_how_it_shrinks() -> None:
    import inspect

    from fakellm import strategies

    strategy_functions = [
        name
        for name in strategies.__all__
        if inspect.isfunction(obj := getattr(strategies, name))
        and "SearchStrategy" in str(inspect.signature(obj).return_annotation)
    ]
    assert strategy_functions, "no strategy functions found: the check would be vacuous"
    vague = [
        name
        for name in strategy_functions
        if "shrink" not in (inspect.getdoc(getattr(strategies, name)) or "").lower()
    ]
    assert vague == []
