"""Confidence intervals by bootstrap (scipy), seeded and reproducible."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float
    confidence: float = 0.95

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.low:.3g}, {self.high:.3g}]"

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of values along ``axis``."""
    return sps.trim_mean(x, 0.25, axis=axis)


def bootstrap_ci(
    samples: np.ndarray,
    statistic: str = "mean",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Bootstrap CI of the mean (or IQM) of independent units.

    ``samples``: shape (n,), one value per independent unit (a task x seed pair,
    for example). With a single unit, or no spread, the interval collapses to the value.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one sample")
    fn = {"mean": np.mean, "iqm": iqm}[statistic]
    value = float(fn(x))
    if x.size < 2 or np.all(x == x[0]):
        return Estimate(value, value, value, confidence)
    res = sps.bootstrap(
        (x,),
        lambda a, axis: fn(a, axis=axis),
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Estimate(value, min(lo, value), max(hi, value), confidence)


def difference_ci(
    a: np.ndarray,
    b: np.ndarray,
    paired: bool = False,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """mean(a) - mean(b) with a percentile-bootstrap CI.

    Paired units (a[i] and b[i] from the same task and seed) are resampled together;
    otherwise a (n,) and b (m,) are resampled independently.
    """
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if paired:
        return bootstrap_ci(x - y, confidence=confidence, n_resamples=n_resamples, seed=seed)
    value = float(x.mean() - y.mean())
    rng = np.random.default_rng(seed)
    bx = x[rng.integers(0, x.size, (n_resamples, x.size))].mean(axis=1)
    by = y[rng.integers(0, y.size, (n_resamples, y.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(bx - by, [alpha, 1.0 - alpha])
    return Estimate(value, min(float(lo), value), max(float(hi), value), confidence)
