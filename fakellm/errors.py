"""Every exception fakellm raises, and the provider-like errors a script can inject.

Two families live here:

* harness errors (:class:`FakeLLMError` and its subclasses) say that the test,
  the script or the app did something the harness does not allow;
* provider errors (:class:`ProviderError` and its subclasses) imitate what a real
  model API raises, so an app's ``with_retry``/``with_fallbacks`` paths can be
  tested offline. Script files name them by class name (``error: RateLimitError``).
"""

from __future__ import annotations

import functools
import itertools
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakellm._provider_errors import (
        PROVIDERS as PROVIDERS,
    )
    from fakellm._provider_errors import (
        APIConnectionError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ContentFilterError,
        ContextOverflowError,
        NotFoundError,
        PermissionDeniedError,
        ProviderError,
        RateLimitError,
        ServerError,
    )
    from fakellm._provider_errors import (
        flavoured as flavoured,
    )

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ContentFilterError",
    "ContextOverflowError",
    "DeadlockError",
    "FakeLLMError",
    "InvalidScript",
    "LeakedTasks",
    "NetworkBlocked",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "ResponderError",
    "ScriptProblem",
    "ServerError",
    "Stalled",
    "TimeBudgetExceeded",
    "ToolChoiceError",
    "UnexpectedCall",
    "UnknownToolError",
    "UnusedTurns",
]


class FakeLLMError(Exception):
    """Base class of the errors that report misuse of the harness."""


@dataclass(frozen=True)
class ScriptProblem:
    """One problem found in a script: where it is, what was there, what is accepted.

    Attributes:
        path: the field path inside the script, such as ``turns[2].delay``.
        value: the offending value (``None`` when a required field is missing).
        message: what is wrong and what would be accepted.
    """

    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        where = self.path or "<script>"
        return f"{where}: {self.message} (got {_short_repr(self.value)})"


class InvalidScript(FakeLLMError, TypeError):
    """A script (or one of its parts) is not valid.

    ``problems`` lists every problem found, each with its field path, so a script
    file with several mistakes is fixed in one pass.
    """

    def __init__(self, problems: Sequence[ScriptProblem], *, source: str = "") -> None:
        self.problems: tuple[ScriptProblem, ...] = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            text = f"invalid script{where}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"invalid script{where}: {len(self.problems)} problems\n{lines}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle their message as args; rebuild from the problems instead,
        # so the error survives a trip to an xdist worker or a subprocess.
        return (functools.partial(type(self), source=self.source), (self.problems,))


class UnexpectedCall(FakeLLMError):
    """A model was called more times than its script covers.

    It is raised to the app *and* recorded on the model, so the test fails at
    teardown even if the app swallowed it.
    """


class UnknownToolError(FakeLLMError, ValueError):
    """A scripted tool call names a tool that is not bound to the model."""


class ResponderError(FakeLLMError):
    """A rule's ``responder`` or ``when`` predicate raised: a bug in the script.

    It is raised to the app *and* recorded on the model, so the test fails at
    teardown even if the app (a fallback, a retry) swallowed it.
    """


class ToolChoiceError(FakeLLMError, ValueError):
    """A turn answers a call in a way its ``tool_choice`` rules out for a real model."""


class UnusedTurns(FakeLLMError, AssertionError):
    """A script still held turns when the test ended."""


class DeadlockError(FakeLLMError, RuntimeError):
    """Under virtual time, tasks are waiting but nothing can ever wake them."""


class TimeBudgetExceeded(DeadlockError):
    """Virtual time would pass its budget: a livelock, or a wait longer than the test allows."""


class Stalled(DeadlockError):
    """Under virtual time, real work (a thread, process or socket) made no progress for too long."""


class LeakedTasks(FakeLLMError, AssertionError):
    """A scenario ended while tasks it started were still pending."""


class NetworkBlocked(FakeLLMError, OSError):
    """A test tried to open a connection to an address off this machine."""


# The provider errors derive from langchain-core's exception classes; they live in
# fakellm._provider_errors and are imported on first use, so that loading the
# pytest plugin (which needs the harness errors above) does not import LangChain.
_PROVIDER_NAMES = frozenset(
    (
        "APIConnectionError",
        "APITimeoutError",
        "AuthenticationError",
        "BadRequestError",
        "ContentFilterError",
        "ContextOverflowError",
        "NotFoundError",
        "PROVIDERS",
        "PermissionDeniedError",
        "ProviderError",
        "RateLimitError",
        "ServerError",
        "flavoured",
    )
)


def __getattr__(name: str) -> Any:
    if name in _PROVIDER_NAMES:
        from fakellm import _provider_errors

        value = getattr(_provider_errors, name)
        globals()[name] = value  # later look-ups skip this function
        return value
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_PROVIDER_NAMES})


class _ShortRepr(reprlib.Repr):
    """reprlib's depth and width caps, keeping a mapping's and a set's own order."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother = 6, 80, 80
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = 20

    def repr_dict(self, x: Any, level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [
            f"{self.repr1(k, level - 1)}: {self.repr1(x[k], level - 1)}"
            for k in itertools.islice(x, self.maxdict)
        ]
        return "{" + ", ".join(items + (["..."] if len(x) > self.maxdict else [])) + "}"

    def repr_set(self, x: Any, level: int) -> str:
        return self._items(x, level, "{", "}") if x else "set()"

    def repr_frozenset(self, x: Any, level: int) -> str:
        return self._items(x, level, "frozenset({", "})") if x else "frozenset()"

    def _items(self, x: Any, level: int, left: str, right: str) -> str:
        if level <= 0:
            return f"{left}...{right}"
        items = [self.repr1(v, level - 1) for v in itertools.islice(x, self.maxset)]
        return left + ", ".join(items + (["..."] if len(x) > self.maxset else [])) + right


_REPR = _ShortRepr()


def _short_repr(value: Any, limit: int = 80) -> str:
    # Length and depth capped and never raising: a structure nested too deeply for
    # repr, an int too long to print or a broken __repr__ still give a short message.
    try:
        if isinstance(value, dict | list | tuple | set | frozenset):
            text = _REPR.repr(value)
        else:
            text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
