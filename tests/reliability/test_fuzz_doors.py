"""Fuzzing every door through which user data enters fakellm.

The doors: the script constructors (``Turn``, ``ToolCall``, ``Usage``, ``Rule``,
``Script``, ``FakeChatModel(script=)``, ``FakeLLM(script=)``), ``load_script`` on
Python data, YAML text, JSON text, the ``@pytest.mark.fakellm`` marker's script
argument, and ``fakellm validate``. Whatever goes in, the only exception that may
come out is :class:`~fakellm.errors.InvalidScript` (the marker: its one-line
setup failure; ``validate``: an exit status and no traceback), and every call
ends within a time and a memory bound.

CI runs a modest number of examples per door. The thorough run, by hand::

    FAKELLM_FUZZ_EXAMPLES=10000 python -m pytest -p no:cacheprovider \\
        tests/reliability/test_fuzz_doors.py

(at 10,000 per door it takes a few minutes on one core). Examples are derived
from a fixed seed, so a run is reproducible; ``FAKELLM_FUZZ_SEED`` picks another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import os
import re
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from fakellm import FakeChatModel, FakeLLM, Rule, Script, ToolCall, Turn, Usage, errors
from fakellm._cli import main as cli_main
from fakellm._script import as_script, load_script, parse_script_text
from fakellm.errors import InvalidScript
from fakellm.fixtures import _marker_script
from tests.reliability.conftest import watchdog
from tests.reliability.test_bad_input import YAML_FRAGMENTS as BASIC_FRAGMENTS

EXAMPLES = int(os.environ.get("FAKELLM_FUZZ_EXAMPLES", "60"))
SEED = int(os.environ.get("FAKELLM_FUZZ_SEED", "19"))
SECONDS = 20  # per call: a hang detector, far above what any call takes
PEAK_BYTES = 200_000_000  # per call, traced by tracemalloc

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# -- what goes in ---------------------------------------------------------------------------------

FIELDS = sorted(
    {*Script.model_fields, *Turn.model_fields, *ToolCall.model_fields, *Usage.model_fields}
    | {*Rule.model_fields, "repeat", "regex", "type", "message", "retry_after", "status_code"}
    | {"args", "audio", "reasoning", "cache_read", "input_token_details", "k"}
)
NAMES = [
    "words",
    "chars",
    "end",
    "raise",
    "cycle",
    "repeat_last",
    "RateLimitError",
    "ServerError",
    "APIConnectionError",
    "TimeoutError",
    "ValueError",
    "KeyError",
    "UnicodeDecodeError",
    "SystemExit",
    "KeyboardInterrupt",
    "GeneratorExit",
    "StopIteration",
    "BaseException",
    "__class__",
    "",
    "hello world",
    "(",
    "[a-",
    r"\s+",
]
OBJECTS = [
    re.compile("a"),
    re.compile(b"a"),
    re.compile(r"\s+"),
    ValueError,
    ValueError("boom"),
    KeyboardInterrupt,
    SystemExit(1),
    asyncio.CancelledError,
    StopIteration,
    errors.RateLimitError(retry_after=1.0),
    errors.ServerError,
    int,
    object(),
    lambda call: "x",
    Turn("ok"),
    ToolCall("f"),
    Usage(input_tokens=1),
    Script(["a"]),
    2**63,
    b"\xff\xfe",
]


def _nest(depth: int, leaf: Any, as_list: bool) -> Any:
    return functools.reduce(
        lambda inner, _: [inner] if as_list else {"a": inner}, range(depth), leaf
    )


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NAMES),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.dates(),
    st.datetimes(),
    st.sampled_from(OBJECTS),
    # Ints too long to print (their repr raises): made by map, never shown by sampled_from.
    st.integers(300, 5000).map(lambda digits: 10**digits),
)
hashables = st.text(max_size=3) | st.integers(-3, 3) | st.none()
keys = st.sampled_from(FIELDS) | st.text(max_size=4) | st.integers(0, 3) | st.none() | st.booleans()


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(hashables, max_size=3)
        | st.sets(hashables, max_size=3)
        | st.dictionaries(keys, inner, max_size=4)
    )


values = st.recursive(scalars, _containers, max_leaves=25) | st.builds(
    _nest, st.integers(30, 1200), scalars, st.booleans()
)
turn_like = st.dictionaries(st.sampled_from(sorted(Turn.model_fields)) | keys, values, max_size=6)
script_like = st.one_of(
    st.fixed_dictionaries(
        {"turns": st.lists(turn_like | scalars, max_size=4) | turn_like},
        optional={"rules": st.lists(values, max_size=3) | values, "when_exhausted": values},
    ),
    st.dictionaries(keys, values, max_size=4),
    st.lists(turn_like | values, max_size=4),
    values,
)


def _kwargs(fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.sampled_from(sorted(fields)) | st.text(max_size=4), values, max_size=5
    )


constructors: st.SearchStrategy[Callable[[], Any]] = st.one_of(
    st.builds(lambda t, kw: lambda: Turn(t, **kw), st.none() | values, _kwargs(Turn.model_fields)),
    st.builds(lambda kw: lambda: ToolCall(**kw), _kwargs(ToolCall.model_fields)),
    st.builds(lambda kw: lambda: Usage(**kw), _kwargs(Usage.model_fields)),
    st.builds(lambda kw: lambda: Rule(**kw), _kwargs(Rule.model_fields)),
    st.builds(lambda v: lambda: Script(v), values | st.lists(turn_like | scalars, max_size=4)),
    st.builds(lambda kw: lambda: Script(**kw), _kwargs(Script.model_fields)),
    st.builds(lambda v: lambda: FakeChatModel(script=v), script_like),
    st.builds(lambda v: lambda: FakeLLM(script=v), script_like),
    st.builds(lambda v: lambda: as_script(v), script_like),
)

YAML_FRAGMENTS = [
    *BASIC_FRAGMENTS,
    "{type: ServerError, status: 503}",
    "{regex: ",
    "input_token_details: ",
    "!!bool maybe",
    "!!timestamp tomorrow",
    "!!binary aGk=",
    "!!int 0x",
    "!!float x",
    "!!set {a}",
    "9" * 4400,
    "1" + "0" * 400,
    "yes",
    "[" * 60,
    "SystemExit",
]


def _dump(data: Any, as_json: bool) -> str:
    try:
        if as_json:
            return json.dumps(data, default=repr)
        return yaml.safe_dump(data, allow_unicode=True)
    except Exception:
        return ""


def _cut(text: str, at: int) -> str:
    return text[:at] + text[at + 1 :] if text else text


yaml_texts = st.one_of(
    st.lists(st.sampled_from(YAML_FRAGMENTS) | st.text(max_size=4), max_size=30).map("".join),
    st.builds(_cut, st.builds(_dump, script_like, st.just(False)), st.integers(0, 200)),
    st.builds(_dump, script_like, st.just(False)),
)
json_texts = st.one_of(
    st.builds(_dump, script_like, st.just(True)),
    st.builds(_cut, st.builds(_dump, script_like, st.just(True)), st.integers(0, 200)),
    st.lists(st.sampled_from(['{"turns": ', "[", "]", "{", "}", '"a"', ", ", ": ", "1e999"])).map(
        "".join
    ),
    st.text(max_size=20),
)


# -- the bounds -----------------------------------------------------------------------------------


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    """Fail a call that runs past SECONDS or allocates more than PEAK_BYTES at once.

    A generous hang and blow-up detector, not a timing assertion.
    """
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        with watchdog(SECONDS):
            yield
        peak = tracemalloc.get_traced_memory()[1]
        assert peak < PEAK_BYTES, f"peak memory {peak:,} bytes"
    finally:
        if not started:
            tracemalloc.stop()


def only_invalid_script(call: Callable[[], Any]) -> None:
    with bounded():
        try:
            call()
        except InvalidScript as exc:
            caught = exc
        else:
            return
    assert caught.problems
    assert str(caught).startswith("invalid script")
    assert caught.__cause__ is None
    assert all(len(str(p)) < 1000 for p in caught.problems), str(caught)[:2000]


# -- the doors ------------------------------------------------------------------------------------


@seed(SEED)
@FUZZ
@given(constructors)
def test_constructors_raise_only_invalid_script(call):
    only_invalid_script(call)


@seed(SEED)
@FUZZ
@given(script_like)
def test_load_script_on_data_raises_only_invalid_script(data):
    only_invalid_script(lambda: load_script(data))


@seed(SEED)
@FUZZ
@given(yaml_texts)
def test_yaml_text_raises_only_invalid_script(text):
    only_invalid_script(lambda: parse_script_text(text, source="fuzz.yaml"))


@seed(SEED)
@FUZZ
@given(json_texts)
def test_json_text_raises_only_invalid_script(text):
    only_invalid_script(lambda: parse_script_text(text, source="fuzz.json", json_only=True))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@seed(SEED)
@FUZZ
@given(
    script=script_like | yaml_texts,
    as_file=st.booleans(),
)
def test_the_marker_fails_setup_in_one_line_or_loads(folder, script, as_file):
    item = SimpleNamespace(path=folder / "test_app.py", nodeid="test_app.py::test_x")
    where = "@pytest.mark.fakellm on test_app.py::test_x"
    if as_file and isinstance(script, str):
        (folder / "script.yaml").write_text(script, encoding="utf-8", errors="surrogatepass")
        script = "script.yaml"
    with bounded():
        try:
            loaded: object = _marker_script(item, script, where)  # type: ignore[arg-type]
        except pytest.fail.Exception as failure:
            loaded = failure
    if isinstance(loaded, pytest.fail.Exception):
        assert loaded.pytrace is False
        assert str(loaded.msg).startswith(f"{where}: ")
    else:
        assert isinstance(loaded, Script)


@seed(SEED)
@FUZZ
@given(text=yaml_texts | json_texts, suffix=st.sampled_from([".yaml", ".json", ".yml"]))
def test_validate_exits_with_a_status_and_never_a_traceback(folder, text, suffix):
    path = folder / f"script{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with bounded(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli_main(["validate", "--color", "never", str(path)])
    first = out.getvalue().splitlines()[:1]
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if status == 0:
        assert first[0].startswith(f"{path}: ok (")
    elif status == 1:
        assert first[0].startswith(f"{path}: invalid, ")
    else:
        assert status == 2
        assert err.getvalue().startswith(f"fakellm validate: cannot read {path}: ")
