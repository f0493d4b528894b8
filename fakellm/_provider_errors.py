"""The provider-like errors a script can inject, in langchain-core's hierarchy.

Public through :mod:`fakellm.errors` (imported from there on first use): each
is also the matching ``langchain_core.exceptions`` class, and with a provider
flavour also that provider SDK's exception, so an app's retry and fallback
paths see what a real provider would raise.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.exceptions import ContextOverflowError as _CoreContextOverflowError
from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)


class _Headers(Mapping[str, str]):
    """Response headers, read case-insensitively (``headers["Retry-After"]``)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = {k.lower(): v for k, v in (items or {}).items()}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"_Headers({self._items!r})"


@dataclass(frozen=True)
class _ErrorResponse:
    """The HTTP response a scripted status error came with, as apps read it.

    Attributes:
        status_code: the HTTP status.
        headers: the response headers; ``retry-after`` when the error sets
            ``retry_after``.
    """

    status_code: int
    headers: _Headers


class ProviderError(ModelError):
    """Base class of the scripted errors that imitate a model provider's API.

    Every provider error is also an instance of the matching class of
    ``langchain_core.exceptions`` (``ModelRateLimitError``, ``ModelAPIError``, ...),
    so ``except ModelRateLimitError``, ``is_retryable`` and LangChain's retry and
    fallback middleware treat it as they treat a real provider's.

    Args:
        message: the error text; each subclass has a default that says it was
            scripted, so a traceback never looks like a real outage.
        status_code: the HTTP status a real provider would have answered with.
        retry_after: seconds the provider asks the client to wait; sent as the
            ``retry-after`` header of :attr:`response`.

    Attributes:
        response: for an error with a status code, a response-like object
            (``status_code``, ``headers`` read case-insensitively); ``None`` for
            connection errors and timeouts.
    """

    default_message = "provider error (scripted by fakellm)"
    default_status: int | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        if message is not None and not isinstance(message, str):
            raise TypeError(f"message={message!r}: expected the error text (a str) or None")
        if status_code is not None and (
            isinstance(status_code, bool) or not isinstance(status_code, int)
        ):
            raise TypeError(f"status_code={status_code!r}: expected an HTTP status (int) or None")
        if retry_after is not None and (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, int | float)
            or not math.isfinite(retry_after)
            or retry_after < 0
        ):
            msg = f"retry_after={retry_after!r}: expected a finite number of seconds >= 0 or None"
            raise TypeError(msg)
        self.message = message if message is not None else self.default_message
        self.status_code = status_code if status_code is not None else self.default_status
        self.retry_after = retry_after
        self.response: Any = _response(self.status_code, retry_after)
        super().__init__(self.message)

    @classmethod
    def _kind(cls) -> type[ProviderError]:
        """The fakellm.errors class this error is (flavoured ones derive from it)."""
        return cls

    def spec(self) -> dict[str, Any]:
        """The script-file form of this error (``{"type": ..., ...}``)."""
        kind = self._kind()
        out: dict[str, Any] = {"type": kind.__name__}
        if self.message != kind.default_message:
            out["message"] = self.message
        if self.status_code != kind.default_status:
            out["status_code"] = self.status_code
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "type")
        return f"{self._kind().__name__}({args})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the spec, so flavoured (dynamically made) classes pickle too.
        return (_rebuild, (self.spec(), _flavour_of(self)))


class RateLimitError(ProviderError, ModelRateLimitError):
    """HTTP 429. ``retry_after`` is the number of seconds the provider asks to wait."""

    default_message = "rate limit exceeded (scripted by fakellm)"
    default_status = 429


class APIConnectionError(ProviderError, ModelConnectionError):
    """The connection failed or was reset, possibly in the middle of a stream."""

    default_message = "connection error (scripted by fakellm)"


class APITimeoutError(APIConnectionError, ModelTimeoutError):
    """The request timed out before the provider answered.

    As in the openai and anthropic SDKs it is a connection error, not the
    builtin ``TimeoutError`` (an ``OSError``, which LangGraph's default retry
    policy does not retry).
    """

    default_message = "request timed out (scripted by fakellm)"


class ServerError(ProviderError, ModelAPIError):
    """HTTP 5xx from the provider; ``ServerError(503)`` or ``status_code=503``, default 500."""

    default_message = "internal server error (scripted by fakellm)"
    default_status = 500

    def __init__(
        self,
        message: str | int | None = None,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        if isinstance(message, bool):
            raise TypeError(f"message={message!r}: expected the error text or an HTTP 5xx status")
        if isinstance(message, int):
            if status_code is not None:
                msg = f"ServerError({message!r}, status_code={status_code!r}): give the status once"
                raise TypeError(msg)
            message, status_code = None, message
        if (
            status_code is not None
            and isinstance(status_code, int)
            and not 500 <= status_code <= 599
        ):
            msg = (
                f"status_code={status_code!r}: ServerError is an HTTP 5xx error (500-599); "
                "for a 4xx use RateLimitError, BadRequestError, AuthenticationError, "
                "PermissionDeniedError or NotFoundError"
            )
            raise TypeError(msg)
        super().__init__(message, status_code=status_code, retry_after=retry_after)


class AuthenticationError(ProviderError, ModelAuthenticationError):
    """HTTP 401: the API key was refused."""

    default_message = "invalid API key (scripted by fakellm)"
    default_status = 401


class PermissionDeniedError(ProviderError, ModelPermissionDeniedError):
    """HTTP 403: the key may not use this model or feature."""

    default_message = "permission denied (scripted by fakellm)"
    default_status = 403


class NotFoundError(ProviderError, ModelNotFoundError):
    """HTTP 404: the model (or deployment) does not exist."""

    default_message = "model not found (scripted by fakellm)"
    default_status = 404


class BadRequestError(ProviderError, ModelInvalidRequestError):
    """HTTP 400: the provider rejected the request (bad schema, bad parameter, ...)."""

    default_message = "bad request (scripted by fakellm)"
    default_status = 400


class ContentFilterError(BadRequestError):
    """HTTP 400: the provider's content filter refused the prompt or the answer."""

    default_message = "content filtered (scripted by fakellm)"


class ContextOverflowError(ProviderError, _CoreContextOverflowError):
    """HTTP 400: the input exceeds the model's context window.

    It is core's ``ContextOverflowError`` (which the summarization middleware
    catches to summarise and retry) and, as langchain-openai's and
    langchain-anthropic's are, not a ``ModelInvalidRequestError``.
    """

    default_message = "prompt is too long: context_length_exceeded (scripted by fakellm)"
    default_status = 400


# -- provider flavours ------------------------------------------------------------------

PROVIDERS = ("openai", "anthropic")
"""Providers whose SDK exceptions a scripted error can also be (see :func:`flavoured`)."""

_SDK_CLASS_NAMES: dict[type[ProviderError], str] = {
    RateLimitError: "RateLimitError",
    APITimeoutError: "APITimeoutError",
    APIConnectionError: "APIConnectionError",
    ServerError: "InternalServerError",
    AuthenticationError: "AuthenticationError",
    PermissionDeniedError: "PermissionDeniedError",
    NotFoundError: "NotFoundError",
    BadRequestError: "BadRequestError",
    ContextOverflowError: "BadRequestError",
}

# Anthropic's SDK has a class per 5xx status that langchain-anthropic tells apart.
_ANTHROPIC_5XX = {
    501: "HTTPNotImplementedError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
    529: "OverloadedError",
}

_URLS = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "anthropic": "https://api.anthropic.com/v1/messages",
}

_flavours: dict[tuple[type[ProviderError], type[BaseException], str], type[ProviderError]] = {}


def flavoured(error: BaseException, provider: str) -> BaseException:
    """``error`` as ``provider``'s SDK would raise it, when that SDK is installed.

    A fakellm provider error becomes an instance of a class deriving from both its
    own class (so it keeps its core ``langchain_core.exceptions`` class) and the
    SDK's exception (``openai.RateLimitError``, ``anthropic.APITimeoutError``, ...),
    the way langchain-openai and langchain-anthropic build theirs, with the SDK's
    ``request``, ``response`` (headers included) and ``body``. Any other error, an
    unknown provider, or a provider whose SDK is not installed: ``error`` as given.
    """
    if not isinstance(error, ProviderError) or provider not in PROVIDERS:
        return error
    if _flavour_of(error) is not None:
        return error
    sdk = _sdk(provider)
    if sdk is None:
        return error
    kind = type(error)
    base = next((c for c in kind.__mro__ if c in _SDK_CLASS_NAMES), None)
    name = _SDK_CLASS_NAMES[base] if base is not None else None
    if provider == "anthropic" and base is ServerError and error.status_code in _ANTHROPIC_5XX:
        name = _ANTHROPIC_5XX[error.status_code]
    if name is None:
        name = "APIStatusError" if error.status_code is not None else "APIError"
    sdk_cls: type[BaseException] = getattr(sdk, name)
    key = (kind, sdk_cls, provider)
    cls = _flavours.get(key)
    if cls is None:
        prefix = "OpenAI" if provider == "openai" else "Anthropic"
        cls = type(
            f"{prefix}{kind.__name__}",
            (kind, sdk_cls),
            {
                "__module__": __name__,
                "__doc__": f"{kind.__name__} as the {provider} SDK raises it (made by fakellm).",
                "_kind": classmethod(lambda _cls, _k=kind: _k),
                "_provider": provider,
            },
        )
        _flavours[key] = cls
    new = cls.__new__(cls)
    http = _http_module()
    request = http.Request("POST", _URLS[provider])
    if error.status_code is None:
        if issubclass(sdk_cls, sdk.APITimeoutError):
            sdk_cls.__init__(new, request)
        else:
            sdk_cls.__init__(new, message=error.message, request=request)  # type: ignore[call-arg]
    else:
        body = {"error": {"message": error.message, "type": _error_type(error)}}
        headers = dict(error.response.headers) if error.response else {}
        response = http.Response(error.status_code, headers=headers, json=body, request=request)
        sdk_cls.__init__(new, error.message, response=response, body=body)  # type: ignore[call-arg]
    # The SDK's __init__ wrote its own message; the script's stands.
    new.args = (error.message,)
    new.message = error.message
    new.status_code = error.status_code
    new.retry_after = error.retry_after
    return new


def _error_type(error: ProviderError) -> str:
    if isinstance(error, RateLimitError):
        return "rate_limit_error"
    if isinstance(error, ServerError):
        return "overloaded_error" if error.status_code == 529 else "api_error"
    if isinstance(error, AuthenticationError):
        return "authentication_error"
    if isinstance(error, PermissionDeniedError):
        return "permission_error"
    if isinstance(error, NotFoundError):
        return "not_found_error"
    return "invalid_request_error"


def _flavour_of(error: BaseException) -> str | None:
    return getattr(type(error), "_provider", None)


def _rebuild(spec: dict[str, Any], provider: str | None) -> BaseException:
    spec = dict(spec)
    kind = globals()[spec.pop("type")]
    error = kind(**spec)
    return error if provider is None else flavoured(error, provider)


def _sdk(provider: str) -> Any:
    try:
        return importlib.import_module(provider)
    except ImportError:
        return None


def _http_module() -> Any:
    # The openai and anthropic SDKs build on httpx2 now, on httpx before.
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return importlib.import_module("httpx")


def _response(status_code: int | None, retry_after: float | None) -> _ErrorResponse | None:
    if status_code is None:
        return None
    headers = {"content-type": "application/json"}
    if retry_after is not None:
        headers["retry-after"] = _header_seconds(retry_after)
    return _ErrorResponse(status_code, _Headers(headers))


def _header_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
