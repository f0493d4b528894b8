"""The ``fakellm`` command (also ``python -m fakellm``): demo, run and validate scripts.

``fakellm demo``
    Plays the seed tutorial's scenarios S2-S7 offline on the bundled scripts and
    prints what each program printed, its callback timeline, token totals, the
    virtual time it took and the wall time it cost. Only the ``wall time`` lines
    differ from run to run.

``fakellm run SCRIPT [--prompt TEXT] [--stream] [--concurrency N] [--json]``
    Plays a script file (YAML or JSON; or a bundled script by name, such as
    ``flower_shop``) on a :class:`~fakellm.FakeChatModel`, ``N`` concurrent calls
    on virtual time, each taking the script's next answer, and prints the
    timeline and usage, or with ``--json`` the trace (schema below). Tools the
    script calls are bound as stubs (no parameters), so tool-call turns play.

``fakellm validate SCRIPT...``
    Checks script files and prints every problem with its field path.

Exit status: 0 on success; 1 when a script is invalid (``run``, ``validate``) or a
``run`` call went past the end of its script (``UnexpectedCall``); 2 on a usage
error or a script file that cannot be read (missing, a directory, not UTF-8).

The ``run --json`` trace is documented in :data:`TRACE_SCHEMA` (also in ``run --help``).

Colour and progress appear only when stdout is a terminal (``--color always``
forces colour; ``NO_COLOR`` set to anything non-empty, or ``TERM=dumb``,
turns it off).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn, TextIO

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable

from fakellm import _demo
from fakellm._clock import run_scenario
from fakellm._model import FakeChatModel
from fakellm._recorder import Recorder
from fakellm._script import Script, parse_script_text, stub_tools
from fakellm.errors import InvalidScript, UnexpectedCall

__all__ = ["main"]

TRACE_VERSION = 1

#: The ``run --json`` trace: one JSON object with exactly these keys.
TRACE_SCHEMA = """\
The --json trace (version 1) is one JSON object with exactly these keys:
  version       1; bumped on any incompatible change
  script        the SCRIPT argument as given (a path or a bundled name)
  bundled       whether SCRIPT named a bundled script rather than a file
  prompt        the prompt every call sent
  stream        whether the calls streamed (astream) or not (ainvoke)
  calls         how many calls were made (--concurrency)
  results       one object per call, in call order: {"call": i, "text": str or
                null, "tool_calls": [{"name": str, "args": {...}}], "error":
                "Type: message" or null}
  virtual_time  virtual seconds from the first call's start to the last's end
  usage         {"input_tokens", "output_tokens", "total_tokens"}, all calls
  unused_turns  what the script still held afterwards (descriptions)
  events        the Recorder's events as EventLog.normalized(times=True): one
                object per callback with "kind", "run" (r1, r2, ...),
                "parent", "name", "type", "tags", "time" (virtual seconds since
                the first event) and the kind's payload ("inputs", "token",
                "text", "usage", "model", "error", "outputs", ...)"""

DEFAULT_PROMPT = "Hello!"
#: The most calls ``run --concurrency`` makes: each costs about 3 ms and 100 KB
#: (the recorded events and their trace), so the bound keeps a run to seconds.
MAX_CONCURRENCY = 1000
#: Past this many calls (runs), the text output lists the first few and counts the rest:
#: a timeline has one column per run, so its size grows with the square of their number.
MAX_LISTED, LISTED = 20, 10
MAX_LANES, LANES = 4, 4
EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141


class _Unreadable(Exception):
    """A SCRIPT argument that names no readable file and no bundled script."""


@dataclass(frozen=True)
class _Source:
    """A resolved SCRIPT argument."""

    arg: str
    bundled: bool


def _resolve(arg: str) -> _Source:
    """A file path if one exists, else a bundled script's name; else :class:`_Unreadable`."""
    path = Path(arg)
    if path.is_file():
        return _Source(arg, bundled=False)
    name = arg.removesuffix(".yaml")
    if os.sep not in arg and "/" not in arg and name in _demo.bundled_names():
        return _Source(arg, bundled=True)
    if path.exists():
        raise _Unreadable(f"cannot read {arg}: not a file")
    bundled = ", ".join(_demo.bundled_names())
    raise _Unreadable(f"cannot read {arg}: no such file (bundled scripts: {bundled})")


def _load(source: _Source) -> Script:
    """Load a resolved script; raises InvalidScript (or _Unreadable for non-UTF-8 files)."""
    if source.bundled:
        return _demo.bundled_script(source.arg)
    path = Path(source.arg)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(f"cannot read {source.arg}: {exc}") from None
    # What load_script(path) does once the text is read: JSON for .json, else YAML.
    return parse_script_text(text, source=source.arg, json_only=path.suffix == ".json")


def _is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that understands ANSI codes (not ``TERM=dumb``)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def _wants_colour(choice: str, stream: TextIO) -> bool:
    """Colour for ``--color auto`` only on a terminal and without NO_COLOR (no-color.org)."""
    if choice != "auto":
        return choice == "always"
    return _is_terminal(stream) and not os.environ.get("NO_COLOR")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# The timeline's lane marks, and what they become where stdout cannot encode them
# (a Windows console, LANG=C): one ASCII character each, so columns stay aligned.
_ASCII = str.maketrans({"│": "|", "…": "."})
_ascii_only = False


def _emit(line: str) -> None:
    print(line.translate(_ASCII) if _ascii_only else line, file=sys.stdout)


def _progress_writer(enabled: bool) -> Callable[[str], None] | None:
    """A one-line, self-erasing progress display on stderr, or None."""
    if not enabled:
        return None

    def write(text: str) -> None:
        sys.stderr.write("\r\x1b[K" + text)
        sys.stderr.flush()

    return write


# -- demo ----------------------------------------------------------------------------------


def _demo_command(args: argparse.Namespace) -> int:
    if args.list:
        for scenario in _demo.SCENARIOS:
            _emit(f"{scenario.key}  {scenario.title}")
            for line in _demo.describe(scenario):
                _emit(f"    {line}")
        return EXIT_OK
    style = _demo.Style(colour=_wants_colour(args.color, sys.stdout))
    interactive = _is_terminal(sys.stdout) and _is_terminal(sys.stderr)
    chosen = [s for s in _demo.SCENARIOS if not args.scenarios or s.key in args.scenarios]
    _demo.play(chosen, style, _emit, _progress_writer(interactive))
    sys.stdout.flush()
    return EXIT_OK


# -- run -----------------------------------------------------------------------------------


async def _one_call(
    model: Runnable[Any, BaseMessage], prompt: str, stream: bool, rec: Recorder
) -> BaseMessage:
    """One call of ``fakellm run``: an ainvoke, or an astream whose chunks are summed."""
    config: Any = {"callbacks": [rec]}
    if not stream:
        return await model.ainvoke(prompt, config=config)
    full = AIMessageChunk(content="")
    async for chunk in model.astream(prompt, config=config):
        assert isinstance(chunk, AIMessageChunk)
        full += chunk
    return full


def _result_row(index: int, outcome: object) -> dict[str, Any]:
    if isinstance(outcome, BaseException):
        return {
            "call": index,
            "text": None,
            "tool_calls": [],
            "error": f"{type(outcome).__name__}: {outcome}",
        }
    assert isinstance(outcome, BaseMessage)
    calls = getattr(outcome, "tool_calls", None) or []
    return {
        "call": index,
        "text": outcome.text,
        "tool_calls": [{"name": c["name"], "args": c["args"]} for c in calls],
        "error": None,
    }


def _json_error(args: argparse.Namespace, kind: str, message: str, problems: Any) -> None:
    """The ``run --json`` answer when there is no trace: one JSON object on stdout."""
    error = {"version": TRACE_VERSION, "script": args.script, "error": kind, "message": message}
    if problems is not None:
        error["problems"] = [
            {"path": p.path, "value": _jsonable(p.value), "message": p.message} for p in problems
        ]
    print(json.dumps(error, indent=2, ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _run_command(args: argparse.Namespace) -> int:
    try:
        source = _resolve(args.script)
        script = _load(source)
    except _Unreadable as exc:
        if args.json:
            _json_error(args, "unreadable", str(exc), None)
        else:
            print(f"fakellm run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidScript as exc:
        if args.json:
            _json_error(args, "invalid_script", str(exc), exc.problems)
        else:
            print(f"fakellm run: {exc}", file=sys.stderr)
        return EXIT_INVALID

    model = FakeChatModel(script=script)
    tools = stub_tools(script)
    runnable = model.bind_tools(tools) if tools else model
    rec = Recorder()
    n = args.concurrency
    scenario = run_scenario(
        *(_one_call(runnable, args.prompt, args.stream, rec) for _ in range(n)),
        names=[f"call-{i}" for i in range(n)],
        return_exceptions=True,
        freeze=False,
    )
    log = rec.events
    results = [_result_row(i, r) for i, r in enumerate(scenario.results)]
    ran_out = sum(isinstance(r, UnexpectedCall) for r in scenario.results)

    if args.json:
        trace = {
            "version": TRACE_VERSION,
            "script": args.script,
            "bundled": source.bundled,
            "prompt": args.prompt,
            "stream": args.stream,
            "calls": n,
            "results": results,
            "virtual_time": round(scenario.elapsed, 6),
            "usage": log.usage(),
            "unused_turns": model.unused_turns,
            "events": log.normalized(times=True),
        }
        print(json.dumps(trace, indent=2, ensure_ascii=False))
    else:
        style = _demo.Style(colour=_wants_colour(args.color, sys.stdout))
        turns, rules = len(script.turns), len(script.rules)
        where = f"{args.script} (bundled)" if source.bundled else args.script
        _emit(style.heading(f"== {where}: {_plural(turns, 'turn')}, {_plural(rules, 'rule')} =="))
        mode = "astream" if args.stream else "ainvoke"
        calls = _plural(n, f"{'concurrent ' if n > 1 else ''}{mode} call")
        _emit(f"prompt: {args.prompt!r}; {calls}")
        shown = results if n <= MAX_LISTED else results[:LISTED]
        for row in shown:
            if row["error"] is not None:
                first, *rest = str(row["error"]).splitlines()
                _emit(style.bad(f"call {row['call']}: error {first}"))
                for more in rest:
                    _emit(f"    {more}")
                continue
            line = f"call {row['call']}: {row['text']!r}"
            for call in row["tool_calls"]:
                line += f" tool_call {call['name']}({json.dumps(call['args'])})"
            _emit(line)
        if len(shown) < n:
            unlisted = results[len(shown) :]
            failed = sum(row["error"] is not None for row in unlisted)
            _emit(
                f"... {_plural(len(unlisted), 'more call')} not listed: {len(unlisted) - failed} "
                f"replied, {failed} failed (--json lists every call)"
            )
        _emit(style.label("callback timeline (Recorder):"))
        runs = log.runs()
        lanes = runs if len(runs) <= MAX_LANES else runs[:LANES]
        for line in log.timeline(lanes).splitlines():
            _emit(f"  {line}".rstrip())
        if len(lanes) < len(runs):
            _emit(
                f"  ... the timeline shows the first {len(lanes)} of {len(runs)} runs "
                "(--json has every event)"
            )
        usage = log.usage()
        _emit(
            f"tokens: input={usage['input_tokens']} output={usage['output_tokens']} "
            f"total={usage['total_tokens']}"
        )
        _emit(f"virtual time: {scenario.elapsed:.3f} s")
        unused = model.unused_turns
        _emit("unused turns: " + ("; ".join(unused) if unused else "none"))
    if ran_out:
        print(
            f"fakellm run: {_plural(ran_out, 'call')} of {n} went past the end of the "
            "script; lower --concurrency or add turns",
            file=sys.stderr,
        )
        return EXIT_INVALID
    return EXIT_OK


# -- validate ------------------------------------------------------------------------------


def _validate_command(args: argparse.Namespace) -> int:
    style = _demo.Style(colour=_wants_colour(args.color, sys.stdout))
    status = EXIT_OK
    for arg in args.scripts:
        try:
            script = _load(_resolve(arg))
        except _Unreadable as exc:
            print(f"fakellm validate: {exc}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        except OSError as exc:  # e.g. a name too long for the file system
            shown = arg if len(arg) <= 80 else arg[:77] + "..."
            print(f"fakellm validate: cannot read {shown}: {exc.strerror}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        except InvalidScript as exc:
            n = len(exc.problems)
            _emit(style.bad(f"{arg}: invalid, {_plural(n, 'problem')}"))
            for problem in exc.problems:
                first, *rest = str(problem).splitlines()
                _emit(f"  {first}")
                for more in rest:
                    _emit(f"    {more}")
            status = max(status, EXIT_INVALID)
            continue
        counts = f"{_plural(len(script.turns), 'turn')}, {_plural(len(script.rules), 'rule')}"
        _emit(style.good(f"{arg}: ok") + f" ({counts})")
    return status


# -- the parser ----------------------------------------------------------------------------


def _version() -> str:
    try:
        return metadata.version("langchain-fakellm")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _fill(text: str) -> str:
    return textwrap.fill(text, width=79)


def _scenario_key(text: str) -> str:
    key = text.upper() if text.upper().startswith("S") else f"S{text}"
    keys = [s.key for s in _demo.SCENARIOS]
    if key not in keys:
        raise argparse.ArgumentTypeError(f"no scenario {text!r}; accepted: {', '.join(keys)}")
    return key


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_CONCURRENCY} calls, got {text!r} (the trace of each call is kept "
            "in memory; for load tests drive FakeChatModel from Python)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``fakellm`` argument parser, with one sub-parser per command."""
    parser = _Parser(
        prog="fakellm",
        description="Offline, deterministic fake LLMs for testing LangChain apps.",
        epilog="Run 'fakellm COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    common = _Parser(add_help=False)
    common.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the output: auto (default) only on a terminal without NO_COLOR",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="play the tutorial's scenarios S2-S7 offline",
        description=(
            "Play the seed tutorial's callback scenarios S2-S7 offline on the bundled "
            "scripts, on virtual time: for each, what the program printed, its callback "
            "timeline, token totals, the virtual time it took and the wall time it cost. "
            "The output is identical on every run except the 'wall time' lines. "
            "S4, S6 and S7 need langchain-classic / langchain-community (the dev extra) "
            "and are skipped with a note without them."
        ),
    )
    keys = [s.key for s in _demo.SCENARIOS]
    demo.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        type=_scenario_key,
        help=f"play only these ({', '.join(keys)}); default: all",
    )
    demo.add_argument(
        "--list", action="store_true", help="list the scenarios, their tests and scripts"
    )
    demo.set_defaults(handler=_demo_command, command_parser=demo)

    bundled = ", ".join(_demo.bundled_names())
    run = sub.add_parser(
        "run",
        parents=[common],
        help="play a script file against a prompt and show the trace",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_fill(
            "Play SCRIPT on a FakeChatModel on virtual time: N concurrent calls, each "
            "taking the script's next turn (tools the script calls are bound as stubs). "
            "Print the replies, the callback timeline, token usage and virtual time; "
            "or, with --json, the trace as JSON. Exit status: 0 when played (scripted "
            "errors included), 1 for an invalid script or calls past its end, 2 when "
            "SCRIPT cannot be read."
        ),
        epilog=f"{_fill(f'Bundled scripts (usable by name): {bundled}.')}\n\n{TRACE_SCHEMA}",
    )
    run.add_argument("script", metavar="SCRIPT", help="a .yaml/.yml/.json file or bundled name")
    run.add_argument(
        "--prompt",
        default=DEFAULT_PROMPT,
        help=f"what each call sends (default {DEFAULT_PROMPT!r})",
    )
    run.add_argument("--stream", action="store_true", help="stream (astream) instead of ainvoke")
    run.add_argument(
        "--concurrency",
        type=_positive,
        default=1,
        metavar="N",
        help=(
            f"make N concurrent calls, 1 to {MAX_CONCURRENCY}; each takes the script's next "
            "turn (default 1)"
        ),
    )
    run.add_argument("--json", action="store_true", help="print the trace as JSON")
    run.set_defaults(handler=_run_command, command_parser=run)

    validate = sub.add_parser(
        "validate",
        parents=[common],
        help="check script files and list every problem with its field path",
        description=(
            "Check each SCRIPT and print 'ok' or every problem with its field path. "
            "Exit status: 0 if all are valid, 1 if any is invalid, 2 if any cannot be "
            "read (missing, a directory, not UTF-8)."
        ),
    )
    validate.add_argument("scripts", nargs="+", metavar="SCRIPT", help="script files to check")
    validate.set_defaults(handler=_validate_command, command_parser=validate)
    return parser


def _safe_streams() -> None:
    """Where the console cannot encode the timeline's marks, draw them in ASCII, and
    let other text it cannot encode (a reply's emoji) degrade to escapes, not crash."""
    global _ascii_only
    _ascii_only = False
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            "│…".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            _ascii_only = _ascii_only or stream is sys.stdout
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="backslashreplace")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors, for ``run --json``, are JSON as well:
    a program reading the trace gets one JSON object whatever went wrong."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if self.json_errors and self.prog == "fakellm run":
            error = {"version": TRACE_VERSION, "error": "usage", "message": message}
            print(json.dumps(error, indent=2, ensure_ascii=False))
            self.exit(EXIT_USAGE)
        super().error(message)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unknown option is reported by its command's parser (its usage,
    and the option it probably meant), not by the top-level one."""
    given = list(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = "--json" in given
    args, extra = parser.parse_known_args(given)
    if extra:
        command: argparse.ArgumentParser = args.command_parser
        known = re.findall(r"-?-[\w-]+", command.format_usage())
        hints = []
        for arg in extra:
            close = difflib.get_close_matches(arg.split("=", 1)[0], known, n=1)
            if arg.startswith("-") and close:
                hints.append(f"{arg} (did you mean {close[0]}?)")
            else:
                hints.append(arg)
        command.error(f"unrecognized arguments: {' '.join(hints)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fakellm`` console script; returns the exit status."""
    args = _parse(build_parser(), argv)
    _safe_streams()
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except BrokenPipeError:  # e.g. `fakellm demo | head`: stop quietly, like other tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        # What a shell reports for a reader that went away (128 + SIGPIPE), as
        # `git log | head` does: not 1, which says the script was invalid.
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
