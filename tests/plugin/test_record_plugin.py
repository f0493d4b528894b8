"""The intercept marker argument, fixture method and cassettes, run in inner pytest sessions."""

from __future__ import annotations

import langchain_anthropic  # noqa: F401  (kept imported: pytester would re-import
import langchain_openai  # noqa: F401  them for every inner run, ~3 s each)
import pytest

pytest_plugins = ["pytester"]

HEADER = """
import os
import pytest
from langchain_openai import ChatOpenAI
os.environ.setdefault("OPENAI_API_KEY", "sk-dummy")
llm = ChatOpenAI(model="gpt-4o-mini")
"""

CASSETTE = """
turns:
- request:
    messages:
    - human: hello
    settings: {model_name: gpt-4o-mini, provider: openai}
  text: Hi there.
- request:
    messages:
    - human: and again
    settings: {model_name: gpt-4o-mini, provider: openai}
  text: Hi again.
"""


def _run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_app=HEADER + body)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    # Only the plugins a user's suite has: autoloading every installed one (benchmark,
    # recording, ...) into each inner run is slow and warns under xdist.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        return pytester.runpytest(
            *("-p", "fakellm.fixtures", "-p", "pytest_asyncio.plugin"),
            *("-p", "no:cacheprovider", "-p", "no:unraisableexception"),
            *args,
        )


def test_a_class_that_cannot_be_imported_fails_setup_naming_it(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
@pytest.mark.fakellm(["hi"], intercept="langchain_openai.ChatOpenAi")
def test_typo():
    pass
""",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.fakellm on test_app.py::test_typo: intercept("
            "'langchain_openai.ChatOpenAi'): 'langchain_openai' has no attribute 'ChatOpenAi'; "
            "name a class as 'package.module.ClassName', pass the class itself, or "
            "'init_chat_model'"
        ]
    )


def test_nothing_intercepted_by_the_end_of_the_test_fails_it(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
from langchain_anthropic import ChatAnthropic

@pytest.mark.fakellm(["hi"], intercept=ChatAnthropic)
def test_wrong_class():
    assert llm is not None
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Nothing intercepted: intercept(ChatAnthropic) was active but no ChatAnthropic "
            "model was called. Check that the app builds that class (a subclass of it counts; "
            "a different provider class does not), or intercept 'init_chat_model' to catch "
            "every provider it builds.",
        ]
    )


def test_a_missing_cassette_under_record_none_fails_setup(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
@pytest.mark.fakellm(intercept=ChatOpenAI, cassette="cassettes/missing.yaml")
def test_replay():
    llm.invoke("hello")
""",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_replay: cassette '*cassettes/missing.yaml' does not exist, and "
            "record='none' only replays. Record it once against the real provider: run this "
            "test with --fakellm-record=once (or record='once').",
        ]
    )


def test_a_replayed_cassette_answers_in_order(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cassette=CASSETTE)
    result = _run(
        pytester,
        """
@pytest.mark.fakellm(intercept=ChatOpenAI, cassette="cassette.yaml")
def test_replay():
    assert llm.invoke("hello").text == "Hi there."
    assert llm.invoke("and again").text == "Hi again."
""",
    )
    result.assert_outcomes(passed=1)


def test_a_mismatched_request_shows_the_closest_recording_and_the_difference(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", cassette=CASSETTE)
    result = _run(
        pytester,
        """
from fakellm.errors import UnexpectedCall

@pytest.mark.fakellm(intercept=ChatOpenAI, cassette="cassette.yaml", match="fingerprint")
def test_replay():
    assert llm.invoke("hello").text == "Hi there."
    try:
        llm.invoke("and once more")
    except UnexpectedCall:
        pass  # swallowed by the app: teardown still fails the test
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*UnexpectedCall (the app may have swallowed it): intercept(ChatOpenAI) call #1 "
            "has no recording in cassette '*cassette.yaml' (record='none', match='fingerprint').",
            "Closest recording: turns[[]1] (fingerprint none, this call *):",
            "--- recorded",
            "+++ this call",
            "*",
            " messages:",
            "-- human: and again",
            "+- human: and once more",
            "*",
            "If the app changed on purpose, re-record: --fakellm-record=new_episodes (keeps "
            "what still matches) or --fakellm-record=all; or edit the cassette.",
            "*UnusedRecordings: cassette '*cassette.yaml' holds recordings this test never used:",
            "  - turns[[]1]: request 'and again' -> Turn('Hi again.')",
        ]
    )


def test_the_record_option_overrides_the_marker(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
@pytest.mark.fakellm(intercept=ChatOpenAI, cassette="new.yaml", record="once")
def test_replay():
    pass
""",
        "--fakellm-record=none",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cassette '*new.yaml' does not exist, and record='none'*"])


STAND_IN = """
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

CALLS = []


class Provider(BaseChatModel):
    '''Stands in for a real provider: answers from a counter, so a replay is visible.'''

    @property
    def _llm_type(self):
        return "stand-in"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        CALLS.append(messages)
        message = AIMessage(
            f"live answer {len(CALLS)}",
            usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
            response_metadata={"model_name": "stand-in-1"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


model = Provider()


@pytest.mark.fakellm(intercept=Provider, cassette="cassettes/stand_in.yaml")
def test_app():
    assert model.invoke("hello").text == "live answer 1"
"""


def test_record_all_writes_the_cassette_and_the_default_replays_it(
    pytester: pytest.Pytester,
) -> None:
    recorded = _run(pytester, STAND_IN, "--fakellm-record=all")
    recorded.assert_outcomes(passed=1)
    cassette = pytester.path / "cassettes" / "stand_in.yaml"
    text = cassette.read_text(encoding="utf-8")
    assert "    content: live answer 1\n" in text
    assert "    - human: hello\n" in text

    cassette.write_text(text.replace("live answer 1", "edited by hand"), encoding="utf-8")
    replayed = _run(pytester, STAND_IN.replace('== "live answer 1"', '== "edited by hand"'))
    replayed.assert_outcomes(passed=1)


def test_once_records_then_replays_and_new_episodes_appends(pytester: pytest.Pytester) -> None:
    once = STAND_IN.replace(
        'cassette="cassettes/stand_in.yaml"', 'cassette="c.yaml", record="once"'
    )
    _run(pytester, once).assert_outcomes(passed=1)
    cassette = pytester.path / "c.yaml"
    cassette.write_text(
        cassette.read_text(encoding="utf-8").replace("live answer 1", "replayed"), encoding="utf-8"
    )
    _run(pytester, once.replace('== "live answer 1"', '== "replayed"')).assert_outcomes(passed=1)

    episodes = once.replace('record="once"', 'record="new_episodes"').replace(
        '    assert model.invoke("hello").text == "live answer 1"',
        '    assert model.invoke("hello").text == "replayed"\n'
        '    assert model.invoke("a new question").text == "live answer 1"',
    )
    _run(pytester, episodes).assert_outcomes(passed=1)
    text = cassette.read_text(encoding="utf-8")
    assert text.count("- request:") == 2
    assert text.index("content: replayed") < text.index("content: live answer 1")
