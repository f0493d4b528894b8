"""fake_llm, llm_recorder, virtual_clock and the marker, seen from a user's suite."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
# The unraisable-exception plugin runs gc.collect() five times per inner session
# (about 0.7 s each run here); these suites do not need it.
FAST = ("-p", "no:cacheprovider", "-p", "no:unraisableexception")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_a_passing_test_per_fixture(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import datetime
        import time

        import pytest
        from fakellm import Turn, errors

        def test_chat_model(fake_llm):
            model = fake_llm(["Roses."], model="gpt-4o-mini")
            assert model.invoke("Which flower?").content == "Roses."
            assert fake_llm.models == [model]

        def test_completion_model(fake_llm):
            llm = fake_llm.completion(["4"])
            assert llm.invoke("1 + 3 = ") == "4"

        def test_recorder(fake_llm, llm_recorder):
            model = fake_llm([Turn("a b", chunks="words")])
            chunks = model.stream("x", config={"callbacks": [llm_recorder]})
            assert [c.content for c in chunks] == ["a ", "b"]
            assert llm_recorder.events.kinds() == [
                "chat_model_start", "llm_new_token", "llm_new_token", "llm_end"
            ]

        def test_sync_virtual_time(fake_llm, virtual_clock):
            model = fake_llm([Turn("one two three", delay=2.5, first_token_delay=1)])
            before = datetime.datetime.now()
            assert model.invoke("x").content == "one two three"
            assert virtual_clock.elapsed == 6.0
            assert datetime.datetime.now() - before == datetime.timedelta(seconds=6)

        @pytest.mark.fakellm(["hello", "again"], start="2030-05-01T09:00:00", virtual_time=True)
        def test_marker_script_and_start(fake_llm):
            model = fake_llm()
            assert [model.invoke("a").content, model.invoke("b").content] == ["hello", "again"]
            assert datetime.datetime.now() == datetime.datetime(2030, 5, 1, 9)

        @pytest.mark.fakellm("scripts/flowers.yaml")
        def test_marker_script_file(fake_llm):
            assert fake_llm().invoke("x").content == "Pink roses."

        @pytest.mark.fakellm(allow_unused=True)
        def test_allow_unused_on_the_marker(fake_llm):
            fake_llm(["used", "not used"]).invoke("x")

        def test_allow_unused_on_the_factory(fake_llm):
            fake_llm(["used", "not used"], allow_unused=True).invoke("x")

        @pytest.mark.fakellm(strict=False)
        def test_not_strict(fake_llm):
            model = fake_llm(["only"])
            model.invoke("x")
            with pytest.raises(errors.UnexpectedCall):
                model.invoke("y")
        """
    )
    suite.mkdir("scripts")
    (suite.path / "scripts" / "flowers.yaml").write_text("turns:\n  - Pink roses.\n")
    result = suite.runpytest(
        "-p", "no:cacheprovider", "-W", "error::pytest.PytestUnknownMarkWarning"
    )
    result.assert_outcomes(passed=9)


def test_an_unused_turn_fails_at_teardown(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_app(fake_llm):
            model = fake_llm(["Roses.", "Lilies."], model="gpt-4o-mini")
            model.invoke("Which flower?")
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_app*",
            "fakellm teardown checks failed:",
            "",
            "UnusedTurns: FakeChatModel(model_name='gpt-4o-mini') was scripted with turns it "
            "never played (1 call made):",
            "  - turns[1]: Turn('Lilies.')",
            "If that is on purpose, pass allow_unused=True (to the model, to fake_llm(...) or "
            "to @pytest.mark.fakellm), or end the script earlier.",
        ]
    )


def test_an_unexpected_call_the_app_swallowed_fails_at_teardown(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def ask(model, question):
            try:
                return model.invoke(question).content
            except Exception:
                return "sorry, try again later"

        def test_app(fake_llm):
            model = fake_llm(["Roses."])
            assert ask(model, "Which flower?") == "Roses."
            assert ask(model, "And for a wedding?") == "sorry, try again later"
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_app*",
            "fakellm teardown checks failed:",
            "",
            "UnexpectedCall (the app may have swallowed it): FakeChatModel("
            "model_name='fake-chat-model') received call #1 but its script has no answer for it.",
            "Last human message: 'And for a wedding?'",
            "The script held: 1 turn, all used.",
            "Add a turn (or a rule) for this call, or set when_exhausted='cycle' / "
            "'repeat_last' on the Script.",
        ]
    )


def test_teardown_checks_never_hide_the_tests_own_failure(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_app(fake_llm, llm_recorder, virtual_clock):
            model = fake_llm(["Roses.", "Lilies."])
            reply = model.invoke("Which flower?", config={"callbacks": [llm_recorder]})
            assert reply.content == "Tulips."
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: assert 'Roses.' == 'Tulips.'",
            "*- fakellm checks (not raised: the test failed) -*",
            "UnusedTurns: FakeChatModel(model_name='fake-chat-model') was scripted with turns it "
            "never played (1 call made):",
            "  - turns[1]: Turn('Lilies.')",
            "*- fakellm timeline -*",
            "     #      time  r1 FakeChatModel",
            "     0    +0.000  start",
            "     1    +0.000  end",
            "FAILED *::test_app - A*",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown*")


def test_a_failing_assertion_prints_the_timeline(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        from fakellm import Turn

        def test_stream(fake_llm, llm_recorder, virtual_clock):
            model = fake_llm([Turn("Pink roses", chunks="words", delay=0.5)])
            config = {"callbacks": [llm_recorder]}
            text = "".join(c.content for c in model.stream("x", config=config))
            assert text == "Red roses"
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- fakellm timeline -*",
            "     #      time  r1 FakeChatModel",
            "     0    +0.000  start",
            "     1    +0.000  token 'Pink '",
            "     2    +0.500  token 'roses'",
            "     3    +0.500  end",
        ]
    )


def test_a_long_timeline_is_cut_in_the_report(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_many_calls(fake_llm, llm_recorder, virtual_clock):
            model = fake_llm(["ok"] * 150)
            for _ in range(150):
                model.invoke("?", config={"callbacks": [llm_recorder]})
            assert False
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "- fakellm timeline -" in line)
    section = lines[start + 1 :]
    section = section[: next(i for i, line in enumerate(section) if line.startswith("="))]
    # 300 events: a header, the first and last 100 rows and one line saying what is left out.
    assert section[0] == "     #      time  event"
    assert section[101] == "   … 100 events not shown (log.timeline() shows them all) …"
    assert len(section) == 1 + 200 + 1


def test_the_timeline_can_be_turned_off(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_app(fake_llm, llm_recorder):
            fake_llm(["a"]).invoke("x", config={"callbacks": [llm_recorder]})
            assert False
        """
    )
    result = suite.runpytest(*FAST, "--fakellm-timeline=off")
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*fakellm timeline*")


def test_a_bad_marker_argument_names_the_accepted_ones(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import pytest

        @pytest.mark.fakellm(["a"], strcit=False)
        def test_typo(fake_llm):
            fake_llm().invoke("x")

        @pytest.mark.fakellm(strict="yes")
        def test_bad_value():
            pass

        @pytest.mark.fakellm("missing.yaml")
        def test_missing_file():
            pass

        @pytest.mark.fakellm([{"text": "a", "delay": -1}])
        def test_bad_script():
            pass
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_typo*",
            "@pytest.mark.fakellm on *::test_typo: unknown argument 'strcit'; accepted: script, "
            "strict, allow_unused, virtual_time, block_network, start, intercept, cassette, "
            "record, match, budget, real_perf_counter",
            "*ERROR at setup of test_bad_value*",
            "*::test_bad_value: strict='yes': expected True or False",
            "*ERROR at setup of test_missing_file*",
            "*::test_missing_file: script='missing.yaml': no such file '*missing.yaml' (a string "
            "script is a YAML/JSON path relative to the test file; for inline text use a list: "
            'script=[[]"hello"])',
            "*ERROR at setup of test_bad_script*",
            "@pytest.mark.fakellm on *::test_bad_script: invalid script: turns[[]0].delay: delay "
            "must be a number of seconds >= 0, a list of them (one per chunk after the first), "
            "or {'repeat': [[]...]} (got -1)",
        ]
    )


def test_async_tests_under_virtual_time(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import asyncio
        import datetime

        import pytest
        from fakellm import Turn

        SCRIPT = [Turn("slow", first_token_delay=30), Turn("fast", first_token_delay=1)]

        async def race(model):
            order = []

            async def ask(q):
                order.append((await model.ainvoke(q)).content)

            await asyncio.gather(ask("first"), ask("second"))
            return order

        @pytest.mark.asyncio(loop_factories=["virtual_time"])
        async def test_one_line_opt_in(fake_llm):
            loop = asyncio.get_running_loop()
            assert await race(fake_llm(SCRIPT)) == ["fast", "slow"]
            assert loop.time() == 30.0

        @pytest.mark.asyncio
        @pytest.mark.fakellm(SCRIPT, virtual_time=True, start="2024-06-01T12:00:00")
        async def test_marker_opt_in(fake_llm):
            assert await race(fake_llm()) == ["fast", "slow"]
            assert datetime.datetime.now() == datetime.datetime(2024, 6, 1, 12, 0, 30)

        @pytest.mark.asyncio
        async def test_virtual_clock_is_for_sync_tests(virtual_clock):
            pass
        """
    )
    result = suite.runpytest(*FAST, "-v")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_one_line_opt_in PASSED*",
            "*::test_marker_opt_in PASSED*",
            "*::test_virtual_clock_is_for_sync_tests ERROR*",
            "*virtual_clock is for sync tests; an async test opts into virtual time with "
            '@pytest.mark.asyncio(loop_factories=[[]"virtual_time"]) or '
            "@pytest.mark.fakellm(virtual_time=True) (with @pytest.mark.asyncio unless "
            "asyncio_mode = auto)",
        ]
    )


def test_ini_and_command_line_defaults(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_unused(fake_llm):
            fake_llm(["a", "b"]).invoke("x")
        """
    )
    suite.makeini("[pytest]\nfakellm_strict = false\n")
    suite.runpytest(*FAST).assert_outcomes(passed=1)
    suite.runpytest(*FAST, "--fakellm-strict=on").assert_outcomes(passed=1, errors=1)
    suite.makeini("[pytest]\n")
    suite.runpytest(*FAST, "--fakellm-strict=off").assert_outcomes(passed=1)


def test_a_bad_ini_value_is_a_usage_error(suite: pytest.Pytester) -> None:
    suite.makeini("[pytest]\nfakellm_block_network = everywhere\n")
    suite.makepyfile("def test_x():\n    pass\n")
    result = suite.runpytest(*FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: fakellm_block_network = 'everywhere': expected one of fixtures, all, off"]
    )


def test_pytest_durations_stay_on_the_real_clock(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import pytest
        from fakellm import Turn
        from fakellm.fixtures import FakeLLMFactory, VirtualTime

        def test_sync(fake_llm: FakeLLMFactory, virtual_clock: VirtualTime):
            fake_llm([Turn("hi", first_token_delay=2.0)]).invoke("x")
            assert virtual_clock.elapsed == 2.0

        @pytest.mark.asyncio(loop_factories=["virtual_time"])
        async def test_async(fake_llm: FakeLLMFactory):
            await fake_llm([Turn("hi", first_token_delay=3.0)]).ainvoke("x")
        """
    )
    result = suite.runpytest(*FAST, "--durations=0", "--durations-min=0")
    result.assert_outcomes(passed=2)
    # Virtual time must not leak into pytest's own timers: 2 s and 3 s of
    # scripted latency, or 2024's epoch seconds, would show up here.
    timed = re.findall(r"^(\d+\.\d+)s (?:setup|call|teardown) ", result.stdout.str(), re.M)
    assert len(timed) == 6
    assert not {"2.00", "3.00"} & set(timed), timed
    assert all(float(t) < 3600 for t in timed), timed


def test_marker_edges_a_user_meets(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import asyncio
        import datetime

        import pytest

        @pytest.mark.fakellm(None, strict=False)
        def test_script_none_is_the_default(fake_llm):
            assert fake_llm().unused_turns == []

        @pytest.mark.asyncio(loop_factories=["virtual_time"])
        @pytest.mark.fakellm(start="2030-01-02T03:04:05")
        async def test_start_reaches_the_one_line_opt_in():
            assert datetime.datetime.now() == datetime.datetime(2030, 1, 2, 3, 4, 5)

        @pytest.mark.fakellm(start="2030-01-02T03:04:05")
        def test_start_without_virtual_time():
            pass

        @pytest.mark.asyncio
        @pytest.mark.fakellm(bogus=1)
        async def test_bad_marker_on_an_async_test():
            pass

        def test_the_module_still_runs():
            pass
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_start_without_virtual_time*",
            "@pytest.mark.fakellm on *::test_start_without_virtual_time: start= sets the instant "
            "virtual time starts at, but this test has no virtual time: add virtual_time=True, "
            "the virtual_clock fixture, or loop_factories=[[]'virtual_time']",
            "*ERROR at setup of test_bad_marker_on_an_async_test*",
            "*unknown argument 'bogus'; accepted: *",
        ]
    )


def test_a_test_failing_at_teardown_shows_the_timeline(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_swallowed(fake_llm, llm_recorder, virtual_clock):
            model = fake_llm(["only"])
            model.invoke("x", config={"callbacks": [llm_recorder]})
            try:
                model.invoke("y", config={"callbacks": [llm_recorder]})
            except Exception:
                pass
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_swallowed*",
            "UnexpectedCall (the app may have swallowed it): *",
            "*- fakellm timeline -*",
            "     #      time  r1 FakeChatModel  r2 FakeChatModel",
        ]
    )


def test_virtual_time_wins_over_a_conftest_loop_hook(suite: pytest.Pytester) -> None:
    suite.makeconftest(
        """
        import asyncio

        def pytest_asyncio_loop_factories(config, item):
            return {"mine": asyncio.new_event_loop}
        """
    )
    suite.makepyfile(
        """
        import asyncio

        import pytest
        from fakellm._clock import VirtualTimeLoop

        @pytest.mark.asyncio
        @pytest.mark.fakellm(virtual_time=True)
        async def test_marker():
            assert isinstance(asyncio.get_running_loop(), VirtualTimeLoop)

        @pytest.mark.asyncio(loop_factories=["virtual_time"])
        async def test_one_line_opt_in():
            assert isinstance(asyncio.get_running_loop(), VirtualTimeLoop)

        @pytest.mark.asyncio
        async def test_left_to_the_conftest():
            assert not isinstance(asyncio.get_running_loop(), VirtualTimeLoop)
        """
    )
    result = suite.runpytest(*FAST, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*::test_left_to_the_conftest PASSED*"])
