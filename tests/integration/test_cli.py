"""The ``fakellm`` command: demo, run, validate, help, exit codes.

Everything runs in-process through ``main([...])`` except one subprocess test
of ``python -m fakellm demo``. The demo's expected output (without its
wall-time lines) is ``data/demo.txt``; after an intended change, regenerate it
with ``fakellm demo --color never | grep -v 'wall time' > tests/integration/data/demo.txt``
and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from fakellm import _cli, _demo
from fakellm._cli import main

DEMO = (Path(__file__).parent / "data" / "demo.txt").read_text(encoding="utf-8").splitlines()


THREE_TURNS = (
    "turns:\n"
    "  - {text: one, first_token_delay: 0.6}\n"
    "  - {text: two, first_token_delay: 0.2}\n"
    "  - {text: three, first_token_delay: 0.4}\n"
    "  - left over\n"
)


def _without_wall_time(text: str) -> list[str]:
    return [line for line in text.splitlines() if "wall time" not in line]


# -- demo --------------------------------------------------------------------------------


def test_demo_prints_the_exact_expected_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert _without_wall_time(out) == DEMO
    walls = [line for line in out.splitlines() if "wall time" in line]
    assert len(walls) == 7  # one per scenario, one in total
    assert all(line.startswith("wall time") and line.endswith(" s") for line in walls)
    assert err == ""  # no deprecation warnings, no progress when not on a terminal
    assert "\x1b[" not in out


def test_demo_skips_a_scenario_whose_package_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _demo.find_spec
    monkeypatch.setattr(
        _demo, "find_spec", lambda name: None if name == "langchain_classic" else real(name)
    )
    assert main(["demo"]) == 0
    lines = _without_wall_time(capsys.readouterr().out)
    pip = '(pip install langchain-classic, or pip install -e ".[dev]") =='
    assert f"== S4 skipped: needs langchain-classic {pip}" in lines
    assert f"== S6 skipped: needs langchain-classic {pip}" in lines
    assert "4 scenarios played offline, 2 skipped; 3.250 s of virtual time in total" in lines
    assert "== S7 token totals of 3 concurrent agenerate calls ==" in lines


def test_demo_colours_only_when_asked_or_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--color", "always"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[1;36m== S2 asyncio: two tasks interleave, decided by their delays ==\x1b[0m" in out
    assert _without_wall_time(_demo._ANSI.sub("", out)) == DEMO


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, True), ({"NO_COLOR": "1"}, False), ({"NO_COLOR": ""}, True), ({"TERM": "dumb"}, False)],
)
def test_auto_colour_needs_a_terminal_and_honours_no_color(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert _cli._wants_colour("auto", _Tty()) is expected
    assert _cli._wants_colour("auto", io.StringIO()) is False
    assert _cli._wants_colour("never", _Tty()) is False
    assert _cli._wants_colour("always", io.StringIO()) is True


def test_progress_is_one_self_erasing_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli._progress_writer(False) is None
    write = _cli._progress_writer(True)
    assert write is not None
    write("[1/6] S2")
    write("")
    assert capsys.readouterr() == ("", "\r\x1b[K[1/6] S2\r\x1b[K")


def test_demo_on_a_terminal_shows_progress_on_stderr_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cli, "_is_terminal", lambda stream: True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert _without_wall_time(out) == DEMO  # NO_COLOR: progress, but no colour
    shown = [part for part in err.split("\r\x1b[K") if part]
    assert shown == [f"[{i}/6] playing {s.key} {s.title}" for i, s in enumerate(_demo.SCENARIOS, 1)]
    assert err.endswith("\r\x1b[K")


def test_python_dash_m_fakellm_demo_prints_the_same_in_a_fresh_process() -> None:
    env = {**os.environ, "PYTHONHASHSEED": "12345", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "fakellm", "demo"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
        env={**env, "PYTHONIOENCODING": "utf-8"},
    )
    assert _without_wall_time(done.stdout) == DEMO
    assert done.stderr == ""


# -- run ---------------------------------------------------------------------------------


def test_run_plays_a_bundled_script_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "flower_shop", "--stream", "--prompt", "Birthday flowers?"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "== flower_shop (bundled): 1 turn, 0 rules ==",
        "prompt: 'Birthday flowers?'; 1 astream call",
        "call 0: 'Roses, lilies and sunflowers.'",
        "callback timeline (Recorder):",
        "       #      time  r1 FakeChatModel",
        "       0    +0.000  start",
        "       1    +0.300  token 'Roses, '",
        "       2    +0.350  token 'lilies '",
        "       3    +0.400  token 'and '",
        "       4    +0.450  token 'sunflowers.'",
        "       5    +0.450  end",
        "tokens: input=3 output=4 total=7",
        "virtual time: 0.450 s",
        "unused turns: none",
    ]


def test_run_concurrent_calls_take_the_next_turns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _write(tmp_path / "three.yaml", THREE_TURNS)
    assert main(["run", str(script), "--concurrency", "3", "--prompt", "hi"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"== {script}: 4 turns, 0 rules ==",
        "prompt: 'hi'; 3 concurrent ainvoke calls",
        "call 0: 'one'",
        "call 1: 'two'",
        "call 2: 'three'",
        "callback timeline (Recorder):",
        "       #      time  r1 FakeChatModel  r2 FakeChatModel  r3 FakeChatModel",
        "       0    +0.000  start",
        "       1    +0.000  │                 start",
        "       2    +0.000  │                 │                 start",
        "       3    +0.200  │                 end               │",
        "       4    +0.400  │                                   end",
        "       5    +0.600  end",
        "tokens: input=3 output=3 total=6",
        "virtual time: 0.600 s",
        "unused turns: turns[3]: Turn('left over')",
    ]


def test_run_json_is_the_documented_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "flower_shop.yaml", "--stream", "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert list(trace) == [
        "version",
        "script",
        "bundled",
        "prompt",
        "stream",
        "calls",
        "results",
        "virtual_time",
        "usage",
        "unused_turns",
        "events",
    ]
    events = trace.pop("events")
    assert trace == {
        "version": 1,
        "script": "flower_shop.yaml",
        "bundled": True,
        "prompt": "Hello!",
        "stream": True,
        "calls": 1,
        "results": [
            {"call": 0, "text": "Roses, lilies and sunflowers.", "tool_calls": [], "error": None}
        ],
        "virtual_time": 0.45,
        "usage": {"input_tokens": 2, "output_tokens": 4, "total_tokens": 6},
        "unused_turns": [],
    }
    common = {"run": "r1", "parent": None, "name": "FakeChatModel", "type": "chat_model"}
    assert events[0] == {
        "kind": "chat_model_start",
        **common,
        "tags": [],
        "time": 0.0,
        "inputs": [[{"type": "human", "content": "Hello!"}]],
    }
    tokens = [(e["time"], e["token"]) for e in events if e["kind"] == "llm_new_token"]
    assert tokens == [(0.3, "Roses, "), (0.35, "lilies "), (0.4, "and "), (0.45, "sunflowers.")]
    assert events[-1] == {
        "kind": "llm_end",
        **common,
        "tags": [],
        "time": 0.45,
        "text": "Roses, lilies and sunflowers.",
        "usage": {"input_tokens": 2, "output_tokens": 4, "total_tokens": 6},
        "model": "fake-chat-model",
    }
    assert len(events) == 6


def test_run_json_reports_tool_calls_and_scripted_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "tools.json"
    script.write_text(
        json.dumps(
            [
                {"tool_calls": [{"name": "get_price", "args": {"flower": "rose"}}]},
                {"text": "Pink roses!", "error": {"type": "RateLimitError"}, "at_chunk": 1},
            ]
        )
    )
    assert main(["run", str(script), "--concurrency", "2", "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["bundled"] is False
    assert trace["results"] == [
        {
            "call": 0,
            "text": "",
            "tool_calls": [{"name": "get_price", "args": {"flower": "rose"}}],
            "error": None,
        },
        {
            "call": 1,
            "text": None,
            "tool_calls": [],
            "error": "RateLimitError: rate limit exceeded (scripted by fakellm)",
        },
    ]
    assert [e["kind"] for e in trace["events"]] == [
        "chat_model_start",
        "chat_model_start",
        "llm_error",
        "llm_end",
    ]


def test_run_past_the_end_of_the_script_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "flower_shop", "--concurrency", "2"]) == 1
    out, err = capsys.readouterr()
    assert "call 0: 'Roses, lilies and sunflowers.'" in out
    assert "call 1: error UnexpectedCall: FakeChatModel(model_name='fake-chat-model') " in out
    assert err == (
        "fakellm run: 1 call of 2 went past the end of the script; "
        "lower --concurrency or add turns\n"
    )


def _invalid_script(tmp_path: Path) -> Path:
    return _write(tmp_path / "bad.yaml", "turns:\n  - text: hi\n    delay: -1\n")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_run_an_invalid_script_prints_the_problems_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _invalid_script(tmp_path)
    assert main(["run", str(script)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"fakellm run: invalid script in {script}: turns[0].delay: delay must")
    assert "Traceback" not in err


def test_run_a_missing_script_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no/such/script.yaml"]) == 2
    assert capsys.readouterr().err == (
        "fakellm run: cannot read no/such/script.yaml: no such file (bundled scripts: "
        "callbacks, concurrent_calls, file_log, flower_shop, token_counter)\n"
    )


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_run_rejects_a_concurrency_below_one(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "flower_shop", "--concurrency", value])
    assert exit_info.value.code == 2
    assert f"expected a whole number >= 1, got {value!r}" in capsys.readouterr().err


# -- validate ----------------------------------------------------------------------------


def test_validate_lists_every_problem_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    good.write_text('["a", {"text": "b c", "delay": [0.1]}]')
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "turns:\n  - text: hi\n    first_token_delay: -1\n  - error: Nope\nwhen_exhausted: loop\n"
    )
    assert main(["validate", str(good), str(bad), "flower_shop"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith("  turns[1].error: unknown error 'Nope'; accepted: ")
    lines[3] = "(error line)"
    assert lines == [
        f"{good}: ok (2 turns, 0 rules)",
        f"{bad}: invalid, 3 problems",
        "  turns[0].first_token_delay: first_token_delay must be a finite number of seconds >= 0"
        " (got -1)",
        "(error line)",
        "  when_exhausted: accepted: 'raise', 'cycle', 'repeat_last' (got 'loop')",
        "flower_shop: ok (1 turn, 0 rules)",
    ]


def test_validate_all_valid_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for name in _demo.bundled_names():
        path = tmp_path / f"{name}.yaml"
        path.write_text(resources.files("fakellm.scenarios").joinpath(path.name).read_text())
        paths.append(str(path))
    assert main(["validate", *paths]) == 0
    assert all(": ok (" in line for line in capsys.readouterr().out.splitlines())


def test_validate_indents_multi_line_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("turns: [\n")
    assert main(["validate", str(broken)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{broken}: invalid, 1 problem"
    assert lines[1].startswith("  <script>: not valid YAML: ")
    assert all(line.startswith("    ") for line in lines[2:])


def test_validate_a_file_that_cannot_be_read_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("- hello\n")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("- café\n".encode("latin-1"))
    missing = tmp_path / "missing.yaml"
    assert main(["validate", str(good), str(missing), str(tmp_path), str(latin)]) == 2
    out, err = capsys.readouterr()
    assert out == f"{good}: ok (1 turn, 0 rules)\n"
    err_lines = err.splitlines()
    assert err_lines[0].startswith(f"fakellm validate: cannot read {missing}: no such file")
    assert err_lines[1] == f"fakellm validate: cannot read {tmp_path}: not a file"
    assert err_lines[2].startswith(f"fakellm validate: cannot read {latin}: 'utf-8' codec")


# -- help, version, usage errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "phrases"),
    [
        ([], ["demo", "run", "validate", "--version"]),
        (["demo"], ["S2-S7", "wall time", "langchain-classic"]),
        (["run"], ["--concurrency N", "--json", "version       1", "flower_shop"]),
        (["validate"], ["field path", "1 if any is invalid, 2 if any cannot be"]),
    ],
)
def test_help_describes_each_command(
    argv: list[str], phrases: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: fakellm {' '.join(argv)}".rstrip())
    for phrase in phrases:
        assert phrase in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert capsys.readouterr().out == f"fakellm {version}\n"


@pytest.mark.parametrize("argv", [[], ["dance"], ["validate"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("usage: fakellm")


def test_a_reader_that_goes_away_is_not_an_invalid_script() -> None:
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # like `fakellm demo | head`, with head already gone
    try:
        demo = subprocess.run(
            [sys.executable, "-m", "fakellm", "demo"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        os.close(write_end)
    assert demo.returncode == 141
    assert demo.stderr == b""


# -- large runs, JSON errors, misspelled options, consoles without UTF-8 ---------------------


def _json_only(capsys: pytest.CaptureFixture[str]) -> object:
    """What the command printed: one JSON object on stdout, and nothing on stderr."""
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


def _cycling(tmp_path: Path) -> Path:
    cycle = 'turns:\n  - text: "hi"\n    first_token_delay: 0.1\nwhen_exhausted: cycle\n'
    return _write(tmp_path / "many.yaml", cycle)


def test_run_many_calls_shows_the_first_lanes_of_the_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _cycling(tmp_path)
    assert main(["run", str(script), "--concurrency", "6"]) == 0
    lane = "r{} FakeChatModel  "
    assert capsys.readouterr().out.splitlines() == [
        f"== {script}: 1 turn, 0 rules ==",
        "prompt: 'Hello!'; 6 concurrent ainvoke calls",
        *[f"call {i}: 'hi'" for i in range(6)],
        "callback timeline (Recorder):",
        "       #      time  " + "".join(lane.format(k) for k in range(1, 5)).rstrip(),
        "       0    +0.000  start",
        "       1    +0.000  │                 start",
        "       2    +0.000  │                 │                 start",
        "       3    +0.000  │                 │                 │                 start",
        "       6    +0.100  end               │                 │                 │",
        "       7    +0.100                    end               │                 │",
        "       8    +0.100                                      end               │",
        "       9    +0.100                                                        end",
        "  ... the timeline shows the first 4 of 6 runs (--json has every event)",
        "tokens: input=12 output=6 total=18",
        "virtual time: 0.100 s",
        "unused turns: none",
    ]


def test_run_at_the_concurrency_bound_prints_a_bounded_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _cycling(tmp_path)
    assert main(["run", str(script), "--concurrency", str(_cli.MAX_CONCURRENCY)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # 10 calls listed, one line for the rest, 4 lanes of 2 events each: the size of
    # the report no longer grows with the number of calls.
    assert (
        lines[12]
        == "... 990 more calls not listed: 990 replied, 0 failed (--json lists every call)"
    )
    assert len(lines) == 27
    assert max(map(len, lines[1:])) <= 100  # lines[0] names the (temporary) script path
    assert lines[-3] == "tokens: input=2000 output=1000 total=3000"


def test_run_refuses_a_concurrency_past_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "flower_shop", "--concurrency", "100000"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "fakellm run: error: argument --concurrency: at most 1000 calls, got '100000' (the "
        "trace of each call is kept in memory; for load tests drive FakeChatModel from Python)"
    )


def test_run_json_reports_an_invalid_script_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _invalid_script(tmp_path)
    assert main(["run", str(script), "--json"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    message = (
        "delay must be a number of seconds >= 0, a list of them (one per chunk after the "
        "first), or {'repeat': [...]}"
    )
    assert json.loads(out) == {
        "version": 1,
        "script": str(script),
        "error": "invalid_script",
        "message": f"invalid script in {script}: turns[0].delay: {message} (got -1)",
        "problems": [{"path": "turns[0].delay", "value": -1, "message": message}],
    }


def test_run_json_reports_an_unreadable_script_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "no/such.yaml", "--json"]) == 2
    assert _json_only(capsys) == {
        "version": 1,
        "script": "no/such.yaml",
        "error": "unreadable",
        "message": "cannot read no/such.yaml: no such file (bundled scripts: callbacks, "
        "concurrent_calls, file_log, flower_shop, token_counter)",
    }


def test_a_misspelled_option_shows_the_commands_usage_and_the_likely_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "flower_shop", "--concurency", "3"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "usage: fakellm run [-h] [--color {auto,always,never}] [--prompt PROMPT]",
        "                   [--stream] [--concurrency N] [--json]",
        "                   SCRIPT",
        "fakellm run: error: unrecognized arguments: --concurency (did you mean --concurrency?) 3",
    ]
    with pytest.raises(SystemExit):
        main(["demo", "--lst", "--colour=never"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "fakellm demo: error: unrecognized arguments: --lst (did you mean --list?) "
        "--colour=never (did you mean --color?)"
    )


def test_a_console_without_utf8_gets_ascii_lanes_that_stay_aligned(tmp_path: Path) -> None:
    script = _write(tmp_path / "three.yaml", THREE_TURNS)
    done = subprocess.run(
        [sys.executable, "-m", "fakellm", "run", str(script), "--concurrency", "3"],
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii", "NO_COLOR": "1"},
    )
    assert done.stderr == b""
    assert done.stdout.decode("ascii").splitlines()[7:13] == [
        "       0    +0.000  start",
        "       1    +0.000  |                 start",
        "       2    +0.000  |                 |                 start",
        "       3    +0.200  |                 end               |",
        "       4    +0.400  |                                   end",
        "       5    +0.600  end",
    ]


# -- the demo introduces itself -----------------------------------------------------------


def test_the_demo_says_what_it_plays_and_where_to_go_next() -> None:
    assert DEMO[:5] == [
        "fakellm demo: the six programs (S2-S7) of a LangChain tutorial's chapter on callbacks "
        "and token",
        "counting. The tutorial calls OpenAI; here each program runs offline against fakellm's "
        "scripted",
        "models, on virtual time, with a Recorder attached. For each: what the program printed, "
        "the",
        "callbacks the Recorder saw, the tokens counted and the time it took. The output is the "
        "same on",
        "every run but for the wall-time lines.",
    ]
    assert DEMO[-3:] == [
        "Each scenario is also a test in the fakellm repository (examples/seed/), and its "
        "replies a",
        "script (fakellm/scenarios/). Next: write your first test with the fake_llm fixture, as",
        "docs/getting-started.md shows; 'fakellm run SCRIPT' plays a script of your own.",
    ]
    assert max(map(len, DEMO)) <= 100  # timelines too: S6 shows one per round
    assert not any(line.startswith("tokens (Recorder): input=0 ") for line in DEMO)
    for scenario in _demo.SCENARIOS:
        heading = DEMO.index(f"== {scenario.key} {scenario.title} ==")
        assert DEMO[heading + 1] == f"example test: examples/seed/{scenario.test}"
        assert (Path(__file__).parents[2] / "examples" / "seed" / scenario.test).is_file()
        if scenario.script is not None:
            assert scenario.script in _demo.bundled_names()


def test_demo_plays_the_scenarios_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "S5", "s2"]) == 0
    lines = _without_wall_time(capsys.readouterr().out)
    headings = [line for line in lines if line.startswith("== ")]
    assert headings == [  # in the demo's order, whatever the order asked
        "== S2 asyncio: two tasks interleave, decided by their delays ==",
        "== S5 flower shop: sync token handler, async start/end handler ==",
    ]
    s5 = lines.index(headings[1])
    assert lines[s5 + 1 : s5 + 3] == [
        "example test: examples/seed/test_s5_flower_shop_handlers.py",
        "script: fakellm/scenarios/flower_shop.yaml (fakellm run flower_shop)",
    ]
    assert "2 scenarios played offline; 2.450 s of virtual time in total" in lines


def test_demo_list_names_each_scenario_its_test_and_script(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:6] == [
        "S2  asyncio: two tasks interleave, decided by their delays",
        "    example test: examples/seed/test_s2_asyncio.py",
        "    script: none (no model: plain asyncio tasks)",
        "S3  constructor callbacks vs request callbacks, StdOutCallbackHandler",
        "    example test: examples/seed/test_s3_callback_handlers.py",
        "    script: fakellm/scenarios/callbacks.yaml (fakellm run callbacks)",
    ]
    assert len(lines) == 18


def test_demo_refuses_an_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "S9"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "fakellm demo: error: argument SCENARIO: no scenario 'S9'; accepted: S2, S3, S4, S5, S6, S7"
    )


def test_run_json_reports_usage_errors_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "flower_shop", "--json", "--concurency", "2"])
    assert exit_info.value.code == 2
    assert _json_only(capsys) == {
        "version": 1,
        "error": "usage",
        "message": "unrecognized arguments: --concurency (did you mean --concurrency?) 2",
    }
    with pytest.raises(SystemExit):
        main(["run", "flower_shop", "--concurrency", "0"])  # without --json: text, as before
    assert capsys.readouterr().out == ""
