"""Every page of a generated report in a real browser (headless Chromium, one process for
all pages): no console message, no network request, no script, and every chart drawn (its
screenshot is not blank).

Chromium missing or not starting fails the test under ``CI=true`` (``.ci/run`` installs
Debian's ``chromium``), and skips it elsewhere.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import Browser, BrowserError, decode_png, find_chromium, ink

WIDTH, HEIGHT = 1280, 900


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and no browser test possible: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vanta_box import home as homes
    from vanta_box.service import demo

    root = tmp_path_factory.mktemp("browser") / "demo"
    demo.run(homes.resolve(root), lambda _line: None)
    return root / "reports"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        _unavailable("no chromium on PATH (apt-get install chromium, or set VANTA_CHROMIUM)")
    assert binary is not None
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    try:
        b = Browser(binary, profile)
        b.call("Browser.getVersion", session=False)
        b.open_tab(WIDTH, HEIGHT)
    except (BrowserError, OSError) as exc:
        log = profile.with_suffix(".log")
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        _unavailable(f"chromium ({binary}) did not start: {exc}\n{tail}")
    yield b
    b.close()


_CHARTS = """JSON.stringify(Array.from(document.querySelectorAll('svg.chart')).map(e => {
  const r = e.getBoundingClientRect();
  return {id: e.id, x: r.left + window.scrollX, y: r.top + window.scrollY,
          w: r.width, h: r.height};
}))"""


def _evaluate(b: Browser, expression: str) -> object:
    result = b.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
    return result["result"].get("value")


def check_page(browser: Browser, page: Path, name: str) -> tuple[list[str], int]:
    """What is wrong with ``page`` in the browser, and how many charts were looked at."""
    import json

    html = page.read_text()
    problems: list[str] = []
    if ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\">") not in html:
        problems.append(f"{name}: no Content-Security-Policy meta")
    if "<script" in html.lower():
        problems.append(f"{name}: a <script> element")
    if re.search(r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//""", html):
        problems.append(f"{name}: an external URL")
    url = page.resolve().as_uri()
    browser.events.clear()
    browser.call("Page.navigate", {"url": url})
    browser.wait_for("Page.loadEventFired")
    scripts = _evaluate(browser, "document.scripts.length")
    expected = html.count('<svg class="chart"')
    boxes = json.loads(str(_evaluate(browser, _CHARTS)))
    _evaluate(browser, "0")  # a last round trip: events of the load are in by now
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent" and params["request"]["url"] != url:
            problems.append(f"{name}: requested {params['request']['url']}")
        elif method == "Runtime.consoleAPICalled":
            problems.append(f"{name}: console {params.get('type')}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            problems.append(f"{name}: exception {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            problems.append(f"{name}: {entry.get('level')}: {entry.get('text')}")
        elif method == "Network.loadingFailed":
            problems.append(f"{name}: loading failed: {params.get('errorText')}")
    if scripts != 0:
        problems.append(f"{name}: {scripts} script(s)")
    if len(boxes) != expected:
        problems.append(f"{name}: {len(boxes)} charts laid out, {expected} in the HTML")
    seen = 0
    for box in boxes:
        if box["w"] < 100 or box["h"] < 60:
            problems.append(f"{name}: chart {box['id']} is {box['w']}x{box['h']}")
            continue
        shot = browser.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": box["x"], "y": box["y"], "width": box["w"], "height": box["h"],
                     "scale": 0.5}})
        _w, _h, rows = decode_png(base64.b64decode(shot["data"]))
        share, colours = ink(rows)
        if share < 0.02 or colours < 3:
            problems.append(f"{name}: chart {box['id']} looks blank "
                            f"({share:.1%} inked, {colours} colours)")
        seen += 1
    return problems, seen


def test_every_page_renders_offline_with_its_charts(report: Path, browser: Browser) -> None:
    pages = sorted(report.rglob("*.html"))
    assert len(pages) >= 9  # overview, fee ledger, a vault, six followers
    problems: list[str] = []
    charts_seen = 0
    for page in pages:
        found, seen = check_page(browser, page, page.relative_to(report).as_posix())
        problems += found
        charts_seen += seen
    assert not problems, "\n".join(problems)
    assert charts_seen >= 4 + 4 * 6  # the vault's four, four per follower


def test_the_check_sees_a_request_a_script_and_a_blank_chart(report: Path, browser: Browser,
                                                             tmp_path: Path) -> None:
    html = (report / "vault_V_CORE.html").read_text()
    bad = tmp_path / "bad.html"
    first = html.index('<svg class="chart"')
    end = html.index("</svg>", first) + len("</svg>")
    blank = ('<svg class="chart" id="blank" width="720" height="264" '
             'xmlns="http://www.w3.org/2000/svg"><rect width="720" height="264" '
             'fill="#ffffff"/></svg>')
    html = html[:first] + blank + html[end:]
    html = html.replace("</main>", '<img src="http://192.0.2.1/pixel.png" alt="">'
                        '<script>console.log("hi")</script></main>')
    html = html.replace('<meta http-equiv="Content-Security-Policy"', '<meta name="x"')
    bad.write_text(html)
    problems, _seen = check_page(browser, bad, "bad.html")
    text = "\n".join(problems)
    for expected in ("Content-Security-Policy", "<script>", "external URL",
                     "requested http://192.0.2.1/pixel.png", "console log", "script(s)",
                     "chart blank looks blank"):
        assert expected in text, text


def test_png_reader_reads_what_zlib_wrote() -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    rows = [bytes([1]) + bytes([10, 20, 30, 5, 5, 5]), bytes([2]) + bytes([1, 1, 1, 0, 0, 0])]
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))
    width, height, decoded = decode_png(png)
    assert (width, height) == (2, 2)
    assert decoded == [bytes([10, 20, 30, 15, 25, 35]), bytes([11, 21, 31, 15, 25, 35])]
