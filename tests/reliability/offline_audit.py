"""Run as ``python -m tests.reliability.offline_audit``: prints, as JSON, every socket
audit event raised while importing each fakellm module and while playing a
representative workload (sync and async models, a chain, a tool, the Recorder,
assertions, virtual time, a bundled YAML scenario)."""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

#: (phase, event name, detail, top-level package of the code that made the call)
events: list[tuple[str, str, str, str]] = []
phase = ["import"]


def _detail(name: str, args: tuple[Any, ...]) -> str:
    if name == "socket.__new__":
        try:
            return socket.AddressFamily(args[1]).name
        except (TypeError, ValueError, IndexError):
            return repr(args[1:])
    return repr(args[1:])[:80]


def _caller() -> str:
    """The package whose code asked for the socket (socket.py itself skipped)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") in ("socket", __name__):
        frame = frame.f_back  # type: ignore[assignment]
    return "" if frame is None else str(frame.f_globals.get("__name__", "")).split(".")[0]


def _hook(name: str, args: tuple[Any, ...]) -> None:
    if name.startswith("socket."):
        events.append((phase[0], name, _detail(name, args), _caller()))


def main() -> None:
    sys.addaudithook(_hook)
    import importlib
    import pkgutil

    import fakellm

    for mod in pkgutil.walk_packages(fakellm.__path__, "fakellm."):
        if not mod.name.endswith("__main__"):  # that one runs the CLI
            importlib.import_module(mod.name)
    phase[0] = "workload"
    from tests.reliability import scenario

    scenario.run()
    _sync_workload()
    sys.stdout.write(json.dumps(events))


def _sync_workload() -> None:
    from importlib.resources import files

    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from fakellm import FakeChatModel, FakeLLM, Recorder, Turn, load_script, virtual_time
    from fakellm.assertions import assert_well_formed

    rec = Recorder()
    with virtual_time():
        model = FakeChatModel(script=[Turn("a b c", delay=0.5), "d e"])
        chain = ChatPromptTemplate.from_template("{q}") | model | StrOutputParser()
        chain.invoke({"q": "hi"}, config={"callbacks": [rec]})
        list(model.stream("again", config={"callbacks": [rec]}))
        FakeLLM(script=["x y"]).invoke("hi", config={"callbacks": [rec]})
    assert_well_formed(rec.events)
    for entry in files("fakellm.scenarios").iterdir():
        if entry.name.endswith(".yaml"):
            load_script(str(entry))


if __name__ == "__main__":
    main()
