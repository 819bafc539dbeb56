"""The report in a real browser (headless Chromium, Debian's ``chromium`` package): at a
desktop width and a phone width, nothing on the page is wider than the screen, tables
scroll inside their own boxes, an estimate and its CI stay on one line, figures fill the
content's width, and the page loads nothing from outside itself.

``make test-browser`` installs chromium when it is missing and runs these (marker
``browser``, deselected by default).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_sample import sample_report

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                       "google-chrome")) if p), None)

# Appended to a copy of the report (never to the report itself): measures the laid-out page
# once it has loaded and writes the numbers into the DOM that --dump-dom prints.
PROBE = """<script>
addEventListener('load', () => {
  const vw = document.documentElement.clientWidth;
  const box = e => { const r = e.getBoundingClientRect();
                     return {left: r.left, right: r.right, width: r.width}; };
  const out = {
    viewport: vw, innerWidth: window.innerWidth,
    pageWidth: document.documentElement.scrollWidth,
    tables: [...document.querySelectorAll('table')].map(t => ({
      table: box(t), scroller: t.closest('.scroll') ? box(t.closest('.scroll')) : null})),
    figures: [...document.querySelectorAll('img')].map(box),
    content: box(document.body),
    wrappedEstimates: [...document.querySelectorAll('.est')]
      .filter(e => e.getClientRects().length > 1 ||
                   e.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(e).fontSize))
      .map(e => e.textContent),
    estimates: document.querySelectorAll('.est').length,
    loads: performance.getEntriesByType('resource').map(r => r.name)
      .filter(n => !n.startsWith('data:')),
  };
  parent.postMessage(JSON.stringify(out), '*');
});
</script>"""

# Chromium's headless window is at least 500 px wide: the report is measured in an iframe of
# the width under test (its viewport), which posts its numbers to this page.
FRAME = """<!doctype html><html><body style='margin:0'><pre id='probe'></pre>
<iframe src='{src}' style='border:0;display:block;width:{width}px;height:900px'></iframe>
<script>addEventListener('message', e => {{
  document.getElementById('probe').textContent = e.data; }});</script></body></html>"""


def measure(page: Path, width: int, tmp: Path) -> dict:
    probe = tmp / f"probe-{width}.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    frame = tmp / f"frame-{width}.html"
    frame.write_text(FRAME.format(src=probe.name, width=width))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp / 'profile'}",
           "--window-size=1600,1000", "--virtual-time-budget=5000", "--dump-dom",
           frame.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r"<pre id=\"probe\">(.+?)</pre>", done.stdout, re.S)
    assert m, f"chromium printed no measurements (rc {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    if CHROMIUM is None:
        pytest.fail("no chromium on PATH: `make test-browser` installs it "
                    "(apt-get install -y chromium)")
    return sample_report(tmp_path_factory.mktemp("report"))


@pytest.mark.parametrize("width", [1400, 390])
def test_nothing_is_wider_than_the_screen(report, width, tmp_path):
    m = measure(report, width, tmp_path)
    vw = m["viewport"]
    assert vw == width == m["innerWidth"], m
    assert m["pageWidth"] <= vw, f"the page scrolls sideways at {width} px: {m['pageWidth']}"
    assert len(m["tables"]) >= 3 and len(m["figures"]) == 2
    for t in m["tables"]:
        assert t["scroller"] is not None, "a table outside a scroll box"
        s = t["scroller"]
        assert s["left"] >= 0 and s["right"] <= vw + 0.5 and s["width"] <= vw, (width, t)
    for f in m["figures"]:
        assert f["left"] >= 0 and f["right"] <= vw + 0.5, (width, f)
        # full width: the figure spans the content box (body minus its padding)
        assert f["width"] >= m["content"]["width"] - 40, (width, f, m["content"])
    assert m["estimates"] == 18 and m["wrappedEstimates"] == []
    assert m["loads"] == [], f"the report loads {m['loads']}"
    if width == 390:  # the 7-column table really is wider than a phone: it scrolls
        assert any(t["table"]["width"] > t["scroller"]["width"] for t in m["tables"])
