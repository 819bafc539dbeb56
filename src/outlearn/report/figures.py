"""Learning-curve figures for reports (matplotlib, Agg backend, PNG written atomically).

Every figure is :data:`FIG_WIDTH` inches wide, the width the report shows it at (about
1,100 px on a desktop screen), with text of at least :data:`MIN_FONT_PT` points (about 14
px there) and its legend outside the axes, below them or beside them, so that it covers no
data.

:func:`cutoff_figure` draws one panel per cut: the teacher's curve, solid over the
episodes the student saw and dashed over the ones it did not; the student's mean curve
with its 95% CI band; the baselines (random, no-op) and the optimum; and the data
ceiling of that cut. :func:`curves_figure` draws any set of mean curves with CI bands on
one panel, :func:`panels_figure` several such panels side by side (the horizon claim's
cumulative and per-pull regret, for example). :func:`intervals_figure` draws estimates with
their CI bars, one row each (the ceiling map of ``outlearn map``).
"""

from __future__ import annotations

import json
import math
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from outlearn.atomic import atomic_path  # noqa: E402

if TYPE_CHECKING:  # (importing outlearn.evaluation loads jax: training plots need only this)
    from matplotlib.artist import Artist

    from outlearn.evaluation.metrics import CurveCI

FIG_WIDTH = 11.0
"""Inches: every report figure's width (the report shows it at the page's full width)."""
MIN_FONT_PT = 10.0
"""Points: the smallest text in a report figure (tick labels, legend)."""
DPI = 110

STYLE = {"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11,
         "xtick.labelsize": MIN_FONT_PT, "ytick.labelsize": MIN_FONT_PT,
         "legend.fontsize": MIN_FONT_PT, "figure.titlesize": 12}

_BASELINE_STYLE = {"random": ("tab:gray", ":"), "no-op": ("tab:brown", "-."),
                   "optimum": ("black", "--")}


@contextmanager
def report_style():
    """matplotlib settings of every report figure (fonts no smaller than MIN_FONT_PT)."""
    with plt.rc_context(STYLE):
        yield


@dataclass(frozen=True)
class CutPanel:
    """One cut's panel.

    ``student``: its mean curve with CI band, each (E,). ``seen_episodes``: how many of
    the teacher's episodes the student's data held (the teacher is solid up to there,
    dashed after). ``ceiling``: the data ceiling (the teacher's best return in the kept
    data), or None.
    """

    title: str
    student: CurveCI
    seen_episodes: int
    ceiling: float | None = None


@dataclass(frozen=True)
class CurvesPanel:
    """One panel of :func:`panels_figure`: mean curves with CI bands, each (X,), drawn at
    x = 1..X; ``spans``: labelled x ranges shaded grey (the windows a verdict compares)."""

    title: str
    ylabel: str
    curves: dict[str, CurveCI]
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def _band(ax: plt.Axes, c: CurveCI, label: str, color: str) -> None:
    x = np.arange(1, c.mean.size + 1)
    ax.plot(x, c.mean, color=color, lw=1.6, label=label)
    ax.fill_between(x, c.low, c.high, color=color, alpha=0.25, lw=0)


def _teacher(ax: plt.Axes, teacher: np.ndarray, seen: int) -> None:
    """Teacher mean curve (E,): solid over episodes 1..seen, dashed after."""
    x = np.arange(1, teacher.size + 1)
    k = int(min(max(seen, 0), teacher.size))
    ax.plot(x[:k], teacher[:k], color="tab:blue", lw=1.4, label="teacher (seen)")
    if k < teacher.size:
        lo = max(k - 1, 0)
        ax.plot(x[lo:], teacher[lo:], color="tab:blue", lw=1.4, ls="--",
                label="teacher (unseen)")
    ax.axvline(k + 0.5, color="tab:blue", lw=0.6, alpha=0.5)


def _legend_below(fig: plt.Figure, axes: list[plt.Axes], max_cols: int = 4) -> None:
    """One legend for the whole figure, below the panels (outside every axes): each label
    once, from whichever panel has it."""
    seen: dict[str, Artist] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("_"):
                seen.setdefault(label, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncol=min(len(seen), max_cols), frameon=False)


def cutoff_fig(
    teacher: np.ndarray,
    panels: list[CutPanel],
    baselines: dict[str, np.ndarray | float],
    ylabel: str = "episode return",
    suptitle: str | None = None,
) -> plt.Figure:
    """The figure of :func:`cutoff_figure` (not saved)."""
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    with report_style():
        fig, axes = plt.subplots(rows, cols, figsize=(FIG_WIDTH, 3.3 * rows + 1.0),
                                 sharey=True, squeeze=False, layout="constrained")
        for ax, p in zip(axes.flat, panels, strict=False):
            _teacher(ax, np.asarray(teacher, np.float64), p.seen_episodes)
            _band(ax, p.student, "student (95% CI)", "tab:red")
            for name, b in baselines.items():
                color, ls = _BASELINE_STYLE.get(name, ("tab:olive", ":"))
                if np.ndim(b) == 0:
                    ax.axhline(float(b), color=color, ls=ls, lw=1.0, label=name)
                else:
                    ax.plot(np.arange(1, np.size(b) + 1), b, color=color, ls=ls, lw=1.0, label=name)
            if p.ceiling is not None:
                ax.axhline(p.ceiling, color="tab:green", lw=1.0, ls=(0, (5, 2, 1, 2)),
                           label="data ceiling")
            ax.set_title(p.title)
            ax.set_xlabel("episode")
        for ax in axes.flat[n:]:
            ax.axis("off")
        for r in range(rows):
            axes[r, 0].set_ylabel(ylabel)
        _legend_below(fig, list(axes.flat[:n]))
        if suptitle:
            fig.suptitle(suptitle)
    return fig


def cutoff_figure(
    path: Path,
    teacher: np.ndarray,
    panels: list[CutPanel],
    baselines: dict[str, np.ndarray | float],
    ylabel: str = "episode return",
    suptitle: str | None = None,
) -> Path:
    """One panel per cut; returns ``path`` (PNG).

    teacher: (E,) the teacher's mean return per episode on the evaluation tasks (its
    continuation past every cut). baselines: name -> (E,) mean curve or a constant
    (``"random"``, ``"no-op"``, ``"optimum"`` get fixed styles).
    """
    return _save(cutoff_fig(teacher, panels, baselines, ylabel, suptitle), path)


def panel_title(title: str, panels: int) -> str:
    """``title`` wrapped to what fits above one of ``panels`` panels side by side across
    :data:`FIG_WIDTH` (about 0.6 of the font size a character, less the axis labels), so
    that neighbouring titles do not run into each other; a title that fits stays on one
    line."""
    chars = FIG_WIDTH / panels * 72 / (0.6 * STYLE["axes.titlesize"]) - 4
    return textwrap.fill(title, width=max(12, int(chars)))


def panels_fig(panels: list[CurvesPanel], xlabel: str, vlines: dict[str, float] | None = None,
               title: str | None = None) -> plt.Figure:
    """The figure of :func:`panels_figure` (not saved)."""
    n = len(panels)
    with report_style():
        fig, axes = plt.subplots(1, n, figsize=(FIG_WIDTH, 4.6), squeeze=False,
                                 layout="constrained")
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        names = list(dict.fromkeys(k for p in panels for k in p.curves))
        for ax, p in zip(axes.flat, panels, strict=True):
            for i, (label, (x0, x1)) in enumerate(p.spans.items()):
                ax.axvspan(x0, x1, color="0.5", alpha=0.12 + 0.08 * i, lw=0)
                ax.annotate(label, ((x0 + x1) / 2, 0.02), xycoords=("data", "axes fraction"),
                            ha="center", va="bottom")
            for name, c in p.curves.items():
                _band(ax, c, name, colors[names.index(name) % len(colors)])
            for name, x in (vlines or {}).items():
                ax.axvline(x, color="black", lw=0.8, ls=":", label=name)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(p.ylabel)
            ax.set_title(panel_title(p.title, n))
        _legend_below(fig, list(axes.flat))
        if title:
            fig.suptitle(title)
    return fig


def panels_figure(path: Path, panels: list[CurvesPanel], xlabel: str,
                  vlines: dict[str, float] | None = None, title: str | None = None) -> Path:
    """Panels of mean curves with CI bands side by side, one colour per curve name across
    panels, labelled vertical lines on every panel; returns ``path`` (PNG)."""
    return _save(panels_fig(panels, xlabel, vlines, title), path)


def curves_figure(
    path: Path,
    curves: dict[str, CurveCI],
    xlabel: str,
    ylabel: str,
    vlines: dict[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Mean curves with CI bands, each (X,), one colour each; optional labelled vlines."""
    return panels_figure(path, [CurvesPanel(title or "", ylabel, curves)], xlabel, vlines)


def intervals_fig(labels: list[str], panels: dict[str, list[tuple[float, float, float]]],
                  marked: list[bool], marked_label: str = "marked",
                  title: str | None = None) -> plt.Figure:
    """The figure of :func:`intervals_figure` (not saved)."""
    n = len(labels)
    y = np.arange(n)[::-1]  # the first row on top
    with report_style():
        fig, axes = plt.subplots(1, len(panels), figsize=(FIG_WIDTH, 0.5 * n + 2.0),
                                 sharey=True, squeeze=False, layout="constrained")
        for ax, (xlabel, cis) in zip(axes.flat, panels.items(), strict=True):
            est = np.asarray(cis, np.float64).reshape(n, 3)
            ax.axvline(0.0, color="black", lw=0.8)
            for gated, color, face, label in ((False, "tab:red", "tab:red", "estimate (95% CI)"),
                                              (True, "0.55", "white", marked_label)):
                k = np.array([i for i in range(n) if marked[i] == gated
                              and np.isfinite(est[i]).all()], dtype=int)
                if k.size:
                    v, lo, hi = est[k].T
                    ax.errorbar(v, y[k], xerr=[v - lo, hi - v], fmt="o", color=color, mfc=face,
                                ms=6, capsize=3, lw=1.4, label=label)
            ax.set_xlabel(xlabel)
            ax.grid(axis="x", alpha=0.3)
            if not n:
                ax.text(0.5, 0.5, "nothing to show", ha="center", transform=ax.transAxes)
        axes[0, 0].set_yticks(y, labels)
        axes[0, 0].set_ylim(-0.6, max(n, 1) - 0.4)
        _legend_below(fig, list(axes.flat))
        if title:
            fig.suptitle(title)
    return fig


def intervals_figure(path: Path, labels: list[str],
                     panels: dict[str, list[tuple[float, float, float]]], marked: list[bool],
                     marked_label: str = "marked", title: str | None = None) -> Path:
    """Estimates with their CI bars, one row per label (the first on top), one panel per
    quantity sharing the rows (``panels``: x label -> one (value, low, high) per row; a row
    with a value that is not finite is left out), a line at 0; ``marked`` rows grey with
    hollow markers, named ``marked_label`` in the legend. Returns ``path`` (PNG)."""
    return _save(intervals_fig(labels, panels, marked, marked_label, title), path)


def _running_mean(y: np.ndarray, w: int) -> np.ndarray:
    """Mean of the last ``w`` values at each point (fewer at the start)."""
    c = np.cumsum(np.insert(y, 0, 0.0))
    n = np.minimum(np.arange(1, y.size + 1), w)
    idx = np.arange(1, y.size + 1)
    return (c[idx] - c[idx - n]) / n


def loss_fig(records: list[dict]) -> plt.Figure:
    """The figure of :func:`loss_figure` (not saved)."""
    step = np.array([r["step"] for r in records], np.float64)
    loss = np.array([r["loss"] for r in records], np.float64)
    val = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    with report_style():
        fig, ax = plt.subplots(figsize=(FIG_WIDTH, 4.2), layout="constrained")
        w = max(1, step.size // 50)
        ax.plot(step, loss, color="tab:blue", lw=0.6, alpha=0.35, label="training loss (batch)")
        if w > 1:
            ax.plot(step, _running_mean(loss, w), color="tab:blue", lw=1.6,
                    label=f"training loss (mean of the last {w} steps)")
        if val:
            vs, vl = zip(*val, strict=True)
            ax.plot(vs, vl, color="tab:red", marker="o", ms=4, lw=1.4,
                    label="validation loss (held-out learners)")
        ys = np.concatenate([loss, [v for _, v in val]])
        if ys.size and ys.min() > 0 and ys.max() / ys.min() > 10:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title("training and validation loss")
        _legend_below(fig, [ax])
    return fig


def read_metrics(path: Path) -> list[dict]:
    """The whole records of a ``metrics.jsonl`` (a torn last line is skipped)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "step" in rec and "loss" in rec:
            out.append(rec)
    return out


def loss_figure(metrics: Path, path: Path) -> Path | None:
    """The training loss (per batch, and its running mean) and the validation loss of a
    ``metrics.jsonl``, as a PNG at ``path``; None when it holds no record yet."""
    records = read_metrics(metrics) if Path(metrics).is_file() else []
    if not records:
        return None
    return _save(loss_fig(records), path)


__all__ = ["FIG_WIDTH", "MIN_FONT_PT", "CurvesPanel", "CutPanel", "curves_figure",
           "cutoff_fig", "cutoff_figure", "intervals_fig", "intervals_figure", "loss_fig",
           "loss_figure", "panel_title", "panels_fig", "panels_figure", "read_metrics",
           "report_style"]
