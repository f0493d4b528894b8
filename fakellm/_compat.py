"""The one fence around other packages' private names.

fakellm reaches into langchain-core, pydantic, asyncio and freezegun in a few
places where no public API does the job. Every such use lives here, so an
upgrade that moves a private name breaks one module, and each name here is
pinned by a test in ``tests/unit/test_compat.py`` that fails with the name.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import freezegun.api as _freezegun_api

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__: list[str] = []


# -- asyncio: the Recorder's hot path ----------------------------------------------------

#: The running event loop of this thread, or None. ``asyncio.get_running_loop``
#: raises RuntimeError instead, and catching that on every recorded event
#: outside a loop (the sync ``stream``/``invoke`` paths) costs about 13 times
#: the lookup itself. asyncio exports it from ``asyncio.events`` for event-loop
#: implementations.
get_running_loop_or_none = asyncio._get_running_loop
__all__ += ["get_running_loop_or_none"]


# -- asyncio: the perturbed loop of scenario exploration (strategies) ----------------------


def ready_handles(loop: asyncio.AbstractEventLoop) -> Any:
    """The loop's queue of ready handles (a deque), which ``call_soon`` appends to
    and each iteration runs: exploration holds chosen callbacks back in it."""
    return loop._ready  # type: ignore[attr-defined]


class RunOnceHook:
    """Mixin for an asyncio event loop: ``_before_run_once()`` runs before every
    iteration of the loop (``BaseEventLoop._run_once``), the one place to move
    handles between iterations."""

    def _before_run_once(self) -> None:
        """Called before each loop iteration; the default does nothing."""

    def _run_once(self) -> None:
        self._before_run_once()
        super()._run_once()  # type: ignore[misc]


__all__ += ["RunOnceHook", "ready_handles"]


# ------------------------------------------------------------------ virtual time (#13)
# freezegun keeps its active freezes in module-level stacks and decides "real
# time or frozen?" in one module-level function. fakellm starts freezegun's
# freeze and binds its fakes into loaded modules (its own scan) once, then
# between its scopes *parks* it: its entries leave the stacks and the ``time``,
# ``datetime`` and ``uuid`` attributes, pickling hooks and the scan's bindings
# go back to the real ones, so the process is unfrozen. Entering the next scope
# puts the entries, attributes and bindings back (assignments, no scan).

import copyreg as _copyreg  # noqa: E402
import datetime as _datetime  # noqa: E402
import time as _time  # noqa: E402
import uuid as _uuid  # noqa: E402

_fg = _freezegun_api

#: The datetime class freezegun saved before patching ``datetime.datetime``.
FREEZEGUN_REAL_DATETIME = _fg.real_datetime
#: The ``time.time`` freezegun saved before patching it.
FREEZEGUN_REAL_TIME = _fg.real_time


def freezegun_replace_factory(factory: object) -> int:
    """Put ``factory`` in place of the innermost freeze's time factory; return its slot."""
    _fg.freeze_factories[-1] = factory  # type: ignore[call-overload]
    return len(_fg.freeze_factories) - 1


def freezegun_active() -> bool:
    """True while any freeze (fakellm's or anyone's) is in freezegun's stacks."""
    return bool(_fg.freeze_factories)


def freezegun_push(factory: object, ignore: tuple[str, ...]) -> None:
    """Put a freeze answering from ``factory`` on top of freezegun's stacks (no scan)."""
    _fg.freeze_factories.append(factory)  # type: ignore[arg-type]
    _fg.tz_offsets.append(_datetime.timedelta(0))
    _fg.ignore_lists.append(ignore)
    _fg.tick_flags.append(False)


def freezegun_remove(factory: object) -> bool:
    """Take the freeze answering from ``factory`` out of the stacks; True if none is left."""
    stack = _fg.freeze_factories
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is factory:
            for lst in (stack, _fg.tz_offsets, _fg.ignore_lists, _fg.tick_flags):
                del lst[i]
            break
    _finish_deferred_stops()
    return not stack


def _module_patches() -> list[tuple[object, str, object, object]]:
    # (owner, attribute, fake, real): what freezegun's start() sets outside the
    # modules it scans, and its stop() puts back.
    out: list[tuple[object, str, object, object]] = [
        (_datetime, "datetime", _fg.FakeDatetime, _fg.real_datetime),
        (_datetime, "date", _fg.FakeDate, _fg.real_date),
        (_time, "time", _fg.fake_time, _fg.real_time),
        (_time, "monotonic", _fg.fake_monotonic, _fg.real_monotonic),
        (_time, "perf_counter", _fg.fake_perf_counter, _fg.real_perf_counter),
        (_time, "localtime", _fg.fake_localtime, _fg.real_localtime),
        (_time, "gmtime", _fg.fake_gmtime, _fg.real_gmtime),
        (_time, "strftime", _fg.fake_strftime, _fg.real_strftime),
        (_time, "time_ns", _fg.fake_time_ns, _fg.real_time_ns),
        (_time, "monotonic_ns", _fg.fake_monotonic_ns, _fg.real_monotonic_ns),
        (_time, "perf_counter_ns", _fg.fake_perf_counter_ns, _fg.real_perf_counter_ns),
        (_uuid, "_UuidCreate", None, _fg.real_uuid_create),
        (_uuid, "_last_timestamp", None, None),
    ]
    if _fg.uuid_generate_time_attr:
        out.append((_uuid, _fg.uuid_generate_time_attr, None, _fg.real_uuid_generate_time))
    return out


_MODULE_PATCHES = _module_patches()
_FAKE_NAMES = frozenset(
    getattr(fake, "__name__", "")
    for _owner, _name, fake, _real in _MODULE_PATCHES
    if fake is not None
)


def freezegun_patch_modules(fake: bool) -> None:
    """Set (or put back) the module attributes and pickling hooks a freeze changes.

    Only the ``time``, ``datetime`` and ``uuid`` modules and ``copyreg``:
    the bindings freezegun's scan made in other modules are left alone.
    """
    for owner, name, fake_value, real_value in _MODULE_PATCHES:
        setattr(owner, name, fake_value if fake else real_value)
    table = _copyreg.dispatch_table
    if fake:
        table[_fg.real_datetime] = _fg.pickle_fake_datetime
        table[_fg.real_date] = _fg.pickle_fake_date
        table.pop(_fg.FakeDatetime, None)
        table.pop(_fg.FakeDate, None)
    else:
        table.pop(_fg.real_datetime, None)
        table.pop(_fg.real_date, None)
        # Instances of freezegun's classes made outside a freeze (through a
        # binding its scan left in a module) pickle as plain datetimes.
        table[_fg.FakeDatetime] = _pickle_as_real_datetime
        table[_fg.FakeDate] = _pickle_as_real_date


def _pickle_as_real_datetime(value: Any) -> tuple[Any, ...]:
    return (_fg.real_datetime, _fg.real_datetime.__reduce_ex__(value, 4)[1])


def _pickle_as_real_date(value: Any) -> tuple[Any, ...]:
    return (_fg.real_date, _fg.real_date.__reduce_ex__(value, 4)[1])


_ours: list[Any] = [None, None]  # fakellm's time factory, its "real here?" rule


def _should_use_real_time() -> bool:
    # Replaces freezegun.api._should_use_real_time, which every faked time
    # function calls first. sys._getframe(2) is the faked function's caller,
    # the frame freezegun itself starts its look-up from.
    try:
        innermost = _fg.freeze_factories[-1]
    except IndexError:  # no freeze at all (or the last one just ended in another thread)
        return True  # real, as freezegun answers after stop()
    if innermost is _ours[0]:
        real_here: Callable[[Any, str], bool] = _ours[1]
        return real_here(sys._getframe(2), sys._getframe(1).f_code.co_name[5:])  # "fake_..."
    # Someone else's freeze is innermost: freezegun's own rule, unchanged.
    limit = _fg.call_stack_inspection_limit
    ignore = _fg.ignore_lists[-1]
    if not limit or not ignore:
        return False
    frame: Any = sys._getframe(2)
    for _ in range(limit):
        module_name = frame.f_globals.get("__name__")
        if module_name and module_name.startswith(ignore):
            return True
        frame = frame.f_back
        if frame is None:
            break
    return False


def _datetime_real_here() -> bool:
    try:
        innermost = _fg.freeze_factories[-1]
    except IndexError:
        return True
    return innermost is _ours[0] and bool(_ours[1](None, "datetime"))


def _install_datetime_passthrough() -> None:
    fake_dt, fake_d = _fg.FakeDatetime, _fg.FakeDate
    real_dt, real_d = _fg.real_datetime, _fg.real_date
    now, utcnow = fake_dt.now.__func__, fake_dt.utcnow.__func__  # type: ignore[attr-defined]
    fromtimestamp = fake_dt.fromtimestamp.__func__  # type: ignore[attr-defined]
    timestamp, today = fake_dt.timestamp, fake_d.today.__func__  # type: ignore[attr-defined]

    def fake_now(cls: Any, tz: Any = None) -> Any:
        return real_dt.now(tz) if _datetime_real_here() else now(cls, tz)

    def fake_utcnow(cls: Any) -> Any:
        return real_dt.utcnow() if _datetime_real_here() else utcnow(cls)

    def fake_fromtimestamp(cls: Any, t: float, tz: Any = None) -> Any:
        if _datetime_real_here():
            return real_dt.fromtimestamp(t, tz)
        return fromtimestamp(cls, t, tz)

    def fake_timestamp(self: Any) -> float:
        return real_dt.timestamp(self) if _datetime_real_here() else float(timestamp(self))

    def fake_today(cls: Any) -> Any:
        return real_d.today() if _datetime_real_here() else today(cls)

    fake_dt.now = classmethod(fake_now)  # type: ignore[assignment,method-assign]
    fake_dt.utcnow = classmethod(fake_utcnow)  # type: ignore[assignment,method-assign]
    fake_dt.fromtimestamp = classmethod(fake_fromtimestamp)  # type: ignore[assignment,method-assign]
    fake_dt.timestamp = fake_timestamp  # type: ignore[method-assign]
    fake_d.today = classmethod(fake_today)  # type: ignore[assignment,method-assign]


def freezegun_route_real_time(factory: object, real_here: Callable[[Any, str], bool]) -> None:
    """Let fakellm decide, per call, whether its freeze answers or real time does.

    While the innermost freeze answers from ``factory``, every faked reader
    asks ``real_here(frame, reader)`` (``frame``: the reader's caller, or None
    for the ``datetime``/``date`` class methods; ``reader``: ``"time"``,
    ``"perf_counter_ns"``, ..., or ``"datetime"``) and, if True, answers exactly as the
    real function does: ``time.*``, ``datetime.now``/``today``/``utcnow``/
    ``fromtimestamp``, ``datetime.timestamp()``, ``date.today``. With no freeze
    at all, the same readers are real too (freezegun's own rule for time
    functions; its datetime methods would otherwise fail on an empty stack).
    Someone else's freeze on top keeps freezegun's own rule. Installed once.
    """
    first = _ours[0] is None
    _ours[0], _ours[1] = factory, real_here
    if first:
        _fg._should_use_real_time = _should_use_real_time
        _install_datetime_passthrough()


_Binding = tuple[dict[str, Any], str, object, object]
# The modules freezegun patches itself (attribute by attribute, see _MODULE_PATCHES).
_CLOCK_MODULES = frozenset({"datetime", "time", "_datetime"})


def _rebind(
    module_names: Iterable[str], table: dict[int, object], ignore: tuple[str, ...]
) -> list[_Binding]:
    """In each named module's own namespace, replace every value whose id is a key of
    ``table`` by what it maps to; one ``(namespace, name, new, old)`` per change.

    freezegun reads ``dir(module)`` and ``getattr`` instead, which runs lazy
    ``__getattr__`` hooks (``fakellm``'s own, ``langchain_core``'s) and so imports
    modules while ``datetime.datetime`` is freezegun's class: a pydantic imported
    then keys its datetime schema on that class and can never build a datetime
    field again. A namespace read directly imports nothing. Names that are a
    fake's own (``FakeDatetime``, ...) are left as they are, as freezegun does.
    """
    import types

    fake_names = _FAKE_NAMES
    out: list[_Binding] = []
    for module_name in module_names:
        module = sys.modules.get(module_name)
        if (
            not isinstance(module, types.ModuleType)
            or module_name in _CLOCK_MODULES
            or module_name.startswith(ignore)
        ):
            continue
        namespace = vars(module)
        for name, value in list(namespace.items()):
            new = table.get(id(value))
            if new is not None and name not in fake_names:
                namespace[name] = new
                out.append((namespace, name, new, value))
    return out


def freezegun_bind_fakes(ignore: tuple[str, ...]) -> tuple[_Binding, ...]:
    """Bind freezegun's fakes wherever a loaded module holds a real clock function or
    class, as ``freeze_time``'s scan does (without importing anything: see
    ``_rebind``), and return what was bound.

    One ``(module namespace, name, fake, real)`` per binding (``from datetime import
    datetime``, ``from time import time``, ...), so all can be put back and set
    again without another scan. Modules named in ``ignore`` keep the real
    functions, as with freezegun's ``ignore``.
    """
    fakes = {id(real): fake for _owner, _name, fake, real in _MODULE_PATCHES if fake is not None}
    return tuple(_rebind(list(sys.modules), fakes, (*ignore, "freezegun")))


# The bindings last set, and the same as (namespace, name, fake) and as
# (namespace, name, real) triples: every scope sets them all and puts them all
# back, and a loop over ready triples does about a quarter less work.
_split_bindings: list[Any] = [None, (), ()]


def freezegun_set_bindings(bindings: tuple[_Binding, ...], *, fake: bool) -> None:
    """Set the scan's bindings to freezegun's fakes, or back to the real values."""
    split = _split_bindings
    if split[0] is not bindings:
        split[1] = tuple((namespace, name, value) for namespace, name, value, _ in bindings)
        split[2] = tuple((namespace, name, value) for namespace, name, _, value in bindings)
        split[0] = bindings
    for namespace, name, value in split[1 if fake else 2]:
        namespace[name] = value


def freezegun_stop_without_imports(api: Any) -> None:
    """``api.stop()`` for a started ``freeze_time``, without importing anything.

    freezegun's stop() puts back the modules imported since its start by reading
    every name in ``dir(module)``; a module with a lazy ``__getattr__``
    (``langchain_core.callbacks``, ...) then imports while other modules still
    hold freezegun's classes, and the import can fail (a pydantic model with a
    datetime field, at interpreter exit). Those modules' own namespaces are put
    back here instead (``_rebind``), and stop() is left none to walk.
    """
    _rebind(set(sys.modules) - api.modules_at_start, api.reals, ("freezegun",))
    api.modules_at_start = set(sys.modules)
    api.stop()


# --- r5-13: unwinding a start that failed part-way ---------------------------------------


def freezegun_depth() -> int:
    """How many freezes are in freezegun's stacks."""
    return len(_fg.freeze_factories)


def freezegun_truncate(depth: int) -> None:
    """Take every freeze above the first ``depth`` out of freezegun's stacks."""
    for lst in (_fg.freeze_factories, _fg.tz_offsets, _fg.ignore_lists, _fg.tick_flags):
        del lst[depth:]


def freezegun_unbind_everywhere() -> None:
    """Put the real clock function or class back wherever a loaded module holds one of
    freezegun's fakes (the reverse of ``freezegun_bind_fakes``, with no list of what
    was bound). Names that are a fake's own are left alone, as freezegun leaves them."""
    reals = {id(fake): real for _owner, _name, fake, real in _MODULE_PATCHES if fake is not None}
    _rebind(list(sys.modules), reals, ("freezegun",))


def freezegun_modules_patched() -> bool:
    """Whether the ``datetime`` module holds freezegun's class (a freeze's patches are in)."""
    return _datetime.datetime is _fg.FakeDatetime


# freezegun's stop assumes freezes nest. Two ways a user's freeze_time does not nest
# with a fakellm scope, each mended here:
# * started inside a scope (its start only pushes: the scope's freeze made the
#   patches) and stopped after it, as the last freeze: freezegun's stop would undo a
#   scan it never made and fail part-way ('_freeze_time' object has no attribute
#   'fake_names'), leaving time.time patched and the scope's bindings fake. fakellm's
#   hook puts back what its freeze patched instead.
# * started before a scope (it made the patches) and stopped inside it: freezegun's
#   stop pops the innermost entry, fakellm's, and would leave its own frozen for good.
#   Its entry (the outermost) goes now, its patches once the stacks are empty (the
#   scope still reads through them).
_FREEZE_TIME: Any = _fg._freeze_time
_freezegun_stop: Callable[[Any], None] = _FREEZE_TIME.stop
_last_stop_hooks: list[Callable[[], bool]] = []
_deferred_stops: list[Any] = []


def _stop(self: Any) -> None:
    stack = _fg.freeze_factories
    if len(stack) == 1 and not hasattr(self, "fake_names"):
        for hook in _last_stop_hooks:
            if hook():
                return
    elif hasattr(self, "fake_names") and len(stack) > 1 and stack[-1] is _ours[0]:
        for lst in (stack, _fg.tz_offsets, _fg.ignore_lists, _fg.tick_flags):
            del lst[0]
        _deferred_stops.append(self)
        return
    _freezegun_stop(self)


def _finish_deferred_stops() -> None:
    while _deferred_stops and not _fg.freeze_factories:
        api = _deferred_stops.pop()
        freezegun_push(None, ())  # its stop pops an entry, then puts back its patches
        freezegun_stop_without_imports(api)


def freezegun_mend_unnested_stops(on_last_stop: Callable[[], bool]) -> None:
    """Make a ``freeze_time`` that does not nest with fakellm's freeze stop cleanly.

    ``on_last_stop`` is called when a freeze started on top of another stops as the
    last one; it returns True if it ended the freeze itself (emptied the stacks and
    put back what it had patched), else freezegun's own stop runs. A freeze that
    started first and stops under fakellm's freeze leaves the stacks at once and
    puts its patches back when ``freezegun_remove`` empties them. Installed once.
    """
    if on_last_stop not in _last_stop_hooks:
        _last_stop_hooks.append(on_last_stop)
        _FREEZE_TIME.stop = _stop


__all__ += [
    "freezegun_depth",
    "freezegun_mend_unnested_stops",
    "freezegun_modules_patched",
    "freezegun_truncate",
    "freezegun_unbind_everywhere",
]

__all__ += [
    "FREEZEGUN_REAL_DATETIME",
    "FREEZEGUN_REAL_TIME",
    "freezegun_active",
    "freezegun_patch_modules",
    "freezegun_push",
    "freezegun_remove",
    "freezegun_replace_factory",
    "freezegun_route_real_time",
    "freezegun_stop_without_imports",
]


def current_frames() -> dict[int, Any]:
    """Every thread's innermost frame, by thread id (for stall reports)."""
    return sys._current_frames()


__all__ += ["current_frames"]


# --- r5-13: a thread blocked in a wait nobody has signalled -------------------------------

import concurrent.futures as _futures  # noqa: E402
import threading as _threading  # noqa: E402

_CONDITION_WAIT = _threading.Condition.wait.__code__


def waits_unsignalled(frame: Any) -> bool:
    """Whether ``frame`` (a thread's innermost) is ``threading.Condition.wait`` (under
    ``Event.wait``, ``Future.result``, ``Queue.get``) that nobody has notified yet.

    Its private ``waiter`` lock is held until a notify releases it; once released the
    thread is about to run, even while the frame still shows the wait.
    """
    if frame.f_code is not _CONDITION_WAIT:
        return False
    waiter = frame.f_locals.get("waiter")
    if waiter is None or not waiter.locked():
        return False
    # A pool's future that a worker is running (``pool.submit(f).result()``) is
    # signalled by that worker, not by an event loop: its waiter is at work. (One a
    # loop settles, from ``run_coroutine_threadsafe``, is never running before it is
    # settled.)
    caller = frame.f_back
    if caller is not None and caller.f_code in _FUTURE_WAITS:
        future = caller.f_locals.get("self")
        if isinstance(future, _futures.Future) and future.running():
            return False
    return True


_FUTURE_WAITS = frozenset({_futures.Future.result.__code__, _futures.Future.exception.__code__})


__all__ += ["waits_unsignalled"]


# --- issue #12: langchain-core model internals -------------------------------------------
# langchain-core hands BaseLLM._generate only the first prompt's run manager, combines
# chat llm_outputs into {} unless a model overrides _combine_llm_outputs, and builds a
# configured model afresh per call in RunnableConfigurableFields._prepare. The classes
# below are the only places fakellm touches those names.


llm_run_managers: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "fakellm_llm_run_managers", default=None
)
"""Every prompt's run manager of the BaseLLM.generate call in progress, in prompt order."""


class PerPromptRunManagers:
    """Mixin for a ``BaseLLM``: parks every prompt's run manager in :data:`llm_run_managers`.

    Core passes ``_generate`` only ``run_managers[0]``, so without this every prompt of a
    multi-prompt ``generate`` would be recorded under the first prompt's run.
    """

    def _generate_helper(
        self,
        prompts: list[str],
        stop: list[str] | None,
        run_managers: list[Any],
        *,
        new_arg_supported: bool,
        **kwargs: Any,
    ) -> Any:
        token = llm_run_managers.set(run_managers)
        try:
            return super()._generate_helper(  # type: ignore[misc]
                prompts, stop, run_managers, new_arg_supported=new_arg_supported, **kwargs
            )
        finally:
            llm_run_managers.reset(token)

    async def _agenerate_helper(
        self,
        prompts: list[str],
        stop: list[str] | None,
        run_managers: list[Any],
        *,
        new_arg_supported: bool,
        **kwargs: Any,
    ) -> Any:
        token = llm_run_managers.set(run_managers)
        try:
            return await super()._agenerate_helper(  # type: ignore[misc]
                prompts, stop, run_managers, new_arg_supported=new_arg_supported, **kwargs
            )
        finally:
            llm_run_managers.reset(token)


class CombinedLLMOutputs:
    """Mixin for a ``BaseChatModel``: ``generate``'s ``llm_output`` as chat providers give it.

    The model's own ``_summed_llm_output`` does the work; core only calls
    ``_combine_llm_outputs``.
    """

    _summed_llm_output: Callable[[list[dict[str, Any] | None]], dict[str, Any]]

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        return self._summed_llm_output(llm_outputs)


class DefaultProfile:
    """Mixin for a ``BaseChatModel``: the model's own default ``profile``.

    Core fills ``profile`` from ``_resolve_model_profile`` when none is given; the
    model's ``_default_profile`` says what that is.
    """

    _default_profile: Callable[[], Any]

    def _resolve_model_profile(self) -> Any:
        return self._default_profile()


def _shared_configurable_fields() -> type:
    # Built on first use: importing langchain-core here would make loading the
    # pytest plugin (which imports this module) import LangChain in every suite.
    from langchain_core.runnables.configurable import RunnableConfigurableFields

    class SharedConfigurableFields(RunnableConfigurableFields):  # type: ignore[type-arg]
        """``configurable_fields`` whose per-call copies report back to the default model.

        Core builds a new model per configured call; the default's ``_adopt_configured``
        hook makes that copy play the default's script position and record into its
        call log, so turns are consumed and calls recorded once per call.
        """

        def _prepare(self, config: Any = None) -> tuple[Any, Any]:
            runnable, config = super()._prepare(config)
            if runnable is not self.default:
                adopt = getattr(self.default, "_adopt_configured", None)
                if adopt is not None:
                    adopt(runnable)
            return runnable, config

    return SharedConfigurableFields


# Classes that need langchain-core or pydantic to be defined, built on first use
# (so not in __all__, which a star import would resolve eagerly).
_LAZY_CLASSES: dict[str, Callable[[], type]] = {
    "SharedConfigurableFields": _shared_configurable_fields,
}


def __getattr__(name: str) -> Any:
    build = _LAZY_CLASSES.get(name)
    if build is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = build()
    globals()[name] = cls
    return cls


class GenerateWithCacheHook:
    """Mixin for a ``BaseChatModel``: hooks around core's per-call entry points.

    Core calls ``_generate_with_cache``/``_agenerate_with_cache`` once per
    prompt with the run manager, then ``_generate``/``_stream`` without it on
    its streaming paths. The model's ``_around_generate(run_manager)`` (a context
    manager) and ``_around_agenerate(run_manager)`` (an async one) wrap that call.
    """

    _around_generate: Callable[[Any], Any]
    _around_agenerate: Callable[[Any], Any]

    def _generate_with_cache(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        with self._around_generate(run_manager):
            return super()._generate_with_cache(  # type: ignore[misc]
                messages, stop, run_manager, **kwargs
            )

    async def _agenerate_with_cache(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        async with self._around_agenerate(run_manager):
            return await super()._agenerate_with_cache(  # type: ignore[misc]
                messages, stop, run_manager, **kwargs
            )


_BM = TypeVar("_BM", bound="BaseModel")


def shallow_copy(obj: _BM, fields: dict[str, Any] | None = None) -> _BM:
    """A shallow copy of a validated pydantic model, for the per-chunk hot path.

    It does what ``model_copy()`` does (no validation; fresh ``__dict__``, fields-set,
    extra and private dicts, so mutating the copy leaves the original alone) without
    its generic machinery, which costs more than langchain-core's whole per-chunk
    callback dispatch. ``tests/unit/test_compat.py`` checks it stays equivalent.
    ``fields``, when given, is the copy's ``__dict__`` itself (a fresh copy of
    ``obj``'s, some values replaced; each keyed as ``obj.__dict__`` is), so a caller
    that sets fields does not copy the dict twice.
    """
    new = obj.__class__.__new__(obj.__class__)
    object.__setattr__(new, "__dict__", obj.__dict__.copy() if fields is None else fields)
    object.__setattr__(new, "__pydantic_fields_set__", set(obj.__pydantic_fields_set__))
    extra = obj.__pydantic_extra__
    object.__setattr__(new, "__pydantic_extra__", None if extra is None else dict(extra))
    private = obj.__pydantic_private__
    object.__setattr__(new, "__pydantic_private__", None if private is None else dict(private))
    return new


__all__ += [
    "CombinedLLMOutputs",
    "DefaultProfile",
    "GenerateWithCacheHook",
    "PerPromptRunManagers",
    "llm_run_managers",
    "shallow_copy",
]


# ---- issue 14: intercepting provider classes (fakellm._intercept, fakellm._cassette) ----
# `_get_ls_params` is the one place every integration states its provider and its
# model name (with the per-call `model=` override); `_BUILTIN_PROVIDERS` is the
# fixed table `init_chat_model` builds from (it has no public registry).


def chat_model_ls_params(
    model: Any, stop: list[str] | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """LangChain's standard tracing parameters of a call (``ls_provider``, ``ls_model_name``)."""
    return dict(model._get_ls_params(stop=stop, **kwargs))


def init_chat_model_classes() -> list[tuple[str, str, str]]:
    """``(provider, module, class name)`` for every provider ``init_chat_model`` knows."""
    from langchain.chat_models import base

    return [(key, module, name) for key, (module, name, _) in base._BUILTIN_PROVIDERS.items()]


#: Core's per-call entry points that get the run manager (which `_stream` does not),
#: in a model's sync and async forms: (messages, stop, run_manager, **kwargs).
CACHED_GENERATE_HOOKS: tuple[str, str] = ("_generate_with_cache", "_agenerate_with_cache")

__all__ += ["CACHED_GENERATE_HOOKS", "chat_model_ls_params", "init_chat_model_classes"]


# --- follow-17: a fresh chat model's construction ----------------------------------------
# Every BaseChatModel construction runs core's `_check_profile_keys` validator, which
# resolves ModelProfile's type hints (typing.get_type_hints, about two thirds of a
# FakeChatModel's construction) to warn about unknown profile keys. The mixin below
# replaces that validator (pydantic keys model validators by name) with one that
# resolves the declared keys once and calls core's own `_warn_unknown_profile_keys`
# (same warning, same message) only when a profile has a key outside them.


@functools.cache
def _declared_profile_keys() -> frozenset[str] | None:
    from langchain_core.language_models import ModelProfile

    try:
        return frozenset(typing.get_type_hints(ModelProfile))
    except (TypeError, NameError):
        return None  # core's own function then logs and skips its check


def _profile_keys_checked_once() -> type:
    # Built on first use, like SharedConfigurableFields: the decorator needs pydantic,
    # which loading the pytest plugin (it imports this module) must not import.
    import pydantic

    class ProfileKeysCheckedOnce:
        """Mixin for a ``BaseChatModel``: core's unknown-profile-key check, hints resolved once."""

        @pydantic.model_validator(mode="after")
        def _check_profile_keys(self) -> Any:
            profile = getattr(self, "profile", None)
            if profile and isinstance(profile, dict):
                keys = _declared_profile_keys()
                if keys is None or not keys.issuperset(profile):
                    from langchain_core.language_models.model_profile import (
                        _warn_unknown_profile_keys,
                    )

                    _warn_unknown_profile_keys(profile)  # type: ignore[arg-type]
            return self

    return ProfileKeysCheckedOnce


_LAZY_CLASSES["ProfileKeysCheckedOnce"] = _profile_keys_checked_once

if TYPE_CHECKING:

    class ProfileKeysCheckedOnce:
        """What type checkers see of the class built on first use above."""


# --- r3-17: the call path's private state ------------------------------------------------


def private_values(model: Any) -> dict[str, Any]:
    """The values of ``model``'s pydantic private attributes, by name.

    Reading ``model._x`` goes through pydantic's ``BaseModel.__getattr__``, which
    first asks the attribute's declaration for a descriptor (2 µs, an
    AttributeError built and caught); the call path reads its three several
    times per call. The dict is the model's own: writes through it are writes
    to the attributes.
    """
    values: dict[str, Any] = model.__pydantic_private__
    return values


# --- r6-async: LangSmith's tracing tags --------------------------------------------------


def langsmith_tags() -> list[str] | None:
    """The tags ``langsmith.tracing_context(tags=...)`` set for the current context.

    What ``get_tracing_context()["tags"]`` reads (and core's configure adds to
    every run), without building that function's dict of nine context values:
    a stream call asks on every call. langsmith is imported on first use, as
    core's configure does (it is slow to import).
    """
    tags: list[str] | None = _langsmith_tags_var().get()
    return tags


@functools.cache
def _langsmith_tags_var() -> contextvars.ContextVar[list[str] | None]:
    from langsmith._internal._context import _TAGS

    return _TAGS


__all__ += ["langsmith_tags"]


# --- r6: core's run-id generator, as its callback manager binds it ------------------------


def core_run_id() -> _uuid.UUID:
    """A new run id, made as core's callback manager makes the ids of the runs it names.

    The models choose a run's id before core starts the run (to close it if a
    cancellation leaves it open). They take it from the name core's manager module
    calls, looked up there on every call, so a test that patches that generator to
    get known ids gets them from fakellm's runs too.
    """
    run_id: _uuid.UUID = _core_manager().uuid7()
    return run_id


@functools.cache
def _core_manager() -> Any:
    from langchain_core.callbacks import manager

    return manager


__all__ += ["core_run_id"]
