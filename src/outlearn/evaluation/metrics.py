"""Metrics over learning curves, each with a 95% confidence interval.

Curves are numpy arrays shaped (seeds, tasks, episodes): one return per episode of
each (seed, task) *unit*. The units are independent, so every interval here is a
percentile bootstrap over units (tasks x seeds), seeded and reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from outlearn.stats import Estimate, bootstrap_ci, difference_ci, iqm


@dataclass(frozen=True)
class CurveCI:
    """A mean learning curve with its pointwise confidence band, each (E,)."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    confidence: float = 0.95


@dataclass(frozen=True)
class DataCeiling:
    """What the teacher's data shows.

    ``curve``: (E,) the teacher's mean return at each episode index across learners;
    ``best_episode``: the index (0-based) where the (trailing-window) curve peaks;
    ``units``: (L,) each learner's mean return over that window, the bootstrap units;
    ``best``: the mean of ``units`` with its CI.
    """

    curve: np.ndarray
    best_episode: int
    units: np.ndarray
    best: Estimate


def episode_returns_from_traj(
    rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, num_episodes: int
) -> np.ndarray:
    """Returns of the first ``num_episodes`` complete episodes of each learner.

    rewards, terminated, truncated: (B, S). An episode ends at a step where
    ``terminated | truncated`` (:func:`outlearn.histories.episode_returns`). Returns
    (B, num_episodes) float64; NaN where a learner finished fewer episodes.
    """
    from outlearn.histories import episode_returns

    ret, _ = episode_returns(rewards, terminated, truncated)
    out = np.full((ret.shape[0], num_episodes), np.nan)
    k = min(num_episodes, ret.shape[1])
    out[:, :k] = ret[:, :k]
    return out


def cumulative_regret(expected_rewards: np.ndarray, optimal: np.ndarray) -> np.ndarray:
    """Cumulative pseudo-regret: expected_rewards (B, S), optimal (B,) -> (B, S).

    Entry [b, t] is sum_{u<=t} (optimal[b] - expected_rewards[b, u]).
    """
    er = np.asarray(expected_rewards, dtype=np.float64)
    opt = np.asarray(optimal, dtype=np.float64)
    return np.cumsum(opt[:, None] - er, axis=1)


def units(curves: np.ndarray) -> np.ndarray:
    """(seeds, tasks, E) -> (seeds * tasks, E): one row per independent unit."""
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim != 3:
        raise ValueError(f"curves must be (seeds, tasks, episodes); got shape {c.shape}")
    return c.reshape(-1, c.shape[-1])


def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) multinomial counts: how often each unit is drawn per resample."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    counts = np.zeros((n_resamples, n))
    np.add.at(counts, (np.arange(n_resamples)[:, None], idx), 1.0)
    return counts


def mean_curve_ci(
    curves: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> CurveCI:
    """Mean curve over units with a pointwise percentile-bootstrap band.

    curves: (seeds, tasks, E). Units are resampled once (the same draws for every
    episode, so one matmul serves the whole curve); the band is the percentile
    interval of the resampled means, widened if needed to contain the mean.
    """
    u = units(curves)
    mean = u.mean(axis=0)
    n = u.shape[0]
    if n < 2:
        return CurveCI(mean, mean.copy(), mean.copy(), confidence)
    counts = _resample_counts(n, n_resamples, seed)
    boot = counts @ u / n  # (R, E)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return CurveCI(mean, np.minimum(low, mean), np.maximum(high, mean), confidence)


def iqm_ci(values: np.ndarray, seed: int = 0) -> Estimate:
    """Interquartile mean of per-unit values (any shape, flattened) with its CI."""
    return bootstrap_ci(np.asarray(values, dtype=np.float64).ravel(), "iqm", seed=seed)


def asymptote_units(curves: np.ndarray, last_n: int) -> np.ndarray:
    """Each unit's mean return over its last ``last_n`` episodes: (S, T, E) -> (S*T,)."""
    u = units(curves)
    if not 1 <= last_n <= u.shape[1]:
        raise ValueError(f"last_n={last_n} must be in [1, {u.shape[1]}] (the number of episodes)")
    return u[:, -last_n:].mean(axis=1)


def asymptote(curves: np.ndarray, last_n: int, seed: int = 0) -> Estimate:
    """Mean over units of each unit's mean return over the last ``last_n`` episodes."""
    return bootstrap_ci(asymptote_units(curves, last_n), seed=seed)


def data_ceiling(returns: np.ndarray, window: int = 1, seed: int = 0) -> DataCeiling:
    """The best the teacher's kept data shows.

    returns: (L, E) each teacher learner's episode returns (NaN-padded, e.g. from
    ``outlearn.histories.episode_returns`` on a cut history). The mean curve is taken
    across learners; it is smoothed by a trailing mean over ``window`` episodes, and the
    ceiling is that smoothed curve's peak, with each learner's mean over the same
    window as a bootstrap unit.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 1:
        raise ValueError(f"returns must be (learners, episodes); got shape {r.shape}")
    curve = np.nanmean(r, axis=0)
    if not 1 <= window <= curve.size:
        raise ValueError(f"window={window} must be in [1, {curve.size}] (episodes kept)")
    csum = np.concatenate([[0.0], np.cumsum(curve)])
    smooth = (csum[window:] - csum[:-window]) / window  # smooth[j] ends at episode j+window-1
    best = int(np.nanargmax(smooth)) + window - 1
    unit_vals = np.nanmean(r[:, best - window + 1 : best + 1], axis=1)
    unit_vals = unit_vals[np.isfinite(unit_vals)]
    return DataCeiling(curve, best, unit_vals, bootstrap_ci(unit_vals, seed=seed))


def data_ceiling_from_history(
    history: Any, split: str | None = "train", window: int = 1, seed: int = 0
) -> DataCeiling:
    """:func:`data_ceiling` of an open ``outlearn.histories.History`` (a cut one, say),
    over its learners on ``split`` ("train", "test" or None: all)."""
    idx = history.learners(split)
    if idx.size == 0:
        raise ValueError(f"the history has no learners on split {split!r}: pick another split")
    return data_ceiling(history.episode_returns[idx], window=window, seed=seed)


def _diff_ci(
    a: np.ndarray, b: np.ndarray, paired: bool, confidence: float, n_resamples: int, seed: int
) -> Estimate:
    """CI of mean(a) - mean(b); paired units resampled together, else independently."""
    return difference_ci(a, b, paired, confidence, n_resamples, seed)


def exceedance(
    student_curves: np.ndarray,
    ceiling: DataCeiling | float,
    last_n: int,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Student asymptote - data ceiling, with a CI.

    student_curves: (seeds, tasks, E). ``ceiling``: a :class:`DataCeiling` (its units,
    the teacher learners, are resampled independently of the student's units) or a
    fixed number.
    """
    s = asymptote_units(student_curves, last_n)
    if isinstance(ceiling, DataCeiling):
        return _diff_ci(s, ceiling.units, False, confidence, n_resamples, seed)
    est = bootstrap_ci(s - float(ceiling), confidence=confidence, n_resamples=n_resamples,
                       seed=seed)
    return est


def continuation_gap(
    teacher_curves: np.ndarray,
    student_curves: np.ndarray,
    last_n: int,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Teacher's return at the horizon - the student's, with a CI.

    Both (seeds, tasks, E), the teacher run fresh past the cut. "At the horizon" is the
    mean over the last ``last_n`` episodes of each unit. When both share a shape they
    ran on the same (seed, task) units, so the difference is bootstrapped paired.
    """
    t = np.asarray(teacher_curves, dtype=np.float64)
    s = np.asarray(student_curves, dtype=np.float64)
    paired = t.shape[:2] == s.shape[:2]
    a, b = asymptote_units(t, last_n), asymptote_units(s, last_n)
    return _diff_ci(a, b, paired, confidence, n_resamples, seed)


def in_context_improvement(curves: np.ndarray, n: int, seed: int = 0) -> Estimate:
    """How much a learner improves within its run: each unit's mean return over its last
    ``n`` episodes minus over its first ``n``, averaged over units, with its CI.

    A frozen student whose context never spans an episode behaves alike in every episode,
    so its improvement is 0 up to noise; a learner that learns has a positive one.
    """
    u = units(curves)
    if not 1 <= n <= u.shape[1] // 2:
        raise ValueError(f"n={n} must be in [1, {u.shape[1] // 2}]: the first and last n of "
                         f"{u.shape[1]} episodes may not overlap")
    return bootstrap_ci(u[:, -n:].mean(axis=1) - u[:, :n].mean(axis=1), seed=seed)


def episodes_to_threshold(curve: np.ndarray, threshold: float) -> np.ndarray | float:
    """Number of episodes until ``curve`` first reaches ``threshold`` (>=), 1-based.

    curve: (..., E) -> (...) float; NaN where it never does. A 1-d curve gives a float.
    """
    c = np.asarray(curve, dtype=np.float64)
    hit = c >= threshold
    first = np.argmax(hit, axis=-1).astype(np.float64) + 1.0
    out = np.where(hit.any(axis=-1), first, np.nan)
    return float(out) if out.ndim == 0 else out


def episodes_to_threshold_ci(curves: np.ndarray, threshold: float, confidence: float = 0.95,
                             n_resamples: int = 2000, seed: int = 0) -> Estimate:
    """Episodes until the mean curve over units first reaches ``threshold`` (1-based), with
    a percentile-bootstrap CI over units (resampled once; the same draws for every episode).

    A mean curve (or a resample's) that never reaches it counts as infinitely slow: the
    value or an end of the CI is then ``inf``.
    """
    u = units(curves)
    value = episodes_to_threshold(u.mean(axis=0), threshold)
    point = float("inf") if np.isnan(value) else float(value)
    n = u.shape[0]
    if n < 2:
        return Estimate(point, point, point, confidence)
    boot = _resample_counts(n, n_resamples, seed) @ u / n
    hits = episodes_to_threshold(boot, threshold)
    hits = np.where(np.isnan(hits), np.inf, hits)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(hits, [alpha, 1.0 - alpha], method="lower")
    return Estimate(point, min(float(lo), point), max(float(hi), point), confidence)


def speedup_ci(reference: np.ndarray, curves: np.ndarray, threshold: float,
               confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Estimate:
    """How many times faster ``curves`` reach ``threshold`` than ``reference`` does:
    (reference's episodes to threshold) / (theirs), each from the mean curve over its own
    units, with a percentile-bootstrap CI resampling the two sets of units independently.
    A curve that never reaches the threshold is infinitely slow (ratio 0 or inf)."""
    a, b = units(reference), units(curves)

    def ratio(ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
        ta, tb = np.where(np.isnan(ta), np.inf, ta), np.where(np.isnan(tb), np.inf, tb)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = ta / tb
        return np.where(np.isinf(ta) & np.isinf(tb), np.nan, r)

    value = float(ratio(np.asarray(episodes_to_threshold(a.mean(axis=0), threshold)),
                        np.asarray(episodes_to_threshold(b.mean(axis=0), threshold))))
    ra = _resample_counts(a.shape[0], n_resamples, seed) @ a / a.shape[0]
    rb = _resample_counts(b.shape[0], n_resamples, seed + 1) @ b / b.shape[0]
    boot = ratio(episodes_to_threshold(ra, threshold), episodes_to_threshold(rb, threshold))
    boot = boot[~np.isnan(boot)]
    if np.isnan(value) or boot.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), confidence)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], method="lower")
    return Estimate(value, min(float(lo), value), max(float(hi), value), confidence)


__all__ = [
    "CurveCI",
    "DataCeiling",
    "asymptote",
    "asymptote_units",
    "continuation_gap",
    "cumulative_regret",
    "data_ceiling",
    "data_ceiling_from_history",
    "episode_returns_from_traj",
    "episodes_to_threshold",
    "episodes_to_threshold_ci",
    "exceedance",
    "in_context_improvement",
    "iqm",
    "iqm_ci",
    "mean_curve_ci",
    "speedup_ci",
    "units",
]
