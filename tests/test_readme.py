"""The README's two commands are exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_exactly_two_commands() -> None:
    assert _readme_commands() == [
        'python -m pip install -e ".[dev]" && fakellm demo',
        "python -m pytest",
    ]


def test_ci_runs_the_readme_commands_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line for line in ci if line and not line.startswith(("#", "set ", "cd ", ".ci/"))]
    # The README's two commands, verbatim, then the same suite on two xdist workers.
    assert commands == [*_readme_commands(), "python -m pytest -n 2"]


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_readme_first_test_passes_as_written(pytester: pytest.Pytester) -> None:
    first = _python_blocks()[0]
    name = first.splitlines()[0].removeprefix("# ")
    assert name == "test_flower_shop.py"
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(**{name.removesuffix(".py"): first})
    # In a process of its own, as a user runs it: an in-process run would drop the
    # fakellm modules it imported first from sys.modules when it ends, and a later
    # test here would mix their classes with new ones.
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_readme_tour_samples_run() -> None:
    blocks = _python_blocks()[1:]
    assert len(blocks) == 2
    for i, block in enumerate(blocks, start=1):
        exec(compile(block, f"README.md python block {i}", "exec"), {})
