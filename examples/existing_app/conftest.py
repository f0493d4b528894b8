"""The app reads its API key from the environment when it is imported, as apps do.

A dummy key lets it import; no request ever leaves the machine (fakellm's
network guard is on in every test that uses it, and the recording tests talk
to a local server on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from existing_app.provider_server import AnthropicServer, OpenAIServer

os.environ.setdefault("OPENAI_API_KEY", "sk-dummy-key-for-tests")


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A local OpenAI-compatible server on 127.0.0.1 (never any other address), of its own
    per test, so a test can stop it and prove that replay needs no server."""
    with _local_server() as server:
        yield OpenAIServer(server)


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    """A local Anthropic-compatible server on 127.0.0.1, of its own per test."""
    with _local_server() as server:
        yield AnthropicServer(server)


@contextlib.contextmanager
def _local_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1")
    server.start()
    try:
        yield server
    finally:
        if server.is_running():
            server.stop()
