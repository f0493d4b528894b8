"""The scenario players behind ``fakellm demo``: the seed tutorial's S2-S7, offline.

Each player runs one of the tutorial's programs with :class:`~fakellm.FakeLLM` or
:class:`~fakellm.FakeChatModel` in place of OpenAI, on virtual time (so the
scripted and the tutorial's own ``asyncio.sleep`` delays cost no wall time), with
a :class:`~fakellm.Recorder` attached. It returns what the program printed plus
the recording; :func:`render` turns that into the demo's text, which is the same
on every run except the wall-time lines.

The bundled scripts (``fakellm/scenarios/``): S3 ``callbacks.yaml``, S4
``file_log.yaml``, S5 ``flower_shop.yaml``, S6 ``token_counter.yaml``, S7
``concurrent_calls.yaml``. S2 calls no model.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackHandler,
    BaseCallbackHandler,
    StdOutCallbackHandler,
    get_usage_metadata_callback,
)
from langchain_core.messages import HumanMessage
from langchain_core.outputs import LLMResult
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableLambda

from fakellm._clock import run_scenario, virtual_time
from fakellm._events import EventLog
from fakellm._model import FakeChatModel, FakeLLM
from fakellm._recorder import Recorder
from fakellm._script import Script, parse_script_text

__all__ = [
    "SCENARIOS",
    "Outcome",
    "Scenario",
    "bundled_names",
    "bundled_script",
    "describe",
    "render",
]

#: The completion model name the tutorial's S3-S4 and S6-S7 would use today.
COMPLETION_MODEL = "gpt-3.5-turbo-instruct"
FLOWER_PROMPT = "Which flowers suit a birthday? Just 3, under 50 characters."
SISTER_PROMPT = "What colour flowers does my sister like?"
ROUNDS = (
    "My sister's birthday is tomorrow and I need a birthday bouquet.",
    "She likes pink roses; the colour is pink.",
    "I'm back. Do you remember why I came to buy flowers yesterday?",
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def bundled_names() -> list[str]:
    """Names (without ``.yaml``) of the scripts shipped in ``fakellm/scenarios``."""
    root = resources.files("fakellm.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def bundled_script(name: str) -> Script:
    """Load a bundled script by name (``"flower_shop"`` or ``"flower_shop.yaml"``)."""
    file = name if name.endswith(".yaml") else f"{name}.yaml"
    text = resources.files("fakellm.scenarios").joinpath(file).read_text(encoding="utf-8")
    return parse_script_text(text, source=file)


@dataclass
class Outcome:
    """What one scenario produced.

    Attributes:
        output: the lines the tutorial's program printed (ANSI codes removed).
        log: everything the request-level Recorder saw.
        virtual_time: virtual seconds the scenario took.
        totals: token-total lines from LangChain's own counters, if any.
    """

    output: list[str]
    log: EventLog
    virtual_time: float
    totals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    """One demo scenario: a seed example, what it needs, and how to play it.

    ``test`` is the example test that holds it (in the repository's
    ``examples/seed/``), ``script`` the bundled script its model plays, if any.
    """

    key: str
    title: str
    play: Callable[[], Outcome]
    test: str
    script: str | None
    needs: Mapping[str, str] = field(default_factory=dict)  # import name -> pip package

    def missing(self) -> list[str]:
        """The pip packages this scenario needs that are not installed."""
        return [pkg for module, pkg in self.needs.items() if find_spec(module) is None]


@contextlib.contextmanager
def _captured() -> Iterator[list[str]]:
    """Capture stdout (also of executor threads) into the yielded list of lines.

    The tutorial's programs print; the demo shows what they printed, indented
    and without the ANSI codes LangChain's StdOutCallbackHandler adds. Warnings
    (LangChain's deprecation notices for the tutorial's classes) are silenced
    here, locally, so they do not drown the output.
    """
    lines: list[str] = []
    buffer = io.StringIO()
    # record=True: filters that imports add inside the block (langchain_classic
    # re-enables its deprecation warnings when imported) still cannot print.
    with warnings.catch_warnings(record=True), contextlib.redirect_stdout(buffer):
        warnings.simplefilter("ignore")
        yield lines
    lines.extend(tidy(_ANSI.sub("", buffer.getvalue())))


def tidy(text: str) -> list[str]:
    """Lines of ``text`` without trailing spaces, outer blank lines or runs of blank lines."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def _wrapped(text: str, indent: str = "  ", width: int = 96) -> str:
    """``text`` indented, each line wrapped to ``width`` (long prompts stay readable)."""
    return "\n".join(
        textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent) or indent
        for line in text.splitlines()
    )


def _usage_line(usage: Mapping[str, Any]) -> str:
    return (
        f"input={usage['input_tokens']} output={usage['output_tokens']} "
        f"total={usage['total_tokens']}"
    )


# -- S2 ------------------------------------------------------------------------------------


def play_s2() -> Outcome:
    """S2: ``compute`` (0.5 s) and ``another_task`` (1 s) as concurrent tasks.

    The two coroutines are wrapped in ``RunnableLambda`` so the Recorder sees
    them as runs; the prints carry the virtual time they happened at.
    """
    rec = Recorder()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        def say(text: str) -> None:
            print(f"[{loop.time() - t0:5.2f} s] {text}")

        async def compute(_: object) -> int:
            say("Starting compute...")
            await asyncio.sleep(0.5)  # an async operation
            result = 3 + 4
            say("Finished compute...")
            return result

        async def another_task(_: object) -> None:
            say("Starting another task...")
            await asyncio.sleep(1)
            say("Finished another task...")

        config: Any = {"callbacks": [rec]}
        say("Main starts...")
        task1 = asyncio.create_task(RunnableLambda(compute, name="compute").ainvoke(3, config))
        task2 = asyncio.create_task(
            RunnableLambda(another_task, name="another_task").ainvoke(None, config)
        )
        await task1
        await task2
        say("Main ends...")

    with _captured() as out:
        result = run_scenario(main(), freeze=False)
    return Outcome(out, rec.events, result.elapsed)


# -- S3 ------------------------------------------------------------------------------------


def play_s3() -> Outcome:
    """S3: constructor callbacks see only their object's runs; request ones, every child."""
    ctor, rec = Recorder(), Recorder()
    llm = FakeLLM(script=bundled_script("callbacks"), model=COMPLETION_MODEL, callbacks=[ctor])
    chain = PromptTemplate.from_template("1 + {number} = ") | llm
    with _captured() as out, virtual_time(freeze=False) as vt:
        answer = chain.invoke({"number": 2}, config={"callbacks": [StdOutCallbackHandler(), rec]})
        print(f"answer: {answer}")
        print("constructor callbacks, FakeLLM(callbacks=[...]), saw:")
        print(_wrapped(", ".join(ctor.events.shorts())))
        print("request callbacks, chain.invoke(..., config={'callbacks': [...]}), saw:")
        print(_wrapped(", ".join(rec.events.shorts())))
        print(
            "(verbose=True on a chain adds a StdOutCallbackHandler as a constructor callback; S4)"
        )
    return Outcome(out, rec.events, vt.elapsed)


# -- S4 ------------------------------------------------------------------------------------


def play_s4() -> Outcome:
    """S4: ``LLMChain("1 + {number} = ", callbacks=[FileCallbackHandler], verbose=True)``."""
    rec = Recorder()
    with _captured() as out, tempfile.TemporaryDirectory(prefix="fakellm-demo-") as tmp:
        from langchain_classic.chains import LLMChain
        from langchain_core.callbacks import FileCallbackHandler

        llm = FakeLLM(script=bundled_script("file_log"), model=COMPLETION_MODEL)
        prompt = PromptTemplate.from_template("1 + {number} = ")
        logfile = Path(tmp) / "output.log"
        with virtual_time(freeze=False) as vt, FileCallbackHandler(str(logfile)) as handler:
            # verbose=True prints to stdout; the FileCallbackHandler writes output.log.
            chain = LLMChain(llm=llm, prompt=prompt, callbacks=[handler], verbose=True)
            answer = chain.run(number=2, callbacks=[rec])
        print(f"answer: {answer}")
        print("output.log:")
        print("\n".join(f"  {line}" for line in tidy(logfile.read_text(encoding="utf-8"))))
    return Outcome(out, rec.events, vt.elapsed)


# -- S5 ------------------------------------------------------------------------------------


class FlowerShopSyncHandler(BaseCallbackHandler):
    """The tutorial's sync handler: prints every streamed token."""

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
        """Print the token as it arrives."""
        print(f"Fetching flower data: token: {token!r}")


class FlowerShopAsyncHandler(AsyncCallbackHandler):
    """The tutorial's async handler: awaits 0.5 s at the start and at the end."""

    async def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any
    ) -> None:
        """Simulate fetching data before the model answers."""
        print("Fetching flower data...")
        await asyncio.sleep(0.5)  # an async operation
        print("Flower data fetched. Making suggestions...")

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Simulate wrapping up after the answer."""
        print("Sorting the flower suggestions...")
        await asyncio.sleep(0.5)  # an async operation
        print("Have a nice day!")


def play_s5() -> Outcome:
    """S5: a streaming chat model with a sync token handler and an async start/end handler."""
    rec = Recorder()
    totals: list[str] = []

    async def main() -> None:
        flower_shop_chat = FakeChatModel(
            script=bundled_script("flower_shop"),
            model="gpt-4o-mini",
            max_tokens=100,
            streaming=True,
            callbacks=[FlowerShopSyncHandler(), FlowerShopAsyncHandler()],
        )
        with get_usage_metadata_callback() as cb:
            result = await flower_shop_chat.agenerate(
                [[HumanMessage(content=FLOWER_PROMPT)]], callbacks=[rec]
            )
        print(f"answer: {result.generations[0][0].text}")
        for name, usage in cb.usage_metadata.items():
            totals.append(f"get_usage_metadata_callback[{name}]: {_usage_line(usage)}")

    with _captured() as out:
        outcome = run_scenario(main(), freeze=False)
    return Outcome(out, rec.events, outcome.elapsed, totals)


# -- S6 ------------------------------------------------------------------------------------


def play_s6() -> Outcome:
    """S6: three rounds of a ConversationChain with buffer memory under get_openai_callback."""
    rec = Recorder()
    totals: list[str] = []
    with _captured() as out:
        from langchain_classic.chains import ConversationChain
        from langchain_classic.memory import ConversationBufferMemory
        from langchain_community.callbacks import get_openai_callback

        llm = FakeLLM(script=bundled_script("token_counter"), model=COMPLETION_MODEL)
        conversation = ConversationChain(llm=llm, memory=ConversationBufferMemory())
        labels = ("after round 1", "after round 2", "after round 3 (the next day)")
        with virtual_time(freeze=False) as vt, get_openai_callback() as cb:
            for i, (text, label) in enumerate(zip(ROUNDS, labels, strict=True), 1):
                config: Any = {"callbacks": [rec], "run_name": f"round {i}"}
                conversation.invoke({"input": text}, config=config)
                print(f"memory {label}:")
                print("\n".join(f"  {line}" for line in conversation.memory.buffer.splitlines()))
        print("prompt sent in round 3 (rounds 1-2 included by the memory):")
        print(_wrapped(llm.calls[2].prompt or ""))
        print(f"total tokens used: {cb.total_tokens}")
        totals.append(
            f"get_openai_callback: prompt={cb.prompt_tokens} completion={cb.completion_tokens} "
            f"total={cb.total_tokens} requests={cb.successful_requests}"
        )
    return Outcome(out, rec.events, vt.elapsed, totals)


# -- S7 ------------------------------------------------------------------------------------


def play_s7() -> Outcome:
    """S7: ``asyncio.gather`` of three ``agenerate`` calls inside one get_openai_callback."""
    rec = Recorder()
    totals: list[str] = []
    with _captured() as out:
        from langchain_community.callbacks import get_openai_callback

        llm = FakeLLM(script=bundled_script("concurrent_calls"), model=COMPLETION_MODEL)
        callbacks: list[BaseCallbackHandler] = [rec]

        async def additional_interactions() -> None:
            with get_openai_callback() as cb:
                await asyncio.gather(
                    *[llm.agenerate([SISTER_PROMPT], callbacks=callbacks) for _ in range(3)]
                )
            print(f"tokens used in the additional interactions: {cb.total_tokens}")
            per_call = [u["total_tokens"] for u in rec.events.usage_by_run().values()]
            print(f"per call: {per_call}; 3 x {per_call[0]} = {3 * per_call[0]}")
            totals.append(
                f"get_openai_callback: prompt={cb.prompt_tokens} "
                f"completion={cb.completion_tokens} total={cb.total_tokens} "
                f"requests={cb.successful_requests}"
            )

        outcome = run_scenario(additional_interactions(), freeze=False)
    return Outcome(out, rec.events, outcome.elapsed, totals)


_CLASSIC = {"langchain_classic": "langchain-classic"}
_COMMUNITY = {"langchain_community": "langchain-community"}

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "S2",
        "asyncio: two tasks interleave, decided by their delays",
        play_s2,
        "test_s2_asyncio.py",
        None,
    ),
    Scenario(
        "S3",
        "constructor callbacks vs request callbacks, StdOutCallbackHandler",
        play_s3,
        "test_s3_callback_handlers.py",
        "callbacks",
    ),
    Scenario(
        "S4",
        "LLMChain with FileCallbackHandler and verbose=True",
        play_s4,
        "test_s4_file_logging.py",
        "file_log",
        _CLASSIC,
    ),
    Scenario(
        "S5",
        "flower shop: sync token handler, async start/end handler",
        play_s5,
        "test_s5_flower_shop_handlers.py",
        "flower_shop",
    ),
    Scenario(
        "S6",
        "token counter: ConversationChain + ConversationBufferMemory, 3 rounds",
        play_s6,
        "test_s6_token_counter.py",
        "token_counter",
        {**_CLASSIC, **_COMMUNITY},
    ),
    Scenario(
        "S7",
        "token totals of 3 concurrent agenerate calls",
        play_s7,
        "test_s7_concurrent_tokens.py",
        "concurrent_calls",
        _COMMUNITY,
    ),
)

#: What the demo says before the first scenario, and after the last.
INTRODUCTION = (
    "fakellm demo: the six programs (S2-S7) of a LangChain tutorial's chapter on "
    "callbacks and token counting. The tutorial calls OpenAI; here each program runs "
    "offline against fakellm's scripted models, on virtual time, with a Recorder "
    "attached. For each: what the program printed, the callbacks the Recorder saw, "
    "the tokens counted and the time it took. The output is the same on every run "
    "but for the wall-time lines."
)
CLOSING = (
    "Each scenario is also a test in the fakellm repository (examples/seed/), and its "
    "replies a script (fakellm/scenarios/). Next: write your first test with the "
    "fake_llm fixture, as docs/getting-started.md shows; 'fakellm run SCRIPT' plays a "
    "script of your own."
)
WIDTH = 100


def describe(scenario: Scenario) -> list[str]:
    """Where a scenario lives: its example test and bundled script, one line each."""
    lines = [f"example test: examples/seed/{scenario.test}"]
    if scenario.script is None:
        lines.append("script: none (no model: plain asyncio tasks)")
    else:
        lines.append(
            f"script: fakellm/scenarios/{scenario.script}.yaml (fakellm run {scenario.script})"
        )
    return lines


# -- rendering -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """ANSI styling, or none: the demo's output is plain unless a terminal shows it."""

    colour: bool = False

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and text else text

    def heading(self, text: str) -> str:
        """A scenario's heading."""
        return self._wrap("1;36", text)

    def label(self, text: str) -> str:
        """A section label inside a scenario."""
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        """Lines that vary run to run (wall time)."""
        return self._wrap("2", text)

    def good(self, text: str) -> str:
        """Success."""
        return self._wrap("32", text)

    def bad(self, text: str) -> str:
        """Failure."""
        return self._wrap("31", text)

    def warn(self, text: str) -> str:
        """A skipped scenario."""
        return self._wrap("33", text)


def _timelines(log: EventLog) -> list[str]:
    """The log's timeline, or (when it would be wider than the demo's 100 columns)
    one timeline per top-level run, each with its own lanes."""
    whole = [f"  {line}".rstrip() for line in log.timeline().splitlines()]
    roots = log.roots()
    if max(map(len, whole), default=0) <= WIDTH or len(roots) < 2:
        return whole
    lines = []
    for root in roots:
        lines.append(f"  {root.name}:")
        lines.extend(
            f"    {line}".rstrip() for line in log.timeline(log.subtree(root)).splitlines()
        )
    return lines


def render(scenario: Scenario, outcome: Outcome, wall: float, style: Style) -> list[str]:
    """The demo's lines for one played scenario (the last one is its wall time)."""
    lines = [style.heading(f"== {scenario.key} {scenario.title} ==")]
    lines.extend(describe(scenario))
    lines.append(style.label("output:"))
    lines.extend(f"  {line}" if line else "" for line in outcome.output)
    lines.append(style.label("callback timeline (Recorder):"))
    lines.extend(_timelines(outcome.log))
    if any(run.type in ("llm", "chat_model") for run in outcome.log.runs()):
        lines.append(f"tokens (Recorder): {_usage_line(outcome.log.usage())}")
    lines.extend(outcome.totals)
    lines.append(f"virtual time: {outcome.virtual_time:.3f} s")
    lines.append(style.dim(f"wall time: {wall:.3f} s"))
    return lines


def play(
    scenarios: Sequence[Scenario],
    style: Style,
    emit: Callable[[str], None],
    progress: Callable[[str], None] | None = None,
) -> int:
    """Play ``scenarios`` in order, emitting their lines; returns how many were skipped.

    ``progress`` (on a terminal) shows which scenario is playing; it is cleared
    before that scenario's lines are emitted, so the two never mix.
    """
    skipped = 0
    virtual = 0.0
    started = time.perf_counter()
    for line in textwrap.wrap(INTRODUCTION, WIDTH - 4):
        emit(line)
    emit("")
    for i, scenario in enumerate(scenarios, 1):
        missing = scenario.missing()
        if missing:
            skipped += 1
            lines = [
                style.warn(
                    f"== {scenario.key} skipped: needs {', '.join(missing)} "
                    f'(pip install {" ".join(missing)}, or pip install -e ".[dev]") =='
                )
            ]
        else:
            if progress is not None:
                progress(f"[{i}/{len(scenarios)}] playing {scenario.key} {scenario.title}")
            t0 = time.perf_counter()
            outcome = scenario.play()
            wall = time.perf_counter() - t0
            virtual += outcome.virtual_time
            lines = render(scenario, outcome, wall, style)
            if progress is not None:
                progress("")
        for line in ([""] if i > 1 else []) + lines:
            emit(line)
    played = len(scenarios) - skipped
    emit("")
    emit(
        style.label(
            f"{played} scenario{'s' if played != 1 else ''} played offline"
            + (f", {skipped} skipped" if skipped else "")
            + f"; {virtual:.3f} s of virtual time in total"
        )
    )
    emit(style.dim(f"wall time in total: {time.perf_counter() - started:.3f} s"))
    emit("")
    for line in textwrap.wrap(CLOSING, WIDTH - 4):
        emit(line)
    return skipped
