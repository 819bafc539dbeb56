"""``outlearn runs`` and ``outlearn compare``: finished runs read back from their
``results.json`` (:func:`outlearn.report.results.read_results`).

:func:`find_runs` lists the study run directories under a folder (``outlearn run``'s
``<study>-<config hash>``), finished or not; :func:`write_index` writes ``index.html``
beside them, linking every report. :func:`compare` sets two runs' estimates side by side,
matched by section, row (its first column) and column. It gives no CI of their
difference: results.json keeps each estimate with its CI, not the per-student and per-task
values behind it, and the CI of a difference cannot be read off the two CIs (it depends on
how much the runs share: the same tasks, the same students), so
:data:`NO_DIFFERENCE_CI` says so instead of inventing one.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outlearn.atomic import atomic_write_text
from outlearn.errors import ConfigError
from outlearn.report.results import cell_text, read_results

NO_DIFFERENCE_CI = (
    "No CI of the difference: results.json keeps each estimate with its CI but not the "
    "per-student and per-task values behind it, and the CI of a difference cannot be read "
    "off the two CIs (it depends on what the runs share: tasks, trained students). Compare "
    "the two intervals, or run both settings in one study to get the difference with its CI.")


@dataclass
class RunInfo:
    """One study run directory. ``doc``: its results.json (None while unfinished)."""

    path: Path
    study: str
    date: str
    seconds: float | None
    verdicts: list[tuple[str, str]] = field(default_factory=list)
    doc: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.doc is not None

    @property
    def report(self) -> Path | None:
        p = self.path / "report.html"
        return p if p.is_file() else None


def _seconds(meta: dict[str, Any]) -> float | None:
    """Wall time of a run: the seconds of all its stages, over every invocation."""
    for key in ("seconds (all stages, every invocation)", "seconds (this invocation)"):
        m = re.match(r"\s*([\d.]+)", str(meta.get(key, "")))
        if m:
            return float(m.group(1))
    return None


def duration(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', '2 h 07 min'; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _mtime(p: Path) -> str:
    t = dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC)
    return t.isoformat(timespec="seconds")


def read_run(d: Path) -> RunInfo | None:
    """The run in directory ``d``, or None when ``d`` is not a study run (no results.json
    and no config.json naming a study). A damaged results.json raises ConfigError."""
    if (d / "results.json").is_file():
        doc = read_results(d)
        return RunInfo(d, str(doc.get("study", "?")), str(doc.get("date", "")),
                       _seconds(doc.get("meta") or {}),
                       [(s["key"], s["verdict"]["outcome"]) for s in doc["sections"]], doc)
    cfg = d / "config.json"
    if cfg.is_file():
        try:
            study = json.loads(cfg.read_text(encoding="utf-8")).get("study")
        except (ValueError, UnicodeDecodeError, AttributeError):
            study = None
        if isinstance(study, str):
            return RunInfo(d, study, _mtime(cfg), None)
    return None


def find_runs(root: Path) -> list[RunInfo]:
    """The study runs directly under ``root``, newest first (unfinished ones included)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"runs folder {root} does not exist: `outlearn run <config.toml>` "
                          "creates it (or give the folder your runs are in)")
    found = [r for d in sorted(root.iterdir()) if d.is_dir() and (r := read_run(d))]
    return sorted(found, key=lambda r: r.date, reverse=True)


def verdict_text(r: RunInfo) -> str:
    if not r.finished:
        return "unfinished (rerun its command to resume)"
    return ", ".join(f"{k} {o}" for k, o in r.verdicts) or "(no sections)"


def short_date(iso: str) -> str:
    return iso.replace("T", " ")[:16] if iso else "?"


_INDEX_CSS = """
*{box-sizing:border-box}body{font-family:system-ui,sans-serif;max-width:1200px;
margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;white-space:nowrap}
.confirmed,.yes{color:#1a6e2e}.refuted,.no{color:#a3261b}.inconclusive{color:#8a6d00}
"""


def write_index(root: Path, runs: list[RunInfo]) -> Path:
    """``root/index.html``: one row per run (study, date, verdicts, wall time), each linked
    to its report."""
    rows = []
    for r in runs:
        name = html.escape(r.path.name)
        link = (f"<a href='{html.escape(r.path.name)}/report.html'>{name}</a>" if r.report
                else name)
        verdicts = ("<br>".join(f"{html.escape(k)}: <span class='{html.escape(o)}'>"
                                f"{html.escape(o)}</span>" for k, o in r.verdicts)
                    if r.finished else html.escape(verdict_text(r)))
        rows.append(f"<tr><td>{link}</td><td>{html.escape(r.study)}</td>"
                    f"<td class='n'>{html.escape(short_date(r.date))}</td><td>{verdicts}</td>"
                    f"<td class='n'>{html.escape(duration(r.seconds))}</td></tr>")
    page = f"""<!doctype html><html lang='en'><head><meta charset='utf-8'>
<meta name='viewport' content='width=device-width, initial-scale=1'>
<title>outlearn runs in {html.escape(str(root))}</title><style>{_INDEX_CSS}</style></head><body>
<h1>outlearn runs</h1><p>{len(runs)} runs in {html.escape(str(root))}, newest first
(<code>outlearn runs {html.escape(str(root))}</code> rewrites this page).</p>
<div class='scroll'><table><tr><th>run</th><th>study</th><th>date (UTC)</th><th>verdicts</th>
<th>wall time</th></tr>{''.join(rows)}</table></div></body></html>"""
    return atomic_write_text(Path(root) / "index.html", page)


# ------------------------------------------------------------------------------ compare
@dataclass
class SectionComparison:
    key: str
    title: str
    verdicts: tuple[str, str]
    rows: list[tuple[str, str, str, str]]  # row label, column, cell in A, cell in B
    only: list[str]  # what one run has and the other does not


@dataclass
class Comparison:
    a: RunInfo
    b: RunInfo
    config_diff: list[tuple[str, str, str]]  # key, value in A, value in B
    sections: list[SectionComparison]
    only: list[str]
    note: str = NO_DIFFERENCE_CI
    config_missing: list[str] = field(default_factory=list)  # "A", "B": no config recorded


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def _config(r: RunInfo) -> dict[str, Any] | None:
    """The run's resolved config, flattened: from its results.json (which a run writes
    with its config, and which is all a copy such as ``docs/results/<run>/`` keeps), else
    from the run directory's config.json; None when neither has one."""
    if r.doc is not None and isinstance(r.doc.get("config"), dict):
        return _flat({"study": r.doc.get("study"), **r.doc["config"]})
    p = r.path / "config.json"
    try:
        return _flat(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def load_run(path: Path) -> RunInfo:
    """A finished run from its directory (or its results.json)."""
    p = Path(path)
    d = p.parent if p.name == "results.json" else p
    if not d.is_dir():
        raise ConfigError(f"run {p} does not exist: `outlearn run <config.toml>` creates run "
                          "directories (`outlearn runs` lists the ones you have)")
    r = read_run(d)
    if r is None or not r.finished:
        state = "is unfinished" if r is not None else "holds no results.json"
        raise ConfigError(f"run {d} {state}: rerun the `outlearn run` command that started it "
                          "to finish it (its report's Reproduce line has it)")
    return r


def _label(row: dict[str, Any], columns: list[str], i: int) -> str:
    first = columns[0] if columns else None
    v = row.get(first) if first else None
    return v if isinstance(v, str) else f"row {i + 1}"


def compare(a: RunInfo, b: RunInfo) -> Comparison:
    """Two finished runs side by side: their configs' differences, and per section (by
    key) its verdicts and every cell of the rows (by their first column) and columns (by
    name) both runs have; what only one has is listed."""
    assert a.doc is not None and b.doc is not None
    ca, cb = _config(a), _config(b)
    missing = [n for n, c in (("A", ca), ("B", cb)) if c is None]
    ca, cb = ca or {}, cb or {}
    diff = [(k, json.dumps(ca.get(k, "(unset)")), json.dumps(cb.get(k, "(unset)")))
            for k in sorted(set(ca) | set(cb)) if ca.get(k, "(unset)") != cb.get(k, "(unset)")]
    sa = {s["key"]: s for s in a.doc["sections"]}
    sb = {s["key"]: s for s in b.doc["sections"]}
    out, only = [], []
    for key in [*sa, *(k for k in sb if k not in sa)]:
        if key not in sa or key not in sb:
            only.append(f"section {key!r} only in {'A' if key in sa else 'B'}")
            continue
        x, y = sa[key], sb[key]
        rx = {_label(r, x["columns"], i): r for i, r in enumerate(x["rows"])}
        ry = {_label(r, y["columns"], i): r for i, r in enumerate(y["rows"])}
        rows, gone = [], []
        cols = [c for c in x["columns"][1:] if c in y["columns"]]
        gone += [f"column {c!r} only in A" for c in x["columns"] if c not in y["columns"]]
        gone += [f"column {c!r} only in B" for c in y["columns"] if c not in x["columns"]]
        for label in [*rx, *(k for k in ry if k not in rx)]:
            if label not in rx or label not in ry:
                gone.append(f"row {label!r} only in {'A' if label in rx else 'B'}")
                continue
            for c in cols:
                va, vb = rx[label].get(c), ry[label].get(c)
                if va is None and vb is None:
                    continue
                rows.append((label, c, cell_text(va), cell_text(vb)))
        out.append(SectionComparison(key, x["title"], (x["verdict"]["outcome"],
                                                       y["verdict"]["outcome"]), rows, gone))
    return Comparison(a, b, diff, out, only, config_missing=missing)


__all__ = ["NO_DIFFERENCE_CI", "Comparison", "RunInfo", "SectionComparison", "compare",
           "duration", "find_runs", "load_run", "read_run", "write_index"]
