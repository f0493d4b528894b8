"""Pins every private name of another package that fakellm uses (all in fakellm._compat).

Each name the fence exports gets a test here that fails, naming it, when an
upgrade moves or changes it.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import inspect
import sys
from uuid import UUID

import pytest
from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.runnables.configurable import RunnableConfigurableFields

import fakellm._compat as compat


def test_every_exported_name_exists() -> None:
    missing = [name for name in compat.__all__ if not hasattr(compat, name)]
    assert missing == []


# ------------------------------------------------------------------ virtual time (#13)


def test_freezegun_real_datetime_is_the_unpatched_class() -> None:
    import datetime as dt

    assert compat.FREEZEGUN_REAL_DATETIME is dt.datetime  # no freeze is active here


def test_freezegun_stacks_are_where_fakellm_pushes_and_removes() -> None:
    import datetime as dt

    import freezegun
    import freezegun.api as fg

    assert not compat.freezegun_active()
    with freezegun.freeze_time("2024-01-01"):
        slot = compat.freezegun_replace_factory(lambda: dt.datetime(2030, 1, 2) - dt.timedelta(0))
        assert slot == 0
        assert dt.datetime.now() == dt.datetime(2030, 1, 2)
        mine = object()
        compat.freezegun_push(mine, ("x",))
        assert fg.freeze_factories[-1] is mine
        assert (fg.tz_offsets[-1], fg.ignore_lists[-1], fg.tick_flags[-1]) == (
            dt.timedelta(0),
            ("x",),
            False,
        )
        assert compat.freezegun_remove(mine) is False  # the outer freeze is left
        assert [len(fg.freeze_factories), len(fg.ignore_lists)] == [1, 1]
    assert not compat.freezegun_active()


def _clock_and_pickling_state() -> dict[tuple[str, str], object]:
    import copyreg
    import datetime as dt
    import time
    import uuid

    state: dict[tuple[str, str], object] = {}
    for module in (dt, time, uuid):
        for name, value in vars(module).items():
            state[(module.__name__, name)] = value
    for cls, reducer in copyreg.dispatch_table.items():
        state[("copyreg", repr(cls))] = reducer
    return state


def test_freezegun_patch_modules_sets_exactly_what_a_freeze_sets() -> None:
    import freezegun

    real = _clock_and_pickling_state()
    with freezegun.freeze_time("2024-01-01", ignore=[""]):  # ignore: no module scan
        frozen = _clock_and_pickling_state()
    assert _clock_and_pickling_state() == real
    compat.freezegun_patch_modules(fake=True)
    try:
        ours = _clock_and_pickling_state()
    finally:
        compat.freezegun_patch_modules(fake=False)
    parked = _clock_and_pickling_state()
    changed = {key for key in {*real, *frozen} if real.get(key) is not frozen.get(key)}
    assert changed, "a freeze changes time.time, datetime.datetime, ..."
    assert {key: ours.get(key) for key in changed} == {key: frozen.get(key) for key in changed}
    # Parked: the real attributes back; freezegun's own classes pickle as the real ones.
    assert {key: parked.get(key) for key in changed} == {key: real.get(key) for key in changed}


def test_freezegun_route_real_time_decides_for_every_faked_reader() -> None:
    import datetime as dt
    import pickle
    import time

    import freezegun
    import freezegun.api as fg

    from fakellm import _clock

    real_here = [True]
    frames: list[object] = []
    readers: list[str] = []

    def decide(frame: object, reader: str) -> bool:
        frames.append(frame)
        readers.append(reader)
        return real_here[0]

    factory = lambda: dt.datetime(2030, 1, 2)  # noqa: E731
    compat.freezegun_route_real_time(factory, decide)
    try:
        assert fg._should_use_real_time is compat._should_use_real_time
        compat.freezegun_push(factory, ())
        compat.freezegun_patch_modules(fake=True)
        try:
            assert time.time() < 1893542400.0  # real
            caller = frames[-1].f_code.co_name  # type: ignore[attr-defined]
            assert caller == "test_freezegun_route_real_time_decides_for_every_faked_reader"
            time.perf_counter_ns()
            assert readers[-1] == "perf_counter_ns"
            assert dt.datetime.now().year < 2030
            assert (frames[-1], readers[-1]) == (None, "datetime")
            assert dt.datetime.now().year < 2030
            assert type(dt.datetime.now()) is fg.real_datetime
            assert dt.date.today().year < 2030
            real_here[0] = False
            assert time.time() == 1893542400.0
            assert time.monotonic() == 1893542400.0
            assert dt.datetime.now() == dt.datetime(2030, 1, 2)
            assert dt.datetime.utcnow() == dt.datetime(2030, 1, 2)
            assert dt.date.today() == dt.date(2030, 1, 2)
            # Someone else's freeze on top: freezegun's own rule (here: ignore this module).
            with freezegun.freeze_time("2001-01-01", ignore=[__name__]):
                assert time.time() < 1893542400.0
                assert time.time() > 978307200.0
                assert dt.datetime.now() == dt.datetime(2001, 1, 1)
            with freezegun.freeze_time("2001-01-01"):
                assert time.time() == 978307200.0
        finally:
            compat.freezegun_remove(factory)
            compat.freezegun_patch_modules(fake=False)
        # No freeze at all: freezegun's classes (bound by an earlier scan) answer for real.
        assert fg.FakeDatetime.now().year < 2030
        assert fg.FakeDate.today().year < 2030
        stamp = fg.FakeDatetime(2020, 1, 1).timestamp()
        assert stamp == fg.real_datetime(2020, 1, 1).timestamp()
        assert fg.FakeDatetime.fromtimestamp(stamp) == fg.real_datetime(2020, 1, 1)
        copy = pickle.loads(pickle.dumps(fg.FakeDatetime(2020, 1, 1, fold=1)))
        assert (type(copy), copy, copy.fold) == (fg.real_datetime, dt.datetime(2020, 1, 1), 1)
    finally:
        mirror = _clock._MIRROR
        compat.freezegun_route_real_time(mirror._factory, mirror.real_here)


def test_current_frames_has_this_thread() -> None:
    import threading

    assert threading.get_ident() in compat.current_frames()


# --- issue #12: langchain-core model internals ---------------------------------------------


def _params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_base_llm_generate_helpers_take_every_prompts_run_manager() -> None:
    expected = ["self", "prompts", "stop", "run_managers", "new_arg_supported", "kwargs"]
    assert _params(BaseLLM._generate_helper) == expected
    assert _params(BaseLLM._agenerate_helper) == expected
    source = inspect.getsource(BaseLLM._generate_helper)
    # The reason for the mixin: core still hands _generate the first manager only.
    assert "run_managers[0]" in source


def test_base_chat_model_generates_through_the_cache_entry_points() -> None:
    expected = ["self", "messages", "stop", "run_manager", "kwargs"]
    assert _params(BaseChatModel._generate_with_cache) == expected
    assert _params(BaseChatModel._agenerate_with_cache) == expected
    # The reason for the hook: the streaming paths call _stream without the manager.
    assert "self._stream(messages, stop=stop, **kwargs)" in inspect.getsource(
        BaseChatModel._generate_with_cache
    )


def test_base_chat_model_combines_llm_outputs_through_the_hook() -> None:
    assert _params(BaseChatModel._combine_llm_outputs) == ["self", "_llm_outputs"]
    assert "self._combine_llm_outputs(" in inspect.getsource(BaseChatModel.generate)


def test_configurable_fields_prepare_builds_the_configured_model() -> None:
    assert _params(RunnableConfigurableFields._prepare) == ["self", "config"]
    assert "self.default.__class__(" in inspect.getsource(RunnableConfigurableFields._prepare)
    assert issubclass(compat.SharedConfigurableFields, RunnableConfigurableFields)


def test_the_llm_run_managers_var_is_empty_outside_a_generate() -> None:
    assert compat.llm_run_managers.get() is None


def test_shallow_copy_is_model_copy_for_langchain_chunks() -> None:
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    message = AIMessageChunk(content="hi", id="m1", response_metadata={"a": 1})
    chunk = ChatGenerationChunk(message=message, generation_info={"k": "v"})
    for original in (message, chunk):
        fast = compat.shallow_copy(original)
        slow = original.model_copy()
        assert type(fast) is type(original)
        assert fast == slow == original
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.__pydantic_extra__ == slow.__pydantic_extra__
        assert fast.__pydantic_private__ == slow.__pydantic_private__
        assert fast.__dict__ is not original.__dict__
        assert fast.model_fields_set is not original.model_fields_set
    copied = compat.shallow_copy(message)
    copied.id = "m2"
    assert message.id == "m1"


# -- asyncio: the Recorder's hot path ------------------------------------------------------


def test_get_running_loop_or_none_is_none_outside_a_loop_and_the_loop_inside() -> None:
    assert compat.get_running_loop_or_none() is None

    async def inside() -> bool:
        return compat.get_running_loop_or_none() is asyncio.get_running_loop()

    assert asyncio.run(inside()) is True


def test_ready_handles_is_the_queue_call_soon_appends_to() -> None:
    loop = asyncio.new_event_loop()
    try:
        handle = loop.call_soon(lambda: None)
        ready = compat.ready_handles(loop)
        assert ready[-1] is handle
        assert isinstance(ready, collections.deque)
    finally:
        loop.close()


def test_run_once_hook_runs_before_every_iteration() -> None:
    class Loop(compat.RunOnceHook, asyncio.SelectorEventLoop):
        def __init__(self) -> None:
            super().__init__()
            self.iterations = 0

        def _before_run_once(self) -> None:
            self.iterations += 1

    loop = Loop()
    try:
        loop.run_until_complete(asyncio.sleep(0))
        assert loop.iterations >= 2  # the sleep's step, then its wake-up
    finally:
        loop.close()


# ---- issue 14: intercepting provider classes ----


def test_chat_model_ls_params_reads_provider_and_model() -> None:
    from fakellm import FakeChatModel

    params = compat.chat_model_ls_params(FakeChatModel(model="m-1"), None, {})
    assert params["ls_provider"] == "fakellm"
    assert params["ls_model_name"] == "m-1"
    assert (
        compat.chat_model_ls_params(FakeChatModel(model="m-1"), None, {"model": "m-2"})[
            "ls_model_name"
        ]
        == "m-2"
    )


def test_cached_generate_hooks_take_the_run_manager() -> None:
    import inspect

    from langchain_core.language_models import BaseChatModel

    for name in compat.CACHED_GENERATE_HOOKS:
        params = list(inspect.signature(getattr(BaseChatModel, name)).parameters)
        assert params == ["self", "messages", "stop", "run_manager", "kwargs"], name


def test_init_chat_model_classes_lists_openai_and_anthropic() -> None:
    table = compat.init_chat_model_classes()
    assert ("openai", "langchain_openai", "ChatOpenAI") in table
    assert ("anthropic", "langchain_anthropic", "ChatAnthropic") in table


# -- follow-17: a fresh chat model's construction ------------------------------------------


def test_profile_keys_checked_once_replaces_cores_check_and_warns_as_it_does() -> None:
    import warnings
    from collections.abc import Callable

    from langchain_core.language_models import BaseChatModel
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.language_models.model_profile import _warn_unknown_profile_keys

    from fakellm import FakeChatModel

    assert callable(_warn_unknown_profile_keys)
    assert "_check_profile_keys" in BaseChatModel.__pydantic_decorators__.model_validators
    ours = FakeChatModel.__pydantic_decorators__.model_validators["_check_profile_keys"]
    assert ours.func.__qualname__.endswith("ProfileKeysCheckedOnce._check_profile_keys")

    def warned(build: Callable[[], object]) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            build()
        return [str(w.message) for w in caught]

    profile = {"max_input_tokens": 3, "bogus": 1, "also_bogus": 2}
    expected = warned(lambda: FakeListChatModel(responses=["a"], profile=profile))
    assert len(expected) == 1
    assert "['also_bogus', 'bogus']" in expected[0]
    assert warned(lambda: FakeChatModel(script=["a"], profile=profile)) == expected
    assert warned(lambda: FakeChatModel(script=["a"], profile={"max_input_tokens": 3})) == []
    assert warned(lambda: FakeChatModel(script=["a"])) == []


# --- r3-17: the call path's private state ------------------------------------------------


def test_private_values_are_the_models_private_attributes() -> None:
    import pydantic

    from fakellm import FakeChatModel

    class Holder(pydantic.BaseModel):
        _x: list[int] = pydantic.PrivateAttr(default_factory=list)

    held = Holder()
    values = compat.private_values(held)
    assert values["_x"] is held._x
    values["_x"] = [1]
    assert held._x == [1]
    held._x = [2]
    assert compat.private_values(held)["_x"] == [2]
    model = FakeChatModel(script=["a"])
    assert set(compat.private_values(model)) == {"_player", "_calls", "_lock"}


def test_freezegun_stop_without_imports_restores_new_modules_without_importing() -> None:
    import types

    import freezegun

    real = compat.FREEZEGUN_REAL_DATETIME  # read now: the freeze's scan rebinds it too
    looked_up: list[str] = []

    def lazy(name: str) -> object:
        looked_up.append(name)
        raise AttributeError(name)

    module = types.ModuleType("fakellm_test_imported_while_frozen")
    module.__getattr__ = lazy  # type: ignore[method-assign]
    module.__dir__ = lambda: ["now_class", "lazy_name"]  # type: ignore[method-assign]
    api = freezegun.freeze_time("2024-01-01")
    api.start()
    try:
        module.now_class = dt.datetime  # freezegun's class, bound while frozen
        sys.modules[module.__name__] = module
        frozen_class = module.now_class
    finally:
        compat.freezegun_stop_without_imports(api)
        del sys.modules[module.__name__]
    assert frozen_class is not real
    assert (module.now_class, dt.datetime) == (real, real)
    assert not compat.freezegun_active()
    assert looked_up == []


def test_freezegun_bind_fakes_binds_what_freeze_times_scan_binds_and_imports_nothing() -> None:
    import time
    import types

    import freezegun

    module = types.ModuleType("fakellm_test_clock_bindings")
    module.now_class, module.day_class = dt.datetime, dt.date
    module.clock, module.tick, module.other = time.time, time.monotonic, len
    looked_up: list[str] = []

    def lazy(name: str) -> object:
        looked_up.append(name)
        raise AttributeError(name)

    sys.modules[module.__name__] = module
    names = ("now_class", "day_class", "clock", "tick", "other")
    real = {name: getattr(module, name) for name in names}
    try:
        with freezegun.freeze_time("2024-01-01"):  # freezegun's own scan
            scanned = {name: getattr(module, name) for name in names}
        module.__getattr__ = lazy  # type: ignore[method-assign]
        module.__dir__ = lambda: [*names, "lazy_name"]  # type: ignore[method-assign]
        bindings = compat.freezegun_bind_fakes(("_pytest",))
        ours = {name: getattr(module, name) for name in names}
        compat.freezegun_set_bindings(bindings, fake=False)
        restored = {name: getattr(module, name) for name in names}
        compat.freezegun_set_bindings(bindings, fake=True)
        again = {name: getattr(module, name) for name in names}
        compat.freezegun_set_bindings(bindings, fake=False)
    finally:
        del sys.modules[module.__name__]
    assert scanned != real
    assert ours == scanned == again
    assert restored == real
    assert looked_up == []


# --- r5-13: unwinding a start that failed part-way -----------------------------------------


def test_freezegun_depth_and_truncate_count_and_drop_freezes_from_the_top() -> None:
    import freezegun
    import freezegun.api as fg

    assert compat.freezegun_depth() == 0
    with freezegun.freeze_time("2024-01-01"):
        mine = object()
        compat.freezegun_push(mine, ("x",))
        assert compat.freezegun_depth() == 2
        compat.freezegun_truncate(1)
        assert compat.freezegun_depth() == 1
        stacks = (fg.freeze_factories, fg.tz_offsets, fg.ignore_lists, fg.tick_flags)
        assert [len(s) for s in stacks] == [1, 1, 1, 1]
        assert mine not in fg.freeze_factories
        assert dt.datetime.now() == dt.datetime(2024, 1, 1)  # the outer freeze is intact
    assert compat.freezegun_depth() == 0


def test_freezegun_unbind_everywhere_puts_back_what_a_scan_bound() -> None:
    import time
    import types

    import freezegun.api as fg

    module = types.ModuleType("fakellm_test_unbind_everywhere")
    module.now_class, module.clock, module.FakeDatetime = dt.datetime, time.time, fg.FakeDatetime
    sys.modules[module.__name__] = module
    try:
        bindings = compat.freezegun_bind_fakes(("_pytest",))
        assert (module.now_class, module.clock) == (fg.FakeDatetime, fg.fake_time)
        compat.freezegun_unbind_everywhere()
        assert (module.now_class, module.clock) == (fg.real_datetime, fg.real_time)
        assert module.FakeDatetime is fg.FakeDatetime  # a fake's own name is left
        compat.freezegun_set_bindings(bindings, fake=False)
    finally:
        del sys.modules[module.__name__]


def test_a_nested_freeze_time_start_only_pushes_so_its_stop_is_told_apart() -> None:
    import freezegun
    import freezegun.api as fg

    outer, inner = freezegun.freeze_time("2024-01-01"), freezegun.freeze_time("2001-02-03")
    assert type(outer) is fg._freeze_time
    assert callable(fg._freeze_time.stop)
    assert not compat.freezegun_modules_patched()
    outer.start()
    try:
        assert compat.freezegun_modules_patched()
        inner.start()
        assert compat.freezegun_depth() == 2
        assert hasattr(outer, "fake_names")
        assert not hasattr(inner, "fake_names")  # what the last-stop hook goes by
        inner.stop()
    finally:
        outer.stop()
    assert not compat.freezegun_modules_patched()


def test_waits_unsignalled_sees_a_condition_wait_until_it_is_notified() -> None:
    import threading

    assert "waiter" in threading.Condition.wait.__code__.co_varnames
    condition = threading.Condition(threading.Lock())
    inside = threading.Event()
    seen: list[bool] = []

    def wait() -> None:
        with condition:
            inside.set()
            condition.wait(30)

    thread = threading.Thread(target=wait)
    thread.start()
    assert inside.wait(30)
    with condition:  # the thread is in wait() now: it released the lock
        frame = compat.current_frames()[thread.ident or 0]
        seen.append(compat.waits_unsignalled(frame))
        condition.notify()
        # Notified, but it cannot leave wait() while this thread holds the lock.
        seen.append(compat.waits_unsignalled(compat.current_frames()[thread.ident or 0]))
    thread.join()
    assert seen == [True, False]
    assert compat.waits_unsignalled(sys._getframe()) is False


def test_waits_unsignalled_tells_a_running_pool_future_from_one_a_loop_settles() -> None:
    import concurrent.futures
    import threading
    from typing import Any

    for wait in (concurrent.futures.Future.result, concurrent.futures.Future.exception):
        assert "self" in wait.__code__.co_varnames
    seen: dict[str, bool] = {}

    def waiter_of(future: concurrent.futures.Future[Any], name: str) -> threading.Thread:
        thread = threading.Thread(target=future.result, args=(30,), name=name)
        thread.start()
        for _ in range(3000):
            frame = compat.current_frames().get(thread.ident or 0)
            if frame is not None and frame.f_code is threading.Condition.wait.__code__:
                seen[name] = compat.waits_unsignalled(frame)
                return thread
            threading.Event().wait(0.01)
        raise AssertionError(f"{name} never waited")

    # What run_coroutine_threadsafe returns: pending until the loop settles it.
    on_loop: concurrent.futures.Future[Any] = concurrent.futures.Future()
    # What pool.submit returns once a worker runs it.
    running: concurrent.futures.Future[Any] = concurrent.futures.Future()
    assert running.set_running_or_notify_cancel()
    threads = [waiter_of(on_loop, "loop"), waiter_of(running, "pool")]
    for future in (on_loop, running):
        future.set_result(None)
    for thread in threads:
        thread.join()
    assert seen == {"loop": True, "pool": False}


# --- r6-async: LangSmith's tracing tags ------------------------------------------------------


def test_langsmith_tags_reads_what_get_tracing_context_reads() -> None:
    from langsmith.run_helpers import get_tracing_context, tracing_context

    assert compat.langsmith_tags() is get_tracing_context()["tags"] is None
    with tracing_context(tags=["outer"]):
        assert compat.langsmith_tags() == get_tracing_context()["tags"] == ["outer"]
        with tracing_context(tags=["inner"]):
            assert compat.langsmith_tags() == get_tracing_context()["tags"]
            assert "inner" in (compat.langsmith_tags() or [])
    assert compat.langsmith_tags() is None


# --- r6: core's run-id generator, as its callback manager binds it ----------------------------


def test_core_run_id_calls_the_name_core_s_callback_manager_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_core.callbacks import manager
    from langchain_core.utils.uuid import uuid7

    assert manager.uuid7 is uuid7  # type: ignore[attr-defined]  # core's own binding
    assert compat.core_run_id().version == 7
    known = iter([UUID(int=1), UUID(int=2)])
    monkeypatch.setattr(manager, "uuid7", lambda: next(known))
    assert [compat.core_run_id(), compat.core_run_id()] == [UUID(int=1), UUID(int=2)]
