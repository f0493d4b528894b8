"""Unit tests for fakellm.errors: messages, status codes, specs and class relations."""

from __future__ import annotations

import math
import pickle

import anthropic
import openai
import pytest
from langchain_core import exceptions as core

from fakellm import errors
from fakellm.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextOverflowError,
    DeadlockError,
    FakeLLMError,
    InvalidScript,
    NetworkBlocked,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ScriptProblem,
    ServerError,
    UnexpectedCall,
    UnknownToolError,
    UnusedTurns,
)

PROVIDER_DEFAULTS = [
    (ProviderError, "provider error (scripted by fakellm)", None),
    (RateLimitError, "rate limit exceeded (scripted by fakellm)", 429),
    (APITimeoutError, "request timed out (scripted by fakellm)", None),
    (APIConnectionError, "connection error (scripted by fakellm)", None),
    (ServerError, "internal server error (scripted by fakellm)", 500),
    (AuthenticationError, "invalid API key (scripted by fakellm)", 401),
    (BadRequestError, "bad request (scripted by fakellm)", 400),
    (ContentFilterError, "content filtered (scripted by fakellm)", 400),
    (PermissionDeniedError, "permission denied (scripted by fakellm)", 403),
    (NotFoundError, "model not found (scripted by fakellm)", 404),
    (
        ContextOverflowError,
        "prompt is too long: context_length_exceeded (scripted by fakellm)",
        400,
    ),
]


# --- module surface ----------------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    assert errors.__all__ == sorted(errors.__all__)
    # Provider errors live in fakellm._provider_errors and load on first use.
    public_classes = {
        name
        for name in dir(errors)
        if isinstance(value := getattr(errors, name), type)
        and value.__module__ in ("fakellm.errors", "fakellm._provider_errors")
        and not name.startswith("_")
    }
    assert set(errors.__all__) == public_classes
    contract = {  # the documented public errors; more may be added
        "UnexpectedCall",
        "UnusedTurns",
        "InvalidScript",
        "DeadlockError",
        "NetworkBlocked",
        "RateLimitError",
        "APITimeoutError",
        "APIConnectionError",
        "ServerError",
    }
    assert contract <= set(errors.__all__)


# --- provider errors -----------------------------------------------------------------


@pytest.mark.parametrize(("cls", "message", "status"), PROVIDER_DEFAULTS)
def test_provider_error_defaults(cls, message, status) -> None:
    err = cls()
    assert err.message == message
    assert err.status_code == status
    assert str(err) == message
    assert err.args == (message,)
    assert err.spec() == {"type": cls.__name__}
    assert repr(err) == f"{cls.__name__}()"


@pytest.mark.parametrize(("cls", "message", "status"), PROVIDER_DEFAULTS)
def test_provider_error_custom_message_and_status(cls, message, status) -> None:
    err = cls("the model is on fire", status_code=599)
    assert str(err) == "the model is on fire"
    assert err.args == ("the model is on fire",)
    assert err.status_code == 599
    assert err.spec() == {
        "type": cls.__name__,
        "message": "the model is on fire",
        "status_code": 599,
    }
    assert repr(err) == (f"{cls.__name__}(message='the model is on fire', status_code=599)")


def test_empty_message_is_kept_not_replaced_by_the_default() -> None:
    err = ServerError("")
    assert str(err) == ""
    assert err.spec() == {"type": "ServerError", "message": ""}


def test_server_error_status_code() -> None:
    err = ServerError(status_code=503)
    assert err.status_code == 503
    assert str(err) == "internal server error (scripted by fakellm)"
    assert err.spec() == {"type": "ServerError", "status_code": 503}
    assert repr(err) == "ServerError(status_code=503)"


def test_giving_the_default_status_explicitly_leaves_it_out_of_the_spec() -> None:
    assert ServerError(status_code=500).spec() == {"type": "ServerError"}
    assert RateLimitError(status_code=429).spec() == {"type": "RateLimitError"}


def test_timeout_and_connection_errors_accept_a_status_code() -> None:
    timeout = APITimeoutError(status_code=504)
    conn = APIConnectionError("reset by peer", status_code=502)
    assert (timeout.status_code, str(timeout)) == (
        504,
        "request timed out (scripted by fakellm)",
    )
    assert (conn.status_code, str(conn)) == (502, "reset by peer")


# --- langchain-core's hierarchy -------------------------------------------------------

# fakellm error -> (core class, retryable); the table docs/scripts.md shows.
CORE_CLASSES = [
    (ProviderError, core.ModelError, False),
    (RateLimitError, core.ModelRateLimitError, True),
    (APIConnectionError, core.ModelConnectionError, True),
    (APITimeoutError, core.ModelTimeoutError, True),
    (ServerError, core.ModelAPIError, True),
    (AuthenticationError, core.ModelAuthenticationError, False),
    (PermissionDeniedError, core.ModelPermissionDeniedError, False),
    (NotFoundError, core.ModelNotFoundError, False),
    (BadRequestError, core.ModelInvalidRequestError, False),
    (ContentFilterError, core.ModelInvalidRequestError, False),
    (ContextOverflowError, core.ContextOverflowError, False),
]


@pytest.mark.parametrize(("cls", "core_cls", "retryable"), CORE_CLASSES)
def test_every_provider_error_is_its_core_class(cls, core_cls, retryable) -> None:
    err = cls()
    assert isinstance(err, core_cls)
    assert isinstance(err, core.ModelError)
    assert err.is_retryable is retryable


def test_context_overflow_is_not_an_invalid_request_as_with_the_integrations() -> None:
    # langchain-openai's and langchain-anthropic's overflow errors are
    # ContextOverflowError and the SDK's BadRequestError, not ModelInvalidRequestError.
    assert not isinstance(ContextOverflowError(), core.ModelInvalidRequestError)


def test_server_error_takes_its_status_positionally() -> None:
    err = ServerError(503)
    assert (err.status_code, err.message) == (503, "internal server error (scripted by fakellm)")
    assert err.spec() == {"type": "ServerError", "status_code": 503}
    assert repr(err) == "ServerError(status_code=503)"


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (
            lambda: ServerError(404),
            "status_code=404: ServerError is an HTTP 5xx error (500-599); for a 4xx use "
            "RateLimitError, BadRequestError, AuthenticationError, PermissionDeniedError "
            "or NotFoundError",
        ),
        (
            lambda: ServerError(503, status_code=502),
            "ServerError(503, status_code=502): give the status once",
        ),
    ],
)
def test_server_error_rejects_a_status_outside_5xx(make, text) -> None:
    with pytest.raises(TypeError) as info:
        make()
    assert str(info.value) == text


def test_status_errors_carry_a_response_with_the_retry_after_header() -> None:
    err = RateLimitError(retry_after=2)
    assert err.response.status_code == 429
    assert err.response.headers["retry-after"] == "2"
    assert err.response.headers["Retry-After"] == "2"
    assert dict(err.response.headers) == {
        "content-type": "application/json",
        "retry-after": "2",
    }
    assert ServerError(503, retry_after=1.5).response.headers["retry-after"] == "1.5"
    assert "retry-after" not in AuthenticationError().response.headers


def test_connection_errors_have_no_response() -> None:
    assert APIConnectionError().response is None
    assert APITimeoutError().response is None


# --- provider flavours -----------------------------------------------------------------

FLAVOURS = [
    ("openai", RateLimitError(retry_after=2), openai.RateLimitError),
    ("openai", APITimeoutError(), openai.APITimeoutError),
    ("openai", APIConnectionError("reset"), openai.APIConnectionError),
    ("openai", ServerError(503), openai.InternalServerError),
    ("openai", AuthenticationError(), openai.AuthenticationError),
    ("openai", PermissionDeniedError(), openai.PermissionDeniedError),
    ("openai", NotFoundError(), openai.NotFoundError),
    ("openai", BadRequestError(), openai.BadRequestError),
    ("openai", ContextOverflowError(), openai.BadRequestError),
    ("anthropic", RateLimitError(), anthropic.RateLimitError),
    ("anthropic", APITimeoutError(), anthropic.APITimeoutError),
    ("anthropic", ServerError(529), anthropic.OverloadedError),
    ("anthropic", ServerError(503), anthropic.ServiceUnavailableError),
    ("anthropic", ServerError(), anthropic.InternalServerError),
    ("anthropic", ContextOverflowError(), anthropic.BadRequestError),
]


@pytest.mark.parametrize(("provider", "err", "sdk_cls"), FLAVOURS, ids=repr)
def test_a_flavoured_error_is_the_sdk_class_and_keeps_its_own(provider, err, sdk_cls) -> None:
    got = errors.flavoured(err, provider)
    assert isinstance(got, sdk_cls)
    assert isinstance(got, type(err))
    assert got.spec() == err.spec()
    assert repr(got) == repr(err)
    assert str(got) == str(err)
    assert got.status_code == err.status_code
    assert got.is_retryable is err.is_retryable


def test_a_flavoured_status_error_carries_the_sdks_response_and_body() -> None:
    got = errors.flavoured(RateLimitError("slow down", retry_after=2), "openai")
    assert type(got).__name__ == "OpenAIRateLimitError"
    assert got.response.status_code == 429
    assert got.response.headers["retry-after"] == "2"
    assert got.body == {"error": {"message": "slow down", "type": "rate_limit_error"}}
    assert got.message == "slow down"
    timeout = errors.flavoured(APITimeoutError(), "openai")
    assert isinstance(timeout, openai.APIConnectionError)
    assert str(timeout.request.url) == "https://api.openai.com/v1/chat/completions"


def test_a_flavoured_error_pickles_as_the_same_flavour() -> None:
    got = errors.flavoured(ServerError(529, retry_after=3), "anthropic")
    back = pickle.loads(pickle.dumps(got))
    assert type(back) is type(got)
    assert isinstance(back, anthropic.OverloadedError)
    assert back.spec() == {"type": "ServerError", "status_code": 529, "retry_after": 3}


@pytest.mark.parametrize(
    ("err", "provider"),
    [(ValueError("x"), "openai"), (RateLimitError(), "fakellm"), (RateLimitError(), "mistral")],
    ids=repr,
)
def test_other_errors_and_providers_are_left_as_they_are(err, provider) -> None:
    assert errors.flavoured(err, provider) is err


# --- RateLimitError.retry_after ------------------------------------------------------


def test_rate_limit_retry_after_defaults_to_none() -> None:
    err = RateLimitError()
    assert err.retry_after is None
    assert err.spec() == {"type": "RateLimitError"}


@pytest.mark.parametrize("retry_after", [0, 2, 1.5])
def test_rate_limit_retry_after_accepted(retry_after) -> None:
    err = RateLimitError(retry_after=retry_after)
    assert err.retry_after == retry_after
    assert err.status_code == 429
    assert err.spec() == {"type": "RateLimitError", "retry_after": retry_after}
    assert repr(err) == f"RateLimitError(retry_after={retry_after!r})"


def test_rate_limit_full_spec_and_repr() -> None:
    err = RateLimitError("slow down", retry_after=2, status_code=503)
    assert err.spec() == {
        "type": "RateLimitError",
        "message": "slow down",
        "status_code": 503,
        "retry_after": 2,
    }
    assert repr(err) == ("RateLimitError(message='slow down', status_code=503, retry_after=2)")


@pytest.mark.parametrize(
    ("retry_after", "shown"),
    [
        (-1, "-1"),
        (-0.5, "-0.5"),
        (True, "True"),
        (False, "False"),
        ("2", "'2'"),
        ([1], "[1]"),
    ],
)
def test_rate_limit_rejects_bad_retry_after(retry_after, shown) -> None:
    with pytest.raises(TypeError) as info:
        RateLimitError(retry_after=retry_after)
    assert str(info.value) == (
        f"retry_after={shown}: expected a finite number of seconds >= 0 or None"
    )


def test_rate_limit_rejects_nan_retry_after() -> None:
    with pytest.raises(TypeError):
        RateLimitError(retry_after=math.nan)


# --- spec() round trip ---------------------------------------------------------------


@pytest.mark.parametrize(
    "err",
    [
        ProviderError(),
        RateLimitError(retry_after=2),
        RateLimitError("slow", retry_after=0.5, status_code=503),
        APITimeoutError("too slow"),
        APIConnectionError(status_code=502),
        ServerError(status_code=503),
        AuthenticationError("bad key"),
        BadRequestError("context too long", status_code=413),
        ContentFilterError(),
    ],
    ids=repr,
)
def test_spec_round_trips_through_the_constructor(err) -> None:
    spec = err.spec()
    cls = getattr(errors, spec["type"])
    assert cls is type(err)
    rebuilt = cls(**{k: v for k, v in spec.items() if k != "type"})
    assert rebuilt.spec() == spec
    assert str(rebuilt) == str(err)
    assert rebuilt.status_code == err.status_code
    assert repr(rebuilt) == repr(err)


def test_provider_errors_pickle() -> None:
    err = RateLimitError("slow", retry_after=2, status_code=503)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitError
    assert back.spec() == err.spec()
    assert str(back) == "slow"


# --- class relations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (APITimeoutError, APIConnectionError),
        (InvalidScript, TypeError),
        (InvalidScript, FakeLLMError),
        (UnusedTurns, AssertionError),
        (UnusedTurns, FakeLLMError),
        (NetworkBlocked, OSError),
        (NetworkBlocked, FakeLLMError),
        (DeadlockError, RuntimeError),
        (DeadlockError, FakeLLMError),
        (UnknownToolError, ValueError),
        (UnknownToolError, FakeLLMError),
        (UnexpectedCall, FakeLLMError),
        (ContentFilterError, BadRequestError),
    ],
)
def test_subclass_relations(cls, base) -> None:
    assert issubclass(cls, base)


@pytest.mark.parametrize(("cls", "_message", "_status"), PROVIDER_DEFAULTS)
def test_provider_errors_are_not_harness_errors(cls, _message, _status) -> None:
    assert issubclass(cls, ProviderError)
    assert not issubclass(cls, FakeLLMError)


def test_harness_errors_are_caught_by_their_builtin_families() -> None:
    with pytest.raises(TypeError):
        raise InvalidScript([ScriptProblem("x", 1, "bad")])
    with pytest.raises(AssertionError):
        raise UnusedTurns("left over")
    with pytest.raises(OSError, match=r"^blocked 8\.8\.8\.8:53$"):
        raise NetworkBlocked("blocked 8.8.8.8:53")


@pytest.mark.parametrize(("cls", "_message", "_status"), PROVIDER_DEFAULTS)
def test_provider_errors_are_not_os_errors(cls, _message, _status) -> None:
    # The SDKs' errors are not OSError/TimeoutError/ConnectionError either:
    # LangGraph's default retry policy gives up on an OSError at once.
    assert not issubclass(cls, OSError)


# --- ScriptProblem and InvalidScript -------------------------------------------------


def test_script_problem_str() -> None:
    assert str(ScriptProblem("turns[2].delay", -1, "bad delay")) == (
        "turns[2].delay: bad delay (got -1)"
    )
    assert str(ScriptProblem("", None, "nothing here")) == ("<script>: nothing here (got None)")


def test_script_problem_clips_long_values_to_80_characters() -> None:
    value = "x" * 100  # repr is 102 characters
    text = str(ScriptProblem("text", value, "too long"))
    assert text == "text: too long (got '" + "x" * 76 + "...)"
    exactly = "y" * 78  # repr is exactly 80 characters: kept whole
    assert str(ScriptProblem("t", exactly, "m")) == f"t: m (got {exactly!r})"


def test_script_problem_is_frozen() -> None:
    problem = ScriptProblem("a", 1, "m")
    with pytest.raises(AttributeError):
        problem.path = "b"  # type: ignore[misc]


def test_invalid_script_one_problem() -> None:
    problem = ScriptProblem("turns[0].delay", -1, "delay must be >= 0")
    err = InvalidScript([problem])
    assert isinstance(err, TypeError)
    assert str(err) == "invalid script: turns[0].delay: delay must be >= 0 (got -1)"
    assert err.problems == (problem,)
    assert err.source == ""


def test_invalid_script_one_problem_with_source() -> None:
    err = InvalidScript([ScriptProblem("", "x", "bad")], source="flowers.yaml")
    assert str(err) == "invalid script in flowers.yaml: <script>: bad (got 'x')"
    assert err.source == "flowers.yaml"


def test_invalid_script_several_problems() -> None:
    problems = [ScriptProblem("a", 1, "bad"), ScriptProblem("", None, "worse")]
    err = InvalidScript(problems, source="x.yaml")
    assert str(err) == (
        "invalid script in x.yaml: 2 problems\n  - a: bad (got 1)\n  - <script>: worse (got None)"
    )
    assert err.problems == tuple(problems)
    no_source = InvalidScript(problems)
    assert str(no_source) == (
        "invalid script: 2 problems\n  - a: bad (got 1)\n  - <script>: worse (got None)"
    )


def test_invalid_script_pickles() -> None:
    err = InvalidScript([ScriptProblem("a", 1, "bad")], source="x.yaml")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err)
    assert back.problems == err.problems
    assert back.source == "x.yaml"


def test_harness_errors_carry_their_message() -> None:
    assert str(UnexpectedCall("model called 3 times")) == "model called 3 times"
    assert str(UnknownToolError("no tool 'x'")) == "no tool 'x'"
    assert str(DeadlockError("stuck")) == "stuck"
