"""The ``fakellm`` command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fakellm._cli import main

EXPECTED_DEMO = [
    "== flower shop (streamed) ==",
    "prompt: Which flowers suit a birthday? Just 3, under 50 characters.",
    "tokens: 'Roses, ' | 'lilies ' | 'and ' | 'sunflowers.'",
    "answer: Roses, lilies and sunflowers.",
    "usage[gpt-4o-mini]: input=13 output=4 total=17",
    "virtual time: 0.45 s (scripted latency)",
]


def test_demo_prints_the_stream_usage_and_virtual_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-1] == EXPECTED_DEMO
    assert lines[-1].startswith("wall time: ")


def test_python_dash_m_fakellm_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fakellm", "demo"], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[:-1] == EXPECTED_DEMO


def test_unknown_command_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dance"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'dance'" in capsys.readouterr().err
