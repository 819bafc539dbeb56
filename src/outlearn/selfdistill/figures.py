"""Figures and table helpers shared by the self-distillation and self-training studies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from outlearn.atomic import atomic_path
from outlearn.stats import Estimate, bootstrap_ci


def curves_figure(path: Path, panels: dict[str, dict[str, np.ndarray]], xlabel: str,
                  ylabel: str, logy: bool = False) -> Path:
    """One panel per key; each series is (G + 1, R) values, drawn as mean +- 1.96 s.e.

    With R = 1 the band collapses to the line. Written atomically with matplotlib's Agg
    backend.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels.items(), strict=True):
        for label, y in series.items():
            y = np.asarray(y, dtype=float).reshape(len(y), -1)
            mean = y.mean(axis=1)
            half = 1.96 * y.std(axis=1) / np.sqrt(y.shape[1])
            x = np.arange(len(mean))
            ax.plot(x, mean, label=label)
            ax.fill_between(x, mean - half, mean + half, alpha=0.2)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if logy:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path


def ci(values: np.ndarray, seed: int = 0) -> Estimate:
    """Bootstrap 95% CI of the mean over independent repeats ``values`` (R,)."""
    return bootstrap_ci(np.asarray(values, dtype=float), seed=seed)


def z_score(values: np.ndarray, expected: float) -> float:
    """(mean - expected) / standard error of the mean, over repeats ``values`` (R,)."""
    v = np.asarray(values, dtype=float)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    diff = v.mean() - expected
    if se == 0.0:
        return 0.0 if abs(diff) < 1e-12 else float(np.inf)
    return float(diff / se)
