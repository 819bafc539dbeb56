"""One self-contained HTML page per run (figures embedded, no external loads), and a
terminal summary.

The page reads on any screen: a viewport tag, every table in its own horizontal scroll
box (the page itself never scrolls sideways), an estimate and its CI kept on one line,
figures at the content's full width, the setting as a short table, the resolved config
and the machine details collapsed (``<details>``), and the date, release (with ``git
describe``) and code hash at the top. ``tests/test_report_browser.py`` renders it in
headless Chromium at 1400 px and 390 px and checks that nothing is wider than the screen.
"""

from __future__ import annotations

import ast
import base64
import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from outlearn.atomic import atomic_write_text
from outlearn.report.section import Cell, Section
from outlearn.stats import Estimate

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;max-width:1280px;margin:1.5em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em}
.meta{color:#555;font-size:.9em;margin-top:0}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:right;vertical-align:top}th{background:#f4f4f4}
td:first-child,th:first-child,td.text{text-align:left}td.text{min-width:10em}
.est{white-space:nowrap}.ci{color:#666;font-size:.9em}
table.setting td{text-align:left}table.setting td:first-child{white-space:nowrap;
font-weight:600}
.verdict{padding:.6em 1em;border-left:4px solid #467;background:#eef3f7;margin:1em 0;
overflow-wrap:anywhere}
.claim{font-style:italic}
figure{margin:1em 0}img{display:block;width:100%;height:auto}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.85em;max-width:100%}
details{margin:1em 0}summary{cursor:pointer;font-weight:600}
@media (max-width:600px){body{margin:.6em auto;padding:0 .6em}
td,th{padding:.25em .4em}h1{font-size:1.25em}
table.setting td{display:block;border:0;padding:.1em .4em}table.setting tr{display:block;
border-bottom:1px solid #ccc;padding:.3em 0}}
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
        return (f"<td><span class='est'>{v.value:.3g} "
                f"<span class='ci'>[{v.low:.3g}, {v.high:.3g}]</span></span></td>")
    if isinstance(v, int | float):
        return f"<td><span class='est'>{html.escape(format_cell(v))}</span></td>"
    text = format_cell(v)
    cls = " class='text'" if len(text) > 24 else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (f"<figure><img alt='{html.escape(Path(path).stem)}' "
            f"src='data:image/png;base64,{data}'></figure>")


def _value_text(v: Any) -> str:
    """A config value, short: dicts as 'k v, k v', lists comma-separated."""
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {_value_text(x)}" for k, x in v.items()) or "(none)"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "unset"
    return str(v)


def _explicit(m: BaseModel) -> dict[str, Any]:
    """The fields a config file set (nested models: their set fields), in field order."""
    out: dict[str, Any] = {}
    for name in type(m).model_fields:
        if name not in m.model_fields_set:
            continue
        v = getattr(m, name)
        if isinstance(v, BaseModel):
            out[name] = _explicit(v)
        elif isinstance(v, list) and v and all(isinstance(x, BaseModel) for x in v):
            out[name] = [_explicit(x) for x in v]
        else:
            out[name] = v.model_dump(mode="json") if isinstance(v, BaseModel) else v
    return out


def setting_rows(cfg: BaseModel | Mapping[str, Any]) -> dict[str, str]:
    """The setting as a short table: one row per top-level key the config file set (a
    config model) or per key (a plain dict), its value in one short line. Every default
    is in the resolved config instead."""
    data = _explicit(cfg) if isinstance(cfg, BaseModel) else dict(cfg)
    return {k: _value_text(json.loads(json.dumps(v, default=str))) for k, v in data.items()}


_BRACES = re.compile(r"\{[^{}]*\}")


def readable(text: str) -> str:
    """A setting line with its Python dict literals (``{'size': 5}``) written as
    '(size 5)': the studies build these lines from config dicts."""
    def sub(m: re.Match[str]) -> str:
        try:
            d = ast.literal_eval(m.group(0))
        except (ValueError, SyntaxError):
            return m.group(0)
        return f"({_value_text(d)})" if isinstance(d, dict) and d else m.group(0)

    return _BRACES.sub(sub, text)


def _table(head: list[str], rows: list[str], cls: str = "", label: str = "") -> str:
    th = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    cls_attr = f" class='{cls}'" if cls else ""
    return (f"<div class='scroll' role='region' tabindex='0' aria-label='{html.escape(label)}'>"
            f"<table{cls_attr}>{f'<tr>{th}</tr>' if head else ''}{''.join(rows)}</table></div>")


def section_html(s: Section) -> str:
    body = ["<tr>" + "".join(_cell_html(r.get(c, "")) for c in s.columns) + "</tr>"
            for r in s.rows]
    parts = [
        f"<h2 id='{html.escape(s.key)}'>{html.escape(s.title)}</h2>",
        f"<p class='claim'>Claim: {html.escape(s.claim)}</p>",
        f"<p>Setting: {html.escape(readable(s.setting))}</p>",
        *(_img(f) for f in s.figures),
        _table(s.columns, body, label=s.title),
        "<p class='ci'>Brackets: 95% confidence intervals over trained students (or learner "
        "seeds) and tasks, crossed (outlearn.stats).</p>",
        f"<div class='verdict'><b>Verdict: {html.escape(s.verdict)}</b><br>"
        f"{html.escape(s.verdict_reason)}</div>",
        *(f"<p>{html.escape(n)}</p>" for n in s.notes),
    ]
    return "\n".join(parts)


def _json_details(summary: str, doc: Any) -> str:
    return (f"<details><summary>{html.escape(summary)}</summary>"
            f"<pre>{html.escape(json.dumps(doc, indent=2, sort_keys=True))}</pre></details>")


def render_report(
    path: Path, title: str, sections: list[Section], command: str, config: dict, meta: dict,
    setting: Mapping[str, str] | None = None, provenance: Mapping[str, str] | None = None,
) -> Path:
    """Write the report page atomically; returns its path.

    ``setting``: the short setting table (:func:`setting_rows`; default: from ``config``).
    ``provenance``: shown under the title, e.g. date, outlearn (release + git describe),
    code (source hash), config (its hash).
    """
    toc = "".join(
        f"<li><a href='#{html.escape(s.key)}'>{html.escape(s.title)}</a>: "
        f"{html.escape(s.verdict)}</li>"
        for s in sections
    )
    prov = " · ".join(f"{html.escape(k)} {html.escape(str(v))}"
                      for k, v in (provenance or {}).items())
    rows = [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
            for k, v in (setting if setting is not None else setting_rows(config)).items()]
    page = f"""<!doctype html><html lang='en'><head><meta charset='utf-8'>
<meta name='viewport' content='width=device-width, initial-scale=1'>
<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class='meta'>{prov}</p>
<ul>{toc}</ul>
<h2 id='setting'>Setting</h2>
<p>What the config file sets; every default is in the resolved config at the end.</p>
{_table([], rows, "setting", "setting")}
{''.join(section_html(s) for s in sections)}
<h2 id='reproduce'>Reproduce</h2><pre>{html.escape(command)}</pre>
{_json_details("Resolved config", config)}
{_json_details("Run (machine, times)", meta)}
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
