"""The HTML timeline in a real headless browser, and the Chrome trace export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fakellm import FakeChatModel, Recorder, Turn, run_scenario, virtual_time

STREAMS = 50


@pytest.fixture(scope="module")
def fifty_streams():
    rec = Recorder()
    model = FakeChatModel(
        script=[
            Turn(
                f"stream {i} says 你好 🌹 hello",
                chunks="words",
                first_token_delay=0.01 * i,
                delay=0.05,
            )
            for i in range(STREAMS)
        ]
    )

    def stream(i: int):
        async def go():
            return [c async for c in model.astream(f"q{i}", config={"callbacks": [rec]})]

        return go

    run_scenario(*(stream(i) for i in range(STREAMS)))
    return rec.events


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [browser, *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


def test_html_is_one_self_contained_file(fifty_streams, tmp_path):
    html = fifty_streams.to_html(tmp_path / "t.html", title="fifty <streams>")
    assert (tmp_path / "t.html").read_text(encoding="utf-8") == html
    # No network: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html
    assert "@import" not in html
    assert "fifty &lt;streams&gt;" in html
    assert html.count('class="lane"') == STREAMS
    assert "token &#x27;你好 &#x27;" in html


def test_the_html_timeline_renders_every_lane_in_headless_chromium(fifty_streams, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium or Chrome on PATH (CI installs Debian's chromium in .ci/run)")
    page = tmp_path / "timeline.html"
    fifty_streams.to_html(page, title="50 streams")
    dom = _chromium(browser, tmp_path / "profile-dom", "--dump-dom", page.as_uri()).stdout
    lanes = re.findall(r'<div class="lane" data-run="(r\d+)"', dom)
    assert sorted(lanes, key=lambda s: int(s[1:])) == [f"r{i}" for i in range(1, STREAMS + 1)]
    assert 'id="zoom">1.0x<' in dom
    zoomed = _chromium(browser, tmp_path / "profile-zoom", "--dump-dom", page.as_uri() + "#zoom=4")
    assert 'id="zoom">4.0x<' in zoomed.stdout  # the inline script ran and zoomed
    assert 'id="lanes" class="time" style="--zoom: 4;"' in zoomed.stdout
    # Fifty streams at distinct instants: the time axis; a graph whose events
    # mostly share instants starts on the event-order axis instead.
    assert 'id="axis">axis: time<' in dom
    shot = Path(__file__).parent.parent.parent / "build" / "timeline-50-streams.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    _chromium(
        browser,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1400,1100",
        page.as_uri(),
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chrome_trace_has_the_formats_required_fields(fifty_streams, tmp_path):
    trace = fifty_streams.to_chrome_trace(tmp_path / "trace.json")
    assert json.loads((tmp_path / "trace.json").read_text(encoding="utf-8")) == trace
    events = trace["traceEvents"]
    required = {
        "X": {"name", "ph", "ts", "dur", "pid", "tid"},
        "i": {"name", "ph", "ts", "pid", "tid", "s"},
    }
    required["M"] = {"name", "ph", "pid", "tid", "args"}
    for ev in events:
        assert required[ev["ph"]] <= set(ev), ev
        if ev["ph"] != "M":
            assert isinstance(ev["ts"], float | int)
            assert ev["ts"] >= 0
    complete = [ev for ev in events if ev["ph"] == "X"]
    assert len(complete) == STREAMS
    first = min(complete, key=lambda ev: ev["tid"])
    # Stream 0: its first token after 0 s, then 5 more words 0.05 s apart.
    assert (first["ts"], first["dur"], first["args"]["status"]) == (0.0, 250000.0, "ok")
    assert first["args"]["text"] == "stream 0 says 你好 🌹 hello"
    tokens = [ev for ev in events if ev["ph"] == "i" and ev["tid"] == first["tid"]]
    assert [ev["ts"] for ev in tokens] == [0.0, 50000.0, 100000.0, 150000.0, 200000.0, 250000.0]
    assert {ev["name"] for ev in events if ev["ph"] == "M"} == {
        "process_name",
        "thread_name",
        "thread_sort_index",
    }


def test_runs_that_take_no_time_start_on_the_event_order_axis():
    rec = Recorder()
    model = FakeChatModel(script=["a b", "c"])
    with virtual_time():  # no scripted delays: every run takes 0 s
        model.invoke("1", config={"callbacks": [rec]})
        model.invoke("2", config={"callbacks": [rec]})
    html = rec.events.to_html()
    assert '<div id="lanes" class="order">' in html
    assert 'id="axis">axis: event order<' in html
    # Both axes are in the page: run 2 sits at the end of the event order.
    assert "--tl:0.0000%;--ol:66.6667%;--tw:0.0000%;--ow:33.3333%" in html
