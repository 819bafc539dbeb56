"""One self-contained HTML page per run (figures embedded), and a terminal summary."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from outlearn.atomic import atomic_write_text
from outlearn.report.section import Cell, Section
from outlearn.stats import Estimate

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}
.verdict{padding:.6em 1em;border-left:4px solid #467;background:#eef3f7;margin:1em 0}
.claim{font-style:italic}img{max-width:100%}pre{background:#f7f7f7;padding:1em;overflow:auto;
font-size:.85em}.ci{color:#666;font-size:.9em}
"""


def format_cell(v: Cell) -> str:
    """An estimate as 'value [low, high]'; numbers to 3 significant digits."""
    if isinstance(v, Estimate):
        return f"{v.value:.3g} [{v.low:.3g}, {v.high:.3g}]"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _cell_html(v: Cell) -> str:
    if isinstance(v, Estimate):
        return (f"{v.value:.3g} <span class='ci'>[{v.low:.3g}, {v.high:.3g}]</span>")
    return html.escape(format_cell(v))


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"<img alt='{html.escape(Path(path).stem)}' src='data:image/png;base64,{data}'>"


def section_html(s: Section) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in s.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell_html(r.get(c, ''))}</td>" for c in s.columns) + "</tr>"
        for r in s.rows
    )
    parts = [
        f"<h2 id='{html.escape(s.key)}'>{html.escape(s.title)}</h2>",
        f"<p class='claim'>Claim: {html.escape(s.claim)}</p>",
        f"<p>Setting: {html.escape(s.setting)}</p>",
        *(_img(f) for f in s.figures),
        f"<table><tr>{head}</tr>{body}</table>",
        "<p class='ci'>Brackets: 95% confidence intervals over trained students (or learner "
        "seeds) and tasks, crossed (outlearn.stats).</p>",
        f"<div class='verdict'><b>Verdict: {html.escape(s.verdict)}</b><br>"
        f"{html.escape(s.verdict_reason)}</div>",
        *(f"<p>{html.escape(n)}</p>" for n in s.notes),
    ]
    return "\n".join(parts)


def render_report(
    path: Path, title: str, sections: list[Section], command: str, config: dict, meta: dict
) -> Path:
    """Write the report page atomically; returns its path."""
    toc = "".join(
        f"<li><a href='#{html.escape(s.key)}'>{html.escape(s.title)}</a>: "
        f"{html.escape(s.verdict)}</li>"
        for s in sections
    )
    page = f"""<!doctype html><html><head><meta charset='utf-8'>
<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1><ul>{toc}</ul>
{''.join(section_html(s) for s in sections)}
<h2>Reproduce</h2><pre>{html.escape(command)}</pre>
<h3>Resolved config</h3><pre>{html.escape(json.dumps(config, indent=2, sort_keys=True))}</pre>
<h3>Run</h3><pre>{html.escape(json.dumps(meta, indent=2, sort_keys=True))}</pre>
</body></html>"""
    return atomic_write_text(path, page)


def summary_text(sections: list[Section]) -> str:
    """A short plain-text summary for the terminal."""
    lines = []
    for s in sections:
        lines.append(f"== {s.title}")
        lines.append(f"   verdict: {s.verdict}  ({s.verdict_reason})")
        for r in s.rows:
            lines.append("   " + "  ".join(f"{c}={format_cell(r[c])}" for c in s.columns if c in r))
    return "\n".join(lines)
