"""Loading the plugin costs a suite that never uses fakellm almost nothing: no
LangChain, no pydantic, no cassette machinery until a test asks for them."""

from __future__ import annotations

import json
import subprocess
import sys

from fakellm import _cassette, fixtures


def test_loading_the_plugin_imports_no_langchain_and_no_pydantic() -> None:
    code = (
        "import json, sys, pytest, fakellm.fixtures; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in "
        "('langchain_core', 'langchain', 'langgraph', 'pydantic', 'fakellm'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    loaded = json.loads(out)
    assert [m for m in loaded if not m.startswith("fakellm")] == []
    assert "fakellm._model" not in loaded
    assert "fakellm._cassette" not in loaded


def test_the_plugin_spells_the_record_modes_as_the_cassette_module_does() -> None:
    assert fixtures.RECORD_MODES == _cassette.RECORD_MODES
