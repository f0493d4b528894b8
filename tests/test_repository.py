"""The repository stands on its own: nothing in it cites files outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Design notes the maintainers keep outside the repository; a reader cannot open them.
_OUTSIDE = re.compile(
    r"\b(?:FACTS|ARCHITECTURE|STYLE|SEED)(?:\.md)?\s+(?:section|§)|"
    r"\b(?:FACTS|ARCHITECTURE|STYLE|SEED)\.md\b|shared/(?:design|seeds)\b"
)


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()
        return [ROOT / name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist)
        return [p for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]


def test_nothing_cites_files_outside_the_repository() -> None:
    hits = []
    for path in _tracked_files():
        if path == Path(__file__) or path.suffix in {".png", ".whl", ".gz"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        hits += [
            f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m[0]}"
            for m in _OUTSIDE.finditer(text)
        ]
    assert hits == []
