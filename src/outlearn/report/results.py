"""``results.json``: every estimate with its CI and every verdict with its reason, beside
``report.html``; and the README's tables printed from it (``outlearn results``).

The file is plain JSON (no code runs when it is read): the study, its config hash, the
code it ran (outlearn's version and a hash of its source, the git commit when the source
is a checkout), the date, the command, and one entry per report section.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from outlearn.atomic import atomic_write_text
from outlearn.errors import ConfigError
from outlearn.report.section import Cell, Outcome, Section
from outlearn.stats import Estimate

SCHEMA = 1


def _number(x: float) -> float | str:
    """JSON has no inf or NaN: they are written as the strings "inf", "-inf", "nan"."""
    return x if math.isfinite(x) else str(x)


def _cell(v: Cell) -> Any:
    if isinstance(v, Estimate):
        return {"value": _number(v.value), "low": _number(v.low), "high": _number(v.high),
                "confidence": v.confidence}
    if isinstance(v, float):
        return _number(v)
    return v


@cache
def source_hash() -> str:
    """A hash of outlearn's source files (the code a result came from)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def git_commit() -> str | None:
    """The commit of the checkout outlearn runs from (with "+dirty" when it has changes);
    None when it is not a git checkout or git is missing."""
    root = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                               check=True, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def section_dict(s: Section) -> dict[str, Any]:
    return {"key": s.key, "title": s.title, "claim": s.claim, "setting": s.setting,
            "verdict": {"label": s.verdict, "reason": s.verdict_reason,
                        "outcome": Outcome(s.outcome).value},
            "columns": s.columns, "rows": [{c: _cell(r[c]) for c in s.columns if c in r}
                                           for r in s.rows],
            "notes": s.notes, "figures": [Path(f).name for f in s.figures]}


def write_results(path: Path, study: str, config_hash: str, command: str,
                  sections: list[Section], meta: dict[str, Any]) -> Path:
    """Write ``results.json`` for a finished study run."""
    from outlearn import __version__

    doc = {"schema": SCHEMA, "study": study, "config_hash": config_hash,
           "outlearn": __version__, "code": source_hash(), "git_commit": git_commit(),
           "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "command": command, "meta": meta,
           "sections": [section_dict(s) for s in sections]}
    return atomic_write_text(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")


def read_results(path: Path) -> dict[str, Any]:
    """A ``results.json`` (or a run directory holding one), checked for its schema."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise ConfigError(f"{p} does not exist: give a results.json or a run directory "
                          "holding one (`outlearn run` writes it)")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p} is not a results.json ({err}): re-run the study") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or "sections" not in doc:
        raise ConfigError(f"{p} is not a results.json of schema {SCHEMA}: re-run the study")
    return doc


def _text(v: Any) -> str:
    if isinstance(v, dict) and "value" in v:
        f = lambda x: x if isinstance(x, str) else f"{x:.3g}"  # noqa: E731
        return f"{f(v['value'])} [{f(v['low'])}, {f(v['high'])}]"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def markdown(doc: dict[str, Any], source: str = "") -> str:
    """The README form of a results.json: per section its verdict line and its table."""
    out = []
    for s in doc["sections"]:
        v = s["verdict"]
        out.append(f"**{s['title']}** ({v['outcome']}): {v['label']}")
        out.append("")
        cols = s["columns"]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for r in s["rows"]:
            out.append("| " + " | ".join(_text(r.get(c, "")) for c in cols) + " |")
        out.append("")
    commit = (doc.get("git_commit") or "no git")[:12]
    out.append(f"<sub>From `{source or 'results.json'}` ({doc['study']}, config "
               f"{doc['config_hash']}, code {doc['code']}, commit {commit}, {doc['date']}).</sub>")
    return "\n".join(out)
