"""``results.json``: every estimate with its CI and every verdict with its reason, beside
``report.html``; and the README's tables printed from it (``outlearn results``).

The file is plain JSON (no code runs when it is read): the study, its config hash, the
code it ran (a hash of outlearn's source, and its release with ``git describe`` of the
checkout when there is one), the date, the command, the resolved config (``config``, as
the run directory's ``config.json``; files written before it was added have none, and
readers do without), and one entry per report section.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from outlearn.atomic import atomic_write_text
from outlearn.errors import ConfigError
from outlearn.provenance import release, source_hash
from outlearn.report.section import Cell, Section
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


def section_dict(s: Section) -> dict[str, Any]:
    assert s.outcome is not None  # Section.__post_init__ requires it
    return {"key": s.key, "title": s.title, "claim": s.claim, "setting": s.setting,
            "verdict": {"label": s.verdict, "reason": s.verdict_reason,
                        "outcome": s.outcome.value},
            "columns": s.columns, "rows": [{c: _cell(r[c]) for c in s.columns if c in r}
                                           for r in s.rows],
            "notes": s.notes, "figures": [Path(f).name for f in s.figures]}


def now() -> str:
    """The date and time a run finished, as results.json and the report write it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_results(path: Path, study: str, config_hash: str, command: str,
                  sections: list[Section], meta: dict[str, Any], date: str | None = None,
                  config: dict[str, Any] | None = None) -> Path:
    """Write ``results.json`` for a finished study run (``date``: default now; ``config``:
    the resolved config, JSON values only, written when given)."""
    doc = {"schema": SCHEMA, "study": study, "config_hash": config_hash,
           "outlearn": release(), "code": source_hash(), "date": date or now(),
           "command": command, "meta": meta, **({"config": config} if config else {}),
           "sections": [section_dict(s) for s in sections]}
    return atomic_write_text(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")


_SECTION_KEYS = ("key", "title", "verdict", "columns", "rows")


def read_results(path: Path) -> dict[str, Any]:
    """A ``results.json`` (or a run directory holding one), checked for its schema."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise ConfigError(f"{p} does not exist: `outlearn run <config.toml>` writes it when "
                          "the run finishes (`outlearn runs` lists your runs); give a "
                          "results.json or a run directory holding one")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p} is not a results.json ({err}): re-run the study") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or "sections" not in doc:
        raise ConfigError(f"{p} is not a results.json of schema {SCHEMA}: re-run the study")
    for i, s in enumerate(doc["sections"] if isinstance(doc["sections"], list) else [None]):
        if not _section_ok(s):
            raise ConfigError(f"{p}: section {i + 1} lacks one of {', '.join(_SECTION_KEYS)} "
                              "(or a verdict's label and outcome), so it is not a results.json "
                              "that outlearn wrote: re-run the study")
    return doc


def _section_ok(s: Any) -> bool:
    return (isinstance(s, dict) and all(k in s for k in _SECTION_KEYS)
            and isinstance(s["verdict"], dict) and {"label", "outcome"} <= s["verdict"].keys()
            and isinstance(s["columns"], list) and isinstance(s["rows"], list)
            and all(isinstance(r, dict) for r in s["rows"]))


def cell_text(v: Any) -> str:
    """A results.json cell as text: an estimate as 'value [low, high]', numbers to 3
    significant digits, nothing for a missing cell."""
    if isinstance(v, dict) and "value" in v:
        f = lambda x: x if isinstance(x, str) else f"{x:.3g}"  # noqa: E731
        return f"{f(v['value'])} [{f(v['low'])}, {f(v['high'])}]"
    if isinstance(v, float):
        return f"{v:.3g}"
    return "" if v is None else str(v)


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
            out.append("| " + " | ".join(cell_text(r.get(c, "")) for c in cols) + " |")
        out.append("")
    out.append(f"<sub>From `{source or 'results.json'}` ({doc['study']}, config "
               f"{doc['config_hash']}, code {doc['code']}, {doc['outlearn']}, "
               f"{doc['date']}).</sub>")
    return "\n".join(out)
