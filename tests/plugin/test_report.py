"""--fakellm-report=DIR: an HTML timeline for each failing test that recorded events."""

from __future__ import annotations

pytest_plugins = ["pytester"]

SUITE = """
from fakellm import FakeChatModel

def test_fails(llm_recorder):
    FakeChatModel(script=["Hello!"]).invoke("Hi", config={"callbacks": [llm_recorder]})
    assert False, "the app is wrong"

def test_passes(llm_recorder):
    FakeChatModel(script=["Hello!"]).invoke("Hi", config={"callbacks": [llm_recorder]})

def test_fails_without_events(llm_recorder):
    assert False
"""


def test_report_writes_one_page_per_failing_test_with_events(pytester):
    pytester.makepyfile(test_app=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--fakellm-report=reports")
    result.assert_outcomes(failed=2, passed=1)
    pages = sorted(p.name for p in (pytester.path / "reports").iterdir())
    assert pages == ["test_app.py__test_fails.html"]
    html = (pytester.path / "reports" / pages[0]).read_text(encoding="utf-8")
    assert "<title>test_app.py::test_fails</title>" in html
    assert html.count('class="lane"') == 1
    result.stdout.fnmatch_lines(
        ["*- fakellm report -*", "reports/test_app.py__test_fails.html"], consecutive=False
    )
    # A plain assert is not a fakellm assertion: the plugin's timeline still shows.
    result.stdout.fnmatch_lines(["*- fakellm timeline -*"])


def test_no_report_without_the_option(pytester):
    pytester.makepyfile(test_app=SUITE)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=2, passed=1)
    assert not (pytester.path / "reports").exists()
