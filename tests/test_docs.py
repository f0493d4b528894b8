"""Every sample in docs/ runs, so the user guide cannot silently rot.

The conventions:

* A ```python block runs with ``exec``; the blocks of one page run in order in
  one namespace, in a scratch directory that holds the page's named files.
* A ```python block whose first line is ``# test_<name>.py`` (or ``# conftest.py``)
  is a file of a user's test suite: it is written to a ``pytester`` directory and,
  for a test file, run with pytest. HTML comments on the lines right above the
  fence say what pytest must report, and stay out of what a reader sees:
  ``<!-- expect: passed=1 errors=1 -->`` (required, the keywords of
  ``assert_outcomes``), ``<!-- output: <fnmatch pattern> -->`` (lines that must
  appear, in order) and ``<!-- args: <pytest arguments> -->``. Later blocks may
  import it. Its name must be unique among the pages and this suite's test modules.
* A ```ini block that starts with ``[pytest]`` becomes the suite's pytest.ini.
* A ```yaml (or ```json) block is a script: it must load with fakellm's loader.
  A first line ``# file: NAME`` also writes it to the scratch directory; a first
  line ``# not a script`` exempts it.
* A ```console block holds ``$ fakellm ...`` commands, each followed by its exact
  output (a ``...`` line matches any lines); a trailing ``# exit N`` is the
  expected exit status (default 0). It runs in-process (``fakellm._cli.main``).
* Other blocks (```bash, ```text, ```toml) are not run.

Reference tables in docs/scripts.md and docs/getting-started.md must list
exactly the fields of the pydantic models they document.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hypothesis  # noqa: F401  (kept imported: pytester would re-import it on every run)
import pytest
from langchain_core.language_models import BaseChatModel, BaseLLM

import fakellm
from fakellm import (
    FakeChatModel,
    FakeLLM,
    Rule,
    Script,
    ToolCall,
    Turn,
    Usage,
    assertions,
    fuzz,
    strategies,
)
from fakellm._cli import main as cli_main
from fakellm._script import Chunk, parse_script_text

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))

_FENCE = re.compile(r"^( *)```([\w-]*)[^\n]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
_TEST_FILE = re.compile(r"^# ((?:test_\w+|conftest)\.py)$")
_FILE = re.compile(r"^# file: (\S+)$")
_HEADER = re.compile(r"^ *<!-- (expect|output|args): ?(.*) -->$")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The plugins a user's suite has (fakellm's loads through its entry point in real
# use). Autoloading is off in these runs: pytester forgets what each run imported,
# so every installed plugin (langsmith, ...) would be imported and rewritten anew,
# and unraisableexception's five gc.collect() calls cost ~0.7 s a run here.
_PLUGINS = (
    *("-p", "fakellm.fixtures", "-p", "pytest_asyncio.plugin"),
    *("-p", "_hypothesis_pytestplugin", "-p", "no:cacheprovider", "-p", "no:unraisableexception"),
)


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    body: str
    line: int
    header: tuple[tuple[str, str], ...] = ()

    @property
    def first(self) -> str:
        return self.body.split("\n", 1)[0].strip()

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    text = (DOCS / page).read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        out.append(Block(page, m[2], textwrap.dedent(m[3]), line, _header_above(text, m.start())))
    return out


def _header_above(text: str, start: int) -> tuple[tuple[str, str], ...]:
    """The ``<!-- expect/output/args: ... -->`` lines right above a fence, in order."""
    found: list[tuple[str, str]] = []
    for line in reversed(text[:start].split("\n")[:-1]):
        m = _HEADER.match(line)
        if not m:
            break
        found.append((m[1], m[2]))
    return tuple(reversed(found))


def _named_files(page_blocks: list[Block]) -> Iterator[tuple[str, str]]:
    for b in page_blocks:
        m = _FILE.match(b.first)
        if m and b.lang in ("yaml", "json"):
            yield m[1], b.body


def _check_script_block(block: Block) -> None:
    comments = [line for line in block.body.splitlines() if line.startswith("#")]
    if any(line.startswith("# not a script") for line in comments):
        return
    m = _FILE.match(block.first)
    source = m[1] if m else block.where
    parse_script_text(block.body, source=source, json_only=block.lang == "json")


def _run_test_file(pytester: pytest.Pytester, block: Block) -> None:
    name = _TEST_FILE.match(block.first)[1]  # type: ignore[index]
    lines = block.body.splitlines()[1:]
    header: dict[str, list[str]] = {"expect": [], "output": [], "args": []}
    for key, value in block.header:
        header[key].append(value)
    (pytester.path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if name == "conftest.py":
        return
    assert header["expect"], f"{block.where}: a test file needs '<!-- expect: ... -->' above it"
    args = [a for line in header["args"] for a in shlex.split(line)]
    result = pytester.runpytest(name, *_PLUGINS, *args)
    outcomes = {k: int(v) for k, v in (kv.split("=") for kv in header["expect"][0].split())}
    try:
        result.assert_outcomes(**outcomes)
        if header["output"]:
            result.stdout.fnmatch_lines(header["output"], consecutive=False)
    except (AssertionError, pytest.fail.Exception) as exc:
        raise AssertionError(f"{block.where}: {name} did not run as documented") from exc


def _match_output(expected: list[str], actual: list[str], where: str) -> None:
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected
    )
    text = "".join(line + "\n" for line in actual)
    assert re.fullmatch(pattern, text), (
        f"{where}: output differs.\nExpected:\n{chr(10).join(expected)}\nActual:\n{text}"
    )


def _run_console(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    commands: list[tuple[str, list[str]]] = []
    for line in block.body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            assert commands, f"{block.where}: output before the first '$ ' command"
            commands[-1][1].append(line)
    for command, expected in commands:
        code, _, comment = command.partition("  # exit ")
        argv = shlex.split(code)
        assert argv[0] == "fakellm", f"{block.where}: only fakellm commands are checked"
        capsys.readouterr()
        try:
            status = cli_main(argv[1:])
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code
        out, err = capsys.readouterr()
        assert status == int(comment or 0), f"{block.where}: {code!r} exited with {status}"
        _match_output(expected, (out + err).splitlines(), f"{block.where}: {code!r}")


def _stay_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in below fakellm's network guard: the samples of the guard must not
    reach the network even if the guard were broken (loopback and Unix sockets pass)."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            raise socket.gaierror(f"the docs' samples stay offline (lookup of {host!r})")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    def connect(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise ConnectionRefusedError(f"the docs' samples stay offline ({address!r})")
        real_connect(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket.socket, "sendto", connect)


@pytest.mark.parametrize("page", PAGES)
def test_page_samples_run(
    page: str,
    pytester: pytest.Pytester,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    _stay_offline(monkeypatch)
    pytester.syspathinsert()  # samples may import the page's test files
    page_blocks = blocks(page)
    for name, body in _named_files(page_blocks):
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    namespace: dict[str, object] = {"__name__": f"docs_{page[:-3].replace('-', '_')}"}
    for block in page_blocks:
        if block.lang == "python" and _TEST_FILE.match(block.first):
            _run_test_file(pytester, block)
        elif block.lang == "python":
            # Padded so that tracebacks show the line numbers of the page.
            code = "\n" * block.line + block.body
            exec(compile(code, f"docs/{page}", "exec"), namespace)
        elif block.lang == "ini" and block.first == "[pytest]":
            (pytester.path / "pytest.ini").write_text(block.body, encoding="utf-8")
        elif block.lang in ("yaml", "json"):
            _check_script_block(block)
        elif block.lang == "console":
            _run_console(block, capsys)
        else:
            assert block.lang in ("bash", "text", "toml", "ini"), f"{block.where}: {block.lang!r}"


def test_every_page_has_checked_samples_and_is_linked() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page != "index.md":
            assert f"({page})" in index, f"docs/index.md does not link {page}"
    for page in PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([\w-]+\.md)(?:#([\w-]+))?\)", text):
            assert (DOCS / target).is_file(), f"docs/{page} links to a missing {target}"
            if anchor:
                assert anchor in _anchors(target), f"docs/{page} links to a missing #{anchor}"
    for page in PAGES:
        fences = len(re.findall(r"^ *```", (DOCS / page).read_text(encoding="utf-8"), re.M))
        assert fences == 2 * len(blocks(page)), f"docs/{page}: a code fence is not closed"


def test_samples_carry_no_test_harness_lines() -> None:
    # What pytest must report lives in HTML comments above a sample, not in it.
    stray = [
        f"{b.where}: {line}"
        for p in PAGES
        for b in blocks(p)
        for line in b.body.splitlines()
        if re.match(r"# (expect|output|args):", line)
    ]
    assert stray == []


def test_the_pages_test_files_have_names_of_their_own() -> None:
    # pytest imports a test file under its basename: one that this suite's own
    # modules already use would clash when both run in one process.
    names = [m[1] for p in PAGES for b in blocks(p) if (m := _TEST_FILE.match(b.first))]
    suite = {p.name for p in DOCS.parent.glob("*/**/test_*.py")}
    assert len(names) == len(set(names))
    assert not set(names) & suite


def _anchors(page: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = (DOCS / page).read_text(encoding="utf-8")
    text = _FENCE.sub("", text)
    headings = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _table_fields(page: str, heading: str) -> set[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    section = re.split(r"\n#{1,4} ", section, maxsplit=1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.M))


@pytest.mark.parametrize(
    ("heading", "model"),
    [
        ("### Script fields", Script),
        ("### Turn fields", Turn),
        ("### Chunk fields", Chunk),
        ("### ToolCall fields", ToolCall),
        ("### Usage fields", Usage),
        ("### Rule fields", Rule),
    ],
)
def test_the_yaml_reference_lists_every_field(heading: str, model: type) -> None:
    assert _table_fields("scripts.md", heading) == set(model.model_fields)


@pytest.mark.parametrize("model", [FakeChatModel, FakeLLM])
def test_the_settings_table_lists_every_setting(model: type) -> None:
    documented = _table_fields("getting-started.md", "## Model settings")
    base = BaseChatModel if model is FakeChatModel else BaseLLM
    own = set(model.model_fields) - set(base.model_fields)
    if model is FakeLLM:
        documented -= {"stream_usage"}  # FakeChatModel only; the table says so
    assert documented == own


def test_the_public_api_is_what_the_guide_imports() -> None:
    imported: set[str] = set()
    for page in PAGES:
        for b in blocks(page):
            for group, line in re.findall(
                r"^from fakellm import (?:\(([^)]*)\)|([^\n]+))", b.body, re.M
            ):
                names = re.sub(r"#[^\n]*", "", group or line)
                imported |= {n.strip() for n in names.split(",") if n.strip()}
    assert {"FakeChatModel", "Recorder", "run_scenario", "strategies"} <= imported
    assert imported <= {*fakellm.__all__, "assertions", "strategies", "fuzz"}


@pytest.mark.parametrize("module", [fakellm, fakellm.errors, assertions, strategies, fuzz])
def test_every_public_name_is_documented(module: object) -> None:
    text = "".join((DOCS / p).read_text(encoding="utf-8") for p in PAGES)
    missing = [n for n in module.__all__ if not re.search(rf"\b{n}\b", text)]  # type: ignore[attr-defined]
    assert missing == []


def test_the_cli_json_schema_page_matches_the_trace() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", text.split("### The `--json` trace")[1], re.M))
    from fakellm._cli import TRACE_SCHEMA

    keys = set(re.findall(r"^  (\w+) ", textwrap.dedent(TRACE_SCHEMA), re.M))
    assert documented == keys
    assert json.loads(json.dumps(sorted(keys)))  # plain names
