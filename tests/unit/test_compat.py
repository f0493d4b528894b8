"""Pins every private name of another package that fakellm uses (all in fakellm._compat).

Each name the fence exports gets a test here that fails, naming it, when an
upgrade moves or changes it.
"""

from __future__ import annotations

import fakellm._compat as compat


def test_every_exported_name_exists() -> None:
    missing = [name for name in compat.__all__ if not hasattr(compat, name)]
    assert missing == []


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


def test_init_chat_model_classes_lists_openai_and_anthropic() -> None:
    table = compat.init_chat_model_classes()
    assert ("openai", "langchain_openai", "ChatOpenAI") in table
    assert ("anthropic", "langchain_anthropic", "ChatAnthropic") in table
