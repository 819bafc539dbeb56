"""``outlearn map``: the ceiling map, one report over many finished runs.

From the ``results.json`` of each run (:func:`~outlearn.report.results.read_results`), one
row per (task family, teacher, student, cut) of every section that reports both an
exceedance (student asymptote - data ceiling) and a continuation gap (teacher run fresh -
student), with their 95% CIs as the run stored them, marked *gated* where the run's
competence gate failed (its full-data student does not imitate its data, so no verdict
about the cut reads); one row per cut of a run that measured the teacher at the cut acting
greedily (:data:`GREEDY_TEACHER`: the data without the teacher's exploration; an
exceedance, no continuation gap, never gated: it is a reference, not a student); and one
claim line per section of every run (title, verdict, outcome). :func:`write_map` writes
``map.md``, ``map.json`` and ``map.png``.

The setting of a row comes from the resolved config the run recorded (``config`` in
results.json, or ``config.json`` beside it in a run directory); files without one (older
runs) give it from the section's setting line, best effort. The cut is read from the row's
label ("cut at 0.4 of optimal", "uncut") and the gate from the verdict's label
(:data:`GATE`): results.json has them as words only.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from outlearn.atomic import atomic_write_text, check_output
from outlearn.report.results import cell_text, read_results

GATE = "inconclusive: the student does not imitate its full data"
"""How a gated verdict begins (:data:`outlearn.studies.verdicts.GATE`; a test holds the two
equal: importing the studies here would load JAX)."""

GREEDY_TEACHER = "teacher at the cut, greedy"
"""The student column of a greedy-teacher reference row (a cut-off run's "teacher, cut at
X, greedy (replayed, frozen)" row)."""
_GREEDY_ROW = re.compile(r"^teacher, .*greedy \(replayed, frozen\)$")

_SETTING = re.compile(r"^\s*(?P<env>[\w.-]+)\s*(?P<env_kw>\{[^{}]*\})?\s*,\s*teacher\s+"
                      r"(?P<teacher>[\w.-]+)\s*(?P<teacher_kw>\{[^{}]*\})?")
_STUDENT = re.compile(r"\bStudent (?P<kind>[\w.-]+)")
_CUT = re.compile(r"cut at (?P<frac>[\d.]+) of optimal|cut at the first (?P<pct>[\d.]+)% of "
                  r"the teacher's episodes|cut at step (?P<step>\d+)|\b(?P<word>uncut|early)\b")


@dataclass(frozen=True)
class Run:
    """A finished run: its name in the map (the folder of its results.json), the file, and
    what made it."""

    name: str
    results: str
    study: str
    command: str
    date: str
    config_hash: str


@dataclass(frozen=True)
class MapRow:
    """One student of one cut. ``exceedance``, ``continuation_gap``: results.json estimates
    ({"value", "low", "high", "confidence"}); a greedy-teacher reference row has no
    continuation gap (None)."""

    family: str
    teacher: str
    teacher_settings: str
    student: str
    cut: str
    exceedance: dict[str, Any]
    continuation_gap: dict[str, Any] | None
    gated: bool
    verdict: str
    section: str
    run: Run


@dataclass(frozen=True)
class ClaimLine:
    title: str
    verdict: str
    outcome: str
    run: Run


def _settings(kw: Any) -> str:
    """A config's kwargs (a dict, or its text in a setting line) as 'k=v, k=v'."""
    if isinstance(kw, dict):
        return ", ".join(f"{k}={v}" for k, v in kw.items())
    inner = str(kw or "").strip().strip("{}")
    return re.sub(r"'([^']*)':\s*", r"\1=", inner).replace("'", "")


def _named(name: str, kw: Any) -> str:
    s = _settings(kw)
    return f"{name} ({s})" if s else name


def _config(doc: dict[str, Any], results: Path) -> dict[str, Any]:
    """The run's resolved config: results.json's own, else config.json beside it, else {}."""
    if isinstance(doc.get("config"), dict):
        return doc["config"]
    try:
        cfg = json.loads((results.parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _setting(section: dict[str, Any], cfg: dict[str, Any]) -> dict[str, str]:
    """family, teacher, teacher_settings, student of a section: from the config, else from
    the setting line; '?' where neither says."""
    m = _SETTING.match(str(section.get("setting", "")))
    env, teacher = cfg.get("env"), cfg.get("teacher")
    out = {"family": "?", "teacher": "?", "teacher_settings": "", "student": "?"}
    if isinstance(env, dict) and "name" in env:
        out["family"] = _named(env["name"], env.get("kwargs"))
    elif m:
        out["family"] = _named(m["env"], m["env_kw"])
    if isinstance(teacher, dict) and "name" in teacher:
        out["teacher"], out["teacher_settings"] = teacher["name"], _settings(teacher.get("kwargs"))
    elif m:
        out["teacher"], out["teacher_settings"] = m["teacher"], _settings(m["teacher_kw"])
    sections = {str(st["name"]): st for st in cfg.get("students") or []
                if isinstance(st, dict) and "name" in st}
    named = {n: str(st.get("kind", "?")) for n, st in sections.items()}
    who = next((n for n in named if str(section["key"]).endswith(f"-{n}")), None)
    ev = cfg.get("eval")
    mode = ev.get("mode", "sample") if isinstance(ev, dict) else "sample"
    if who is not None:
        out["student"] = named[who] if named[who] == who else f"{named[who]} ({who})"
        mode = sections[who].get("eval_mode") or mode
    elif isinstance(cfg.get("student"), dict) and "kind" in cfg["student"]:
        out["student"] = cfg["student"]["kind"]
    elif found := _STUDENT.search(str(section.get("setting", ""))):
        out["student"] = found["kind"]
    if mode == "greedy":  # the argmax of its output; unmarked: it samples (its default)
        out["student"] += ", greedy"
    return out


def _cut(label: Any) -> str:
    m = _CUT.search(str(label))
    if m and m["pct"]:  # a cut by history length, as its config spells it
        return f"episodes:{float(m['pct']) / 100:g}"
    if m and m["step"]:  # a cut at a step (the deep-teacher study)
        return f"step {m['step']}"
    return (m["frac"] or m["word"]) if m else str(label)


def _is_estimate(v: Any) -> bool:
    return isinstance(v, dict) and {"value", "low", "high"} <= v.keys()


def read_map(paths: list[Path]) -> tuple[list[Run], list[MapRow], list[ClaimLine]]:
    """The runs, map rows and claim lines of ``paths`` (results.json files or run
    directories; a ConfigError names one that is neither, or is damaged)."""
    runs: list[Run] = []
    rows: list[MapRow] = []
    claims: list[ClaimLine] = []
    for p in paths:
        doc = read_results(p)
        results = Path(p) / "results.json" if Path(p).is_dir() else Path(p)
        name = results.resolve().parent.name
        names = [r.name for r in runs]
        name = name if name not in names else f"{name} ({names.count(name) + 1})"
        run = Run(name, str(results), str(doc.get("study", "?")), str(doc.get("command", "")),
                  str(doc.get("date", "")), str(doc.get("config_hash", "")))
        runs.append(run)
        cfg = _config(doc, results)
        greedy_cuts: set[str] = set()  # the run's greedy-teacher rows, one per cut
        for s in doc["sections"]:
            v = s["verdict"]
            claims.append(ClaimLine(str(s["title"]), str(v["label"]), str(v["outcome"]), run))
            if not {"exceedance", "continuation gap"} <= set(s["columns"]):
                continue
            setting = _setting(s, cfg)
            first = s["columns"][0]
            for r in s["rows"]:
                ex, gap = r.get("exceedance"), r.get("continuation gap")
                if _is_estimate(ex) and _GREEDY_ROW.match(str(r.get(first))):
                    cut = _cut(r.get(first))  # the same row in each student's section: once
                    if cut not in greedy_cuts:
                        greedy_cuts.add(cut)
                        rows.append(MapRow(**{**setting, "student": GREEDY_TEACHER}, cut=cut,
                                           exceedance=ex, continuation_gap=None, gated=False,
                                           verdict="", section=str(s["key"]), run=run))
                    continue
                if not (_is_estimate(ex) and _is_estimate(gap)):
                    continue  # a reference row (teacher, random): no exceedance
                verdict = str(r.get("verdict", ""))
                gated = str(v["label"]).startswith(GATE) or verdict.startswith(GATE)
                rows.append(MapRow(**setting, cut=_cut(r.get(first)), exceedance=ex,
                                   continuation_gap=gap, gated=gated, verdict=verdict,
                                   section=str(s["key"]), run=run))
    order = {r.name: i for i, r in enumerate(runs)}
    rows.sort(key=lambda r: (r.family, r.teacher, r.student, _cut_order(r.cut),
                             order[r.run.name]))
    return runs, rows, claims


def _cut_order(cut: str) -> tuple[float, str]:
    try:
        return float(cut), ""
    except ValueError:
        return math.inf, cut


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _cut_text(cut: str) -> str:
    return f"cut {cut}" if _cut_order(cut)[0] < math.inf else cut


def markdown(runs: list[Run], rows: list[MapRow], claims: list[ClaimLine],
             command: str) -> str:
    """``map.md``: the map's table, the claim lines and the runs they come from."""
    out = ["# The ceiling map", "",
           "One row per task family, teacher, student and cut (a student marked greedy acts "
           "on the argmax of its output; the others act by their own default: AD samples "
           "its policy, adq is epsilon-greedy). Exceedance = the student's "
           "asymptote - its data ceiling (above 0: it learns past its data); continuation gap "
           "= the teacher run fresh - the student (above 0: it falls short of the teacher's "
           "unseen continuation); 95% CIs as each run stored them, in that family's return. "
           "Gated: the run's full-data student does not reach its own data ceiling (the "
           "competence gate), so its verdicts are inconclusive. The rows of the teacher at "
           f"the cut acting greedily ('{GREEDY_TEACHER}': each held-out teacher rebuilt from "
           "its kept history, frozen, run on its argmax) are a reference: a student above "
           "its data ceiling but not above this row has dropped the teacher's exploration "
           "rather than learned past its data.", "",
           "| task family | teacher | student | cut | exceedance | continuation gap | gated "
           "| run |", "|---|---|---|---|---|---|---|---|"]
    out += [f"| {_md(r.family)} | {_md(r.teacher)} | {_md(r.student)} | {_md(r.cut)} | "
            f"{cell_text(r.exceedance)} | {cell_text(r.continuation_gap) or '—'} | "
            f"{'**gated**' if r.gated else ''} | {_md(r.run.name)} |" for r in rows]
    if not rows:
        out.append("| (no run reports an exceedance and a continuation gap) |||||||| ")
    out += ["", "## Claims", "", "| run | claim | outcome | verdict |", "|---|---|---|---|"]
    out += [f"| {_md(c.run.name)} | {_md(c.title)} | {c.outcome} | {_md(c.verdict)} |"
            for c in claims]
    out += ["", "## Runs", ""]
    out += [f"- **{_md(r.name)}**: `{r.results}` ({r.study}, config {r.config_hash}, "
            f"{r.date}): `{r.command}`" for r in runs]
    out += ["", f"<sub>Made by `{command}`.</sub>", ""]
    return "\n".join(out)


def _interval(est: dict[str, Any] | None) -> tuple[float, float, float]:
    """An estimate as (value, low, high); a missing one as NaNs (the figure leaves it out)."""
    if est is None:
        return math.nan, math.nan, math.nan
    return float(est["value"]), float(est["low"]), float(est["high"])


def write_map(paths: list[Path], out: Path, command: str) -> list[Path]:
    """Write ``out/map.md``, ``out/map.json`` and ``out/map.png``; returns their paths."""
    from outlearn.report.figures import intervals_figure

    check_output(out, "--out", kind="dir")
    runs, rows, claims = read_map(paths)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"command": command, "runs": [asdict(r) for r in runs],
            "rows": [{**asdict(r), "run": r.run.name} for r in rows],
            "claims": [{**asdict(c), "run": c.run.name} for c in claims]}
    labels = [f"{r.student}, {_cut_text(r.cut)} ({r.run.name})\n{r.family}, {r.teacher}"
              for r in rows]
    fig = intervals_figure(
        out / "map.png", labels,
        {"exceedance: asymptote - data ceiling": [_interval(r.exceedance) for r in rows],
         "continuation gap: teacher - student": [_interval(r.continuation_gap) for r in rows]},
        [r.gated for r in rows], "gated (competence gate failed)",
        "The ceiling map: 95% CIs (above 0: exceeds its data / falls short of the teacher)")
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    return [atomic_write_text(out / "map.md", markdown(runs, rows, claims, command)),
            atomic_write_text(out / "map.json", text), fig]


__all__ = ["GATE", "GREEDY_TEACHER", "ClaimLine", "MapRow", "Run", "markdown", "read_map",
           "write_map"]
