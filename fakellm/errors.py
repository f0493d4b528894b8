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
import math
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ContentFilterError",
    "DeadlockError",
    "FakeLLMError",
    "InvalidScript",
    "LeakedTasks",
    "NetworkBlocked",
    "ProviderError",
    "RateLimitError",
    "ScriptProblem",
    "ServerError",
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


class UnusedTurns(FakeLLMError, AssertionError):
    """A script still held turns when the test ended."""


class DeadlockError(FakeLLMError, RuntimeError):
    """Under virtual time, tasks are waiting but nothing can ever wake them."""


class LeakedTasks(FakeLLMError, AssertionError):
    """A scenario ended while tasks it started were still pending."""


class NetworkBlocked(FakeLLMError, OSError):
    """A test tried to open a connection to an address off this machine."""


class ProviderError(Exception):
    """Base class of the scripted errors that imitate a model provider's API.

    Args:
        message: the error text; each subclass has a default that says it was
            scripted, so a traceback never looks like a real outage.
        status_code: the HTTP status a real provider would have answered with.
    """

    default_message = "provider error (scripted by fakellm)"
    default_status: int | None = None

    def __init__(self, message: str | None = None, *, status_code: int | None = None) -> None:
        if message is not None and not isinstance(message, str):
            raise TypeError(f"message={message!r}: expected the error text (a str) or None")
        if status_code is not None and (
            isinstance(status_code, bool) or not isinstance(status_code, int)
        ):
            raise TypeError(f"status_code={status_code!r}: expected an HTTP status (int) or None")
        self.message = message if message is not None else self.default_message
        self.status_code = status_code if status_code is not None else self.default_status
        super().__init__(self.message)

    def spec(self) -> dict[str, Any]:
        """The script-file form of this error (``{"type": ..., ...}``)."""
        out: dict[str, Any] = {"type": type(self).__name__}
        if self.message != self.default_message:
            out["message"] = self.message
        if self.status_code != self.default_status:
            out["status_code"] = self.status_code
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "type")
        return f"{type(self).__name__}({args})"


class RateLimitError(ProviderError):
    """HTTP 429. ``retry_after`` is the number of seconds the provider asks to wait."""

    default_message = "rate limit exceeded (scripted by fakellm)"
    default_status = 429

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        if retry_after is not None and (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, int | float)
            or not math.isfinite(retry_after)
            or retry_after < 0
        ):
            msg = f"retry_after={retry_after!r}: expected a finite number of seconds >= 0 or None"
            raise TypeError(msg)
        self.retry_after = retry_after
        super().__init__(message, status_code=status_code)

    def spec(self) -> dict[str, Any]:
        out = super().spec()
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out


class APITimeoutError(ProviderError, TimeoutError):
    """The request timed out before the provider answered."""

    default_message = "request timed out (scripted by fakellm)"


class APIConnectionError(ProviderError, ConnectionError):
    """The connection failed or was reset, possibly in the middle of a stream."""

    default_message = "connection error (scripted by fakellm)"


class ServerError(ProviderError):
    """HTTP 5xx from the provider; ``status_code`` defaults to 500."""

    default_message = "internal server error (scripted by fakellm)"
    default_status = 500


class AuthenticationError(ProviderError):
    """HTTP 401: the API key was refused."""

    default_message = "invalid API key (scripted by fakellm)"
    default_status = 401


class BadRequestError(ProviderError):
    """HTTP 400: the provider rejected the request (context too long, bad schema, ...)."""

    default_message = "bad request (scripted by fakellm)"
    default_status = 400


class ContentFilterError(BadRequestError):
    """HTTP 400: the provider's content filter refused the prompt or the answer."""

    default_message = "content filtered (scripted by fakellm)"


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
