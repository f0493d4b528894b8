"""Strategy arguments are checked as Hypothesis checks its own: lazily, as
``InvalidArgument`` worded ``name=value`` plus what is accepted; every strategy
is registered for ``st.from_type``; counterexamples print as code to paste."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from fakellm import Rule, Script, ToolCall, Turn, Usage, errors, strategies
from fakellm.chaos import Chaos, Quota
from fakellm.strategies import Scenario

from .common import FAST
from .test_strategies import TOOLS

ACCEPTS_ERRORS = (
    "a non-empty list or tuple of exception classes, such as "
    "[errors.RateLimitError, errors.ServerError]"
)

# (the strategy as a user writes it, the exact message)
BAD_ARGUMENTS = [
    ("scenarios(calls=0)", "calls=0: expected an integer >= 1 (how many concurrent calls)"),
    (
        "scenarios(max_start_ms=-1)",
        "max_start_ms=-1: expected an integer >= 0 (whole milliseconds)",
    ),
    ("scenarios(max_holds=-1)", "max_holds=-1: expected an integer >= 0"),
    ("usage(max_tokens=-1)", "max_tokens=-1: expected an integer >= 0"),
    ("errors(types=ValueError)", f"types=<class 'ValueError'>: expected {ACCEPTS_ERRORS}"),
    (
        "errors(types=[ValueError, 3])",
        f"types[1]=3: not an exception class; expected {ACCEPTS_ERRORS}",
    ),
    (
        "turns(errors='yes')",
        "errors='yes': expected True (DEFAULT_ERRORS), False (no errors), or a non-empty "
        "list or tuple of exception classes",
    ),
    (
        "scenarios(scripts=turns())",
        "scripts=turns(): a strategy of Turn; expected a strategy of Script "
        "(scripts of such turns: scripts(turns=turns()))",
    ),
    (
        "turns(usage='x')",
        "usage='x': expected True or False (explicit usage on some turns, or always computed)",
    ),
    ("turns(max_tool_calls=-1)", "max_tool_calls=-1: expected an integer >= 0"),
    (
        "token_streams(text='abc', max_chunks=0)",
        "max_chunks=0: cuts of text='abc' are at least one chunk; expected max_chunks >= 1",
    ),
    (
        "token_streams(min_chunks=3, max_chunks=1)",
        "max_chunks=1 < min_chunks=3: expected min_chunks <= max_chunks",
    ),
    ("latencies(max_ms=-5)", "max_ms=-5: expected an integer >= 0 (whole milliseconds)"),
    ("latencies(size=True)", "size=True: expected an integer >= 0"),
    (
        "tool_calls(tools=[])",
        "tools=[]: expected None (free-form calls) or a non-empty list of what bind_tools "
        "takes: functions, pydantic models, BaseTools, OpenAI tool dicts",
    ),
    (
        "scripts(turns=st.integers())",
        "turns=integers() drew 0, not a Turn; expected a strategy of Turn",
    ),
    (
        "scenarios(calls=2, max_calls=3)",
        "calls=2 and max_calls=3: give either calls (a fixed number) or min_calls/max_calls "
        "(a range that shrinks), not both",
    ),
    ("scenarios(min_calls=0)", "min_calls=0: expected an integer >= 1"),
    ("chaos(failure_rate=2)", "failure_rate=2: expected a probability in [0, 1]"),
    ("chaos(truncate_rate=-1)", "truncate_rate=-1: expected a probability in [0, 1]"),
    ("chaos(max_slow_ms=0)", "max_slow_ms=0: expected an integer >= 1 (whole milliseconds)"),
    (
        "chaos(quota=turns())",
        "quota=turns(): a strategy of Turn; expected a strategy of Quota",
    ),
    (
        "turns(alphabet=3)",
        "alphabet=3: expected a strategy of characters, such as st.characters(), "
        "or a non-empty string of them",
    ),
]

NAMESPACE = {"st": st, **{name: getattr(strategies, name) for name in strategies.__all__}}


@pytest.mark.parametrize(("call", "message"), BAD_ARGUMENTS, ids=[c for c, _ in BAD_ARGUMENTS])
def test_a_bad_argument_is_named_at_first_draw_not_when_built(call: str, message: str) -> None:
    strategy = eval(call, NAMESPACE)  # building never raises

    @settings(max_examples=1, database=None)
    @given(strategy)
    def first_use(value):
        pass

    with pytest.raises(InvalidArgument) as caught:
        first_use()
    assert str(caught.value) == message


def test_a_bad_given_fails_only_its_own_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the plugins this needs (autoloading every installed one costs seconds).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    tests = "\n".join(
        f"@given({call})\ndef test_{k}(value):\n    pass\n\n"
        for k, (call, _) in enumerate(BAD_ARGUMENTS)
    )
    pytester.makepyfile(
        test_bad=textwrap.dedent(
            """\
            from hypothesis import given, settings
            from hypothesis import strategies as st
            from fakellm.strategies import *

            @settings(max_examples=3, database=None)
            @given(scenarios(calls=1))
            def test_good(scenario):
                assert scenario.calls == 1

            """
        )
        + tests
    )
    result = pytester.runpytest(
        *("-p", "_hypothesis_pytestplugin", "-p", "no:cacheprovider", "--tb=line")
    )
    result.assert_outcomes(passed=1, failed=len(BAD_ARGUMENTS))
    result.stdout.fnmatch_lines(
        [f"FAILED test_bad.py::test_{k} - *" for k in range(len(BAD_ARGUMENTS))], consecutive=False
    )
    for _, message in BAD_ARGUMENTS:
        pattern = message.replace("[", "[[]")
        result.stdout.fnmatch_lines([f"*hypothesis.errors.InvalidArgument: {pattern}"])


# -- from_type ----------------------------------------------------------------------------


@FAST
@given(st.from_type(Turn), st.from_type(Script), st.from_type(ToolCall), st.from_type(Usage))
def test_from_type_draws_valid_script_parts(turn, script, call, usage):
    assert isinstance(turn, Turn)
    assert isinstance(script, Script)
    assert isinstance(call, ToolCall)
    assert isinstance(usage, Usage)
    assert 1 <= len(script.turns) <= 3


@FAST
@given(
    st.from_type(Scenario),
    st.from_type(Chaos),
    st.from_type(Quota),
    st.from_type(strategies.ErrorAt),
)
def test_from_type_draws_scenarios_chaos_and_errors(scenario, chaos, quota, failure):
    assert 1 <= scenario.calls <= 3
    assert chaos == Chaos()  # no faults unless asked: from_type is the quiet default
    assert 1 <= quota.requests <= 5
    assert failure.error in strategies.DEFAULT_ERRORS


# -- reprs: pasteable, and they evaluate back to equal objects ------------------------------

SOURCE_NAMES = {
    "Turn": Turn,
    "Script": Script,
    "Rule": Rule,
    "ToolCall": ToolCall,
    "Usage": Usage,
    "errors": errors,
    "Scenario": Scenario,
    "Chaos": Chaos,
    "Quota": Quota,
}


@FAST
@given(
    strategies.scripts(turns=strategies.turns(tools=TOOLS, reasoning=True)) | strategies.scripts(),
)
def test_drawn_scripts_print_as_source_that_evaluates_back(script):
    text = strategies.source(script)
    assert eval(text, dict(SOURCE_NAMES)) == script
    for turn in script.turns:
        assert eval(strategies.source(turn), dict(SOURCE_NAMES)) == turn


@FAST
@given(strategies.scenarios(chaos=strategies.chaos(failure_rate=0.3, max_requests=3)))
def test_scenario_reprs_evaluate_back(scenario):
    assert eval(repr(scenario), dict(SOURCE_NAMES)) == scenario


def test_the_source_form_names_only_what_differs_from_the_defaults() -> None:
    turn = Turn(
        chunks=("Ro", "ses"),
        first_token_delay=0.3,
        delay=(0.05, 0.05),
        error=errors.RateLimitError,
        at_chunk=1,
        usage=Usage(input_tokens=3),
        tool_calls=[ToolCall("get_price", {"flower": "rose"})],
    )
    assert strategies.source(turn) == (
        "Turn(tool_calls=(ToolCall('get_price', {'flower': 'rose'}),), chunks=('Ro', 'ses'), "
        "first_token_delay=0.3, delay=(0.05, 0.05), error=errors.RateLimitError, at_chunk=1, "
        "usage=Usage(input_tokens=3))"
    )
    script = Script(
        ["hello", Turn("slow", first_token_delay=2.0)],
        rules=[Rule(match="price", respond="3 euros", times=1)],
        when_exhausted="repeat_last",
    )
    assert strategies.source(script) == (
        "Script(['hello', Turn('slow', first_token_delay=2.0)], "
        "rules=(Rule(respond=Turn('3 euros'), match='price', times=1),), "
        "when_exhausted='repeat_last')"
    )
    assert strategies.source(Turn(error=TimeoutError)) == "Turn(error=TimeoutError)"
    assert (
        strategies.source(Turn(error=errors.RateLimitError(retry_after=1.5)))
        == "Turn(error=errors.RateLimitError(retry_after=1.5))"
    )


def test_a_failing_turn_prints_as_source_in_the_falsifying_example() -> None:
    @FAST
    @given(strategies.turns())
    def never_fails(turn):
        assert turn.error is None

    with pytest.raises(AssertionError) as caught:
        never_fails()
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "turn=Turn(chunks=(), error=errors.RateLimitError)," in notes
