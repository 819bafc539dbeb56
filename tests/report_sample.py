"""A report page as wide as real ones get: the cut-off study's 3-panel figure and 6-column
table of estimates with long verdicts, the horizon claim's 2-panel figure, a setting line
holding config dicts. Shared by ``test_report.py`` and ``test_report_browser.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from outlearn.evaluation.metrics import CurveCI
from outlearn.report.figures import CurvesPanel, CutPanel, cutoff_figure, panels_figure
from outlearn.report.html import render_report
from outlearn.report.section import Outcome, Section
from outlearn.stats import Estimate


def _curve(y: np.ndarray, half: float) -> CurveCI:
    return CurveCI(y, y - half, y + half, 0.95)


def sample_report(d: Path) -> Path:
    """Write ``d/report.html`` (and its PNGs) and return its path."""
    d.mkdir(parents=True, exist_ok=True)
    e = np.arange(1, 61, dtype=float)
    teacher = 1 - np.exp(-e / 15)
    panels = [CutPanel(f"cut at {c} of optimal: {k} ep. seen", _curve(teacher * c * 1.1, 0.08), k,
                       c) for c, k in [(0.2, 8), (0.4, 14), (0.7, 25)]]
    cut = cutoff_figure(d / "cutoff.png", teacher, panels,
                        {"random": 0.05, "no-op": 0.0, "optimum": 1.0},
                        suptitle="darkroom, teacher qlearning: students (95% CI) vs the "
                                 "teacher's continuation")
    pulls = np.arange(1, 401, dtype=float)
    per = {"student": 0.3 / np.sqrt(pulls), "ucb": 0.4 / np.sqrt(pulls)}
    hor = panels_figure(
        d / "horizon.png",
        [CurvesPanel("cumulative regret", "cumulative regret",
                     {k: _curve(np.cumsum(v), 0.5) for k, v in per.items()}),
         CurvesPanel("per-pull regret", "regret per pull",
                     {k: _curve(v, 0.01) for k, v in per.items()},
                     {"before T": (50.5, 100.5), "at the end": (350.5, 400.5)})],
        "pull", {"T (training horizon)": 100}, "bandit: trained on T=100, run to 4T")
    est = Estimate(0.123456, -0.0456789, 0.987654)
    cols = ["learner", "asymptote", "data ceiling", "exceedance (asymptote - ceiling)",
            "continuation gap (teacher at horizon - student)", "student - random", "verdict"]
    rows = [{"learner": f"student, cut at {c} of optimal ({k} episodes seen)",
             **{col: est for col in cols[1:-1]},
             "verdict": "plateaus at its data (the whole CI is within the resolution)"}
            for c, k in [(0.2, 8), (0.4, 14), (0.7, 25)]]
    sections = [
        Section(key="cutoff", title="Claim 1: a student trained on cut histories plateaus",
                claim="A student trained on histories cut at X of optimal plateaus at about X.",
                setting="darkroom {'size': 5, 'episode_len': 20}, teacher qlearning {}: 40 train "
                        "/ 8 held-out tasks x 2 teacher learners, 60 teacher episodes.",
                columns=cols, rows=rows, verdict="plateaus at its data (confirmed)",
                verdict_reason="exceedance " + str(est) + " for every cut: " + "x" * 200,
                figures=[cut], outcome=Outcome.CONFIRMED),
        Section(key="horizon", title="Claim 3: horizon extrapolation",
                claim="A bandit student trained on T pulls stops improving past T.",
                setting="bernoulli-bandit {'num_arms': 5}, teacher ucb.",
                columns=["learner", "regret/pull before T", "regret/pull at the end", "drop"],
                rows=[{"learner": "student", "regret/pull before T": est,
                       "regret/pull at the end": est, "drop": est}],
                verdict="per-step regret stops falling after T", verdict_reason="why",
                figures=[hor], outcome=Outcome.NO),
    ]
    config = {"study": "cutoff", "student": {"model": {"d_model": 64} | {f"k{i}": i
                                                                        for i in range(40)}}}
    return render_report(d / "report.html", "outlearn: cut-off study", sections,
                         "outlearn run configs/demo.toml", config, {"cpus": 2},
                         provenance={"date": "2025-01-01 00:00:00+00:00",
                                     "outlearn": "0.1.0 (v0.1.0-5-gabcdef0)"})
