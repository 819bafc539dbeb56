"""Learning-curve figures for reports (matplotlib, Agg backend, PNG written atomically).

:func:`cutoff_figure` draws one panel per cut: the teacher's curve, solid over the
episodes the student saw and dashed over the ones it did not; the student's mean curve
with its 95% CI band; the baselines (random, no-op) and the optimum; and the data
ceiling of that cut. :func:`curves_figure` draws any set of mean curves with CI bands
(regret curves of the horizon-extrapolation check, for example).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from outlearn.atomic import atomic_path  # noqa: E402
from outlearn.evaluation.metrics import CurveCI  # noqa: E402

_BASELINE_STYLE = {"random": ("tab:gray", ":"), "no-op": ("tab:brown", "-."),
                   "optimum": ("black", "--")}


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


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
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
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), sharey=True,
                             squeeze=False)
    for ax, p in zip(axes.flat, panels, strict=False):
        _teacher(ax, np.asarray(teacher, np.float64), p.seen_episodes)
        _band(ax, p.student, "student (95% CI)", "tab:red")
        for name, b in baselines.items():
            color, ls = _BASELINE_STYLE.get(name, ("tab:olive", ":"))
            if np.ndim(b) == 0:
                ax.axhline(float(b), color=color, ls=ls, lw=1.0, label=name)
            else:
                ax.plot(np.arange(1, len(b) + 1), b, color=color, ls=ls, lw=1.0, label=name)
        if p.ceiling is not None:
            ax.axhline(p.ceiling, color="tab:green", lw=1.0, ls=(0, (5, 2, 1, 2)),
                       label="data ceiling")
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel("episode")
    for ax in axes.flat[n:]:
        ax.axis("off")
    axes[0, 0].set_ylabel(ylabel)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def curves_figure(
    path: Path,
    curves: dict[str, CurveCI],
    xlabel: str,
    ylabel: str,
    vlines: dict[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Mean curves with CI bands, each (X,), one colour each; optional labelled vlines."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, c) in enumerate(curves.items()):
        _band(ax, c, name, colors[i % len(colors)])
    for name, x in (vlines or {}).items():
        ax.axvline(x, color="black", lw=0.8, ls=":")
        ax.annotate(name, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                    ha="left", va="top")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["CutPanel", "curves_figure", "cutoff_figure"]
