"""langchain-tests' standard suites, run against FakeChatModel.

Every test that can run offline is switched on: tool calling, tool choice,
structured output (tool calling and JSON schema), JSON mode and usage
metadata. The multimodal tests are switched off: they download public images,
PDFs and audio over the network, which no fakellm test may touch.
"""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from fakellm import FakeChatModel, Script
from fakellm._script import Rule

from .responder import respond


def _params() -> dict[str, Any]:
    return {"script": Script(rules=[Rule(responder=respond)]), "model": "fake-standard-1"}


class _Switches:
    @property
    def chat_model_class(self) -> type[FakeChatModel]:
        return FakeChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return _params()

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "fake-standard-2"

    # Multimodal tests fetch public URLs with httpx: off, never touch the network.
    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False

    @property
    def enable_vcr_tests(self) -> bool:
        return False


class TestFakeChatModelUnit(_Switches, ChatModelUnitTests):
    pass


class TestFakeChatModelIntegration(_Switches, ChatModelIntegrationTests):
    pass


class TestFakeChatModelJsonSchema(_Switches, ChatModelIntegrationTests):
    """The structured-output tests again, through ``method="json_schema"``."""

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        return {"method": "json_schema"}
