"""App fixtures: the shop, built on a scripted model.

``fake_llm(...)`` without a script plays the test's ``@pytest.mark.fakellm``
script, so each test states what the model answers right above itself, and
these fixtures wire that model into the app the way production wires ChatOpenAI.
"""

from __future__ import annotations

import pytest

from fakellm import FakeChatModel, errors
from fakellm.fixtures import FakeLLMFactory
from flower_shop_app.app import FlowerShop

MODEL = "gpt-4o-mini"


@pytest.fixture
def model(fake_llm: FakeLLMFactory) -> FakeChatModel:
    """The chat model behind the shop: plays the test's marker script."""
    return fake_llm(model=MODEL)


@pytest.fixture
def shop(model: FakeChatModel) -> FlowerShop:
    """The shop, retrying rate limits as production does (there: openai.RateLimitError)."""
    return FlowerShop(model, retry_on=(errors.RateLimitError,))
