"""Hypothesis settings shared by the property tests: deterministic and small.

``derandomize`` makes every run draw the same examples (no flaky suite, no
``.hypothesis`` database needed); ``deadline=None`` because an example's wall
time is not what these tests are about.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

FAST = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: For tests that must find a bug: enough examples to find it, same ones every run.
HUNT = settings(FAST, max_examples=200)
