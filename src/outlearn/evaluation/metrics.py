"""Metrics over learning curves, each with a 95% confidence interval.

Curves are numpy arrays shaped (students, eval seeds, tasks, episodes) for trained
students, or (seeds, tasks, episodes) for a learner run fresh (each seed on each task an
independent learner, so its seeds are repeats within a task): one return per episode.
Every student ran on the same tasks, so students and tasks are crossed random effects and
every interval here is a crossed one (:mod:`outlearn.stats`): it carries the variation
between students and between tasks. References (the teacher run fresh, random, a data
ceiling) enter a comparison through their mean on each task, on the same tasks as the
student.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from outlearn.stats import (
    Estimate,
    bootstrap_ci,
    crossed_band,
    crossed_bootstrap_ci,
    crossed_mean_ci,
    crossed_weights,
    iqm,
)


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
    ``best``: the mean of ``units`` (or of ``per_task``) with its CI;
    ``tasks``, ``per_task``: the tasks it was measured on (those the students are judged
    on) and the mean of ``units`` on each, (T,); None when measured over learners alone.
    """

    curve: np.ndarray
    best_episode: int
    units: np.ndarray
    best: Estimate
    tasks: np.ndarray | None = None
    per_task: np.ndarray | None = None


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


def window_returns(rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                   window: int) -> np.ndarray:
    """Mean return of the episodes that END in each window of ``window`` steps: (B, W).

    rewards, terminated, truncated: (B, S) steps of B runs; W = S // window (a trailing
    part window is dropped). For families whose episodes vary in length (MinAtar: an
    episode ends at the first miss), curves over steps compare learners that finish
    different numbers of episodes on one axis. An episode's return counts in the window
    its last step lies in; a window in which no episode ends is NaN, which cannot happen
    when ``window`` is at least the family's ``episode_len`` (every episode ends by then).
    """
    r = np.asarray(rewards, dtype=np.float64)
    done = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
    B, S = r.shape
    W = S // window
    if W < 1:
        raise ValueError(f"window={window} is longer than the run's {S} steps")
    cum = np.cumsum(r, axis=1)
    total = np.zeros((B, W))
    count = np.zeros((B, W))
    for b in range(B):
        ends = np.flatnonzero(done[b])
        at_end = cum[b, ends]
        ret = np.diff(np.concatenate([[0.0], at_end]))
        w = ends // window
        keep = w < W
        np.add.at(total[b], w[keep], ret[keep])
        np.add.at(count[b], w[keep], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1.0), np.nan)


def cumulative_regret(expected_rewards: np.ndarray, optimal: np.ndarray) -> np.ndarray:
    """Cumulative pseudo-regret: expected_rewards (B, S), optimal (B,) -> (B, S).

    Entry [b, t] is sum_{u<=t} (optimal[b] - expected_rewards[b, u]).
    """
    er = np.asarray(expected_rewards, dtype=np.float64)
    opt = np.asarray(optimal, dtype=np.float64)
    return np.cumsum(opt[:, None] - er, axis=1)


def cells(curves: np.ndarray) -> np.ndarray:
    """Each (learner, task) cell's curve, (S, T, E): students' curves (S, K, T, E) averaged
    over their K eval seeds (S trained students, crossed with the T tasks); a fresh
    learner's curves (K, T, E) averaged over its K seeds into one row (S = 1): each seed on
    each task is an independent learner, with nothing shared across tasks, so its seeds
    are repeats inside a task, not a crossed effect."""
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim == 4:
        return c.mean(axis=1)
    if c.ndim == 3:
        return c.mean(axis=0, keepdims=True)
    raise ValueError("curves must be (seeds, tasks, episodes) of a fresh learner or (students, "
                     f"eval seeds, tasks, episodes); got shape {c.shape}")


def per_task(curves: np.ndarray) -> np.ndarray:
    """A reference's mean curve on each task, (T, E): its learners averaged."""
    return cells(curves).mean(axis=0)


def mean_curve_ci(curves: np.ndarray, confidence: float = 0.95) -> CurveCI:
    """Mean curve over learners and tasks with a pointwise band: the crossed t interval
    of :func:`outlearn.stats.crossed_band` at every episode (students and tasks random)."""
    mean, low, high = crossed_band(cells(curves), confidence)
    return CurveCI(mean, low, high, confidence)


def iqm_ci(values: np.ndarray, seed: int = 0) -> Estimate:
    """Interquartile mean of independent values (any shape, flattened) with its CI."""
    return bootstrap_ci(np.asarray(values, dtype=np.float64).ravel(), "iqm", seed=seed)


def last_episodes(episodes: int, last_n: int | None) -> int:
    """Episodes at the end of a run of ``episodes`` that make its asymptote: ``last_n`` when
    given, else a tenth of the run (at least 1)."""
    return last_n or max(1, episodes // 10)


def asymptote_cells(curves: np.ndarray, last_n: int) -> np.ndarray:
    """Each cell's mean return over its last ``last_n`` episodes: (S, [K,] T, E) -> (S, T)."""
    c = cells(curves)
    if not 1 <= last_n <= c.shape[-1]:
        raise ValueError(f"last_n={last_n} must be in [1, {c.shape[-1]}] (the number of episodes)")
    return c[..., -last_n:].mean(axis=-1)


def asymptote(curves: np.ndarray, last_n: int) -> Estimate:
    """Mean over learners and tasks of each cell's mean return over its last ``last_n``
    episodes, with its crossed CI."""
    return crossed_mean_ci(asymptote_cells(curves, last_n))


def data_ceiling(returns: np.ndarray, window: int = 1, task_ids: np.ndarray | None = None,
                 tasks: np.ndarray | None = None) -> DataCeiling:
    """The best the teacher's kept data shows.

    returns: (L, E) each teacher learner's episode returns (NaN-padded, e.g. from
    ``outlearn.histories.episode_returns`` on a cut history). The mean curve is taken
    across learners; it is smoothed by a trailing mean over ``window`` episodes, and the
    ceiling is that smoothed curve's peak; each learner's mean over the same window is a
    unit. With ``task_ids`` (L,) and ``tasks`` (T,) (the tasks a student is judged on, in
    its order), the units are averaged per task (``per_task``, (T,)) and the CI is over
    tasks; otherwise the learners are the independent units.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 1:
        raise ValueError(f"returns must be (learners, episodes); got shape {r.shape}")
    with warnings.catch_warnings():  # an episode no learner reached is NaN: fine
        warnings.simplefilter("ignore", RuntimeWarning)
        curve = np.nanmean(r, axis=0)
    if not 1 <= window <= curve.size:
        raise ValueError(f"window={window} must be in [1, {curve.size}] (episodes kept)")
    csum = np.concatenate([[0.0], np.cumsum(curve)])
    smooth = (csum[window:] - csum[:-window]) / window  # smooth[j] ends at episode j+window-1
    best = int(np.nanargmax(smooth)) + window - 1
    unit_vals = np.nanmean(r[:, best - window + 1 : best + 1], axis=1)
    if tasks is None:
        unit_vals = unit_vals[np.isfinite(unit_vals)]
        return DataCeiling(curve, best, unit_vals, crossed_mean_ci(unit_vals[None, :]))
    ids = np.asarray(task_ids)
    pt = []
    for t in np.asarray(tasks):
        v = unit_vals[(ids == t) & np.isfinite(unit_vals)]
        if v.size == 0:
            raise ValueError(f"the data has no learner on task {t}: the ceiling must be "
                             "measured on the tasks the students are judged on")
        pt.append(v.mean())
    per = np.asarray(pt)
    return DataCeiling(curve, best, unit_vals, crossed_mean_ci(per[None, :]),
                       np.asarray(tasks), per)


def data_ceiling_from_history(history: Any, tasks: np.ndarray | None = None,
                              split: str | None = "test", window: int = 1) -> DataCeiling:
    """:func:`data_ceiling` of an open ``outlearn.histories.History`` (a cut one, say) over
    its learners on ``split`` ("train", "test" or None: all), per task of ``tasks`` (the
    held-out tasks the students run on: ceilings task for task) when given."""
    idx = history.learners(split)
    if tasks is not None:
        idx = idx[np.isin(history.task_ids[idx], np.asarray(tasks))]
    if idx.size == 0:
        raise ValueError(f"the history has no learners on split {split!r} (and the given "
                         "tasks): pick another split")
    return data_ceiling(history.episode_returns[idx], window=window,
                        task_ids=history.task_ids[idx], tasks=tasks)


def versus(curves: np.ndarray, reference: np.ndarray | DataCeiling | float,
           last_n: int) -> Estimate:
    """A learner's asymptote minus a reference's on the same tasks, with a crossed CI.

    ``reference``: curves of a learner run on the same tasks (reduced to its mean on each
    task), a :class:`DataCeiling` measured per task on those tasks, or a number. The
    reference's own noise on a task is part of that task's effect, so the interval over
    (students, tasks) carries it.
    """
    return crossed_mean_ci(versus_cells(curves, reference, last_n))


def versus_cells(curves: np.ndarray, reference: np.ndarray | DataCeiling | float,
                 last_n: int) -> np.ndarray:
    """The cells (students, tasks) whose grand mean :func:`versus` estimates: each cell's
    asymptote minus the reference's on its task."""
    s = asymptote_cells(curves, last_n)
    if isinstance(reference, DataCeiling):
        if reference.per_task is None or reference.per_task.size != s.shape[1]:
            raise ValueError("the data ceiling must be measured per task on the student's "
                             "tasks (data_ceiling(..., task_ids, tasks))")
        ref: np.ndarray | float = reference.per_task[None, :]
    elif isinstance(reference, int | float):
        ref = float(reference)
    else:
        per_task = asymptote_cells(reference, last_n).mean(axis=0)[None, :]
        if per_task.shape[1] != s.shape[1]:
            raise ValueError(f"the reference ran on {per_task.shape[1]} tasks, the learner on "
                             f"{s.shape[1]}: run both on the same tasks")
        ref = per_task
    return s - ref


def exceedance(student_curves: np.ndarray, ceiling: DataCeiling | float,
               last_n: int) -> Estimate:
    """Student asymptote - data ceiling (per task, on the student's tasks), with a CI."""
    return versus(student_curves, ceiling, last_n)


def exceedance_difference(curves: np.ndarray, baseline_curves: np.ndarray,
                          ceiling: DataCeiling, last_n: int,
                          baseline_ceiling: DataCeiling | None = None) -> Estimate:
    """One student's exceedance minus another's, paired, with a crossed CI.

    ``curves`` and ``baseline_curves``: (S, K, T, E) of two kinds of student trained on
    the same history with the same S training seeds (in the same order) and run on the
    same T tasks with the same K eval seeds; ``ceiling`` (and ``baseline_ceiling``,
    default the same) measured per task on those tasks. Each (seed, task) cell is one
    paired contrast: the cell's exceedance (:func:`exceedance`'s cells) of the student
    minus the baseline's. Their grand mean is the difference of the two exceedances, and
    its interval is :func:`outlearn.stats.crossed_mean_ci` over those (S, T) differences:

    * paired by task, because both ran on the same tasks: a task that is hard (or easy)
      for both cancels in its cell instead of entering the variance twice, as it would in
      a difference of the two separate intervals;
    * paired by training seed, with seeds a random effect crossed with tasks (the ANOVA
      variance and Satterthwaite t interval of :mod:`outlearn.stats`): the S seeds are
      independent draws of a pair of students, whether or not sharing a seed makes the two
      alike (if it does, what they share cancels too; if not, pairing by seed is a fixed
      pairing of independent students and the interval stays valid);
    * a difference of means over the same (S, T) cells is the mean of the cell
      differences, so this is exact: no delta method
      (:func:`~outlearn.stats.crossed_linear_ci` with these cells as the influence gives
      the same interval), and not the flat bootstrap of independent units
      (:func:`~outlearn.stats.difference_ci`), which leaves the between-seed variation out.

    With one ceiling for both (one cut) the ceilings cancel: it is the difference of the
    two asymptotes on the same cells.
    """
    a = versus_cells(curves, ceiling, last_n)
    b = versus_cells(baseline_curves, baseline_ceiling or ceiling, last_n)
    if a.shape != b.shape:
        raise ValueError(f"paired students need the same training seeds and tasks; got "
                         f"(seeds, tasks) {a.shape} and {b.shape}")
    return crossed_mean_ci(a - b)


def continuation_gap(teacher_curves: np.ndarray, student_curves: np.ndarray,
                     last_n: int) -> Estimate:
    """Teacher's return at the horizon - the student's, on the same tasks, with a CI.

    The teacher run fresh past the cut, (eval seeds, tasks, E); "at the horizon" is the
    mean over the last ``last_n`` episodes.
    """
    v = versus(student_curves, teacher_curves, last_n)
    return Estimate(-v.value, -v.high, -v.low, v.confidence)


def in_context_improvement(curves: np.ndarray, n: int) -> Estimate:
    """How much a learner improves within its run: each cell's mean return over its last
    ``n`` episodes minus over its first ``n``, averaged, with its crossed CI.

    A frozen student whose context never spans an episode behaves alike in every episode,
    so its improvement is 0 up to noise; a learner that learns has a positive one.
    """
    c = cells(curves)
    if not 1 <= n <= c.shape[-1] // 2:
        raise ValueError(f"n={n} must be in [1, {c.shape[-1] // 2}]: the first and last n of "
                         f"{c.shape[-1]} episodes may not overlap")
    return crossed_mean_ci(c[..., -n:].mean(axis=-1) - c[..., :n].mean(axis=-1))


def episodes_to_threshold(curve: np.ndarray, threshold: float) -> np.ndarray | float:
    """Number of episodes until ``curve`` first reaches ``threshold`` (>=), 1-based.

    curve: (..., E) -> (...) float; NaN where it never does. A 1-d curve gives a float.
    """
    c = np.asarray(curve, dtype=np.float64)
    hit = c >= threshold
    first = np.argmax(hit, axis=-1).astype(np.float64) + 1.0
    out = np.where(hit.any(axis=-1), first, np.nan)
    return float(out) if out.ndim == 0 else out


def _inf(x: np.ndarray | float) -> np.ndarray:
    a = np.asarray(x, np.float64)
    return np.where(np.isnan(a), np.inf, a)


def _anchor(c: np.ndarray, at: float) -> np.ndarray:
    """The cells at episode ``at`` (1-based; the last one when never reached)."""
    e = c.shape[-1] if not np.isfinite(at) else int(at)
    return c[..., e - 1]


def episodes_to_threshold_ci(curves: np.ndarray, threshold: float,
                             confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Episodes until the mean curve first reaches ``threshold`` (1-based), with a two-way
    bootstrap CI (students and tasks resampled; :func:`outlearn.stats.crossed_bootstrap_ci`).

    A mean curve (or a resample's) that never reaches it counts as infinitely slow: the
    value or an end of the CI is then ``inf``.
    """
    c = cells(curves)
    point = float(_inf(episodes_to_threshold(c.mean(axis=(0, 1)), threshold)))
    stat = lambda ws, wt: _inf(episodes_to_threshold(  # noqa: E731
        np.einsum("rs,ste,rt->re", ws, c, wt), threshold))
    return crossed_bootstrap_ci(stat, point, _anchor(c, point), confidence, seed=seed)


def speedup_ci(reference: np.ndarray, curves: np.ndarray, threshold: float,
               confidence: float = 0.95, seed: int = 0) -> Estimate:
    """How many times faster ``curves`` reach ``threshold`` than ``reference`` does:
    (reference's episodes to threshold) / (theirs), each from its mean curve, with a
    two-way bootstrap CI: the tasks (shared: both ran on the same ones) resampled once per
    draw for both, each one's students independently. A curve that never reaches the
    threshold is infinitely slow (ratio 0 or inf; NaN when neither does)."""
    a, b = cells(reference), cells(curves)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"speed-ups compare runs on the same tasks; got {a.shape[1]} and "
                         f"{b.shape[1]} tasks")

    def ratio(ta: np.ndarray | float, tb: np.ndarray | float) -> np.ndarray:
        ta, tb = _inf(ta), _inf(tb)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = ta / tb
        return np.where(np.isinf(ta) & np.isinf(tb), np.nan, r)

    value = float(ratio(episodes_to_threshold(a.mean(axis=(0, 1)), threshold),
                        episodes_to_threshold(b.mean(axis=(0, 1)), threshold)))
    if np.isnan(value):
        return Estimate(float("nan"), float("nan"), float("nan"), confidence)
    wa, _ = crossed_weights(a.shape[0], 1, seed=seed + 1)

    def stat(ws: np.ndarray, wt: np.ndarray) -> np.ndarray:
        ca = np.einsum("rs,ste,rt->re", wa, a, wt)
        cb = np.einsum("rs,ste,rt->re", ws, b, wt)
        r = ratio(episodes_to_threshold(ca, threshold), episodes_to_threshold(cb, threshold))
        return r  # NaN where neither resample reaches it: left out of the interval

    at = float(_inf(episodes_to_threshold(b.mean(axis=(0, 1)), threshold)))
    return crossed_bootstrap_ci(stat, value, _anchor(b, at), confidence, seed=seed)


__all__ = [
    "CurveCI",
    "window_returns",
    "DataCeiling",
    "asymptote",
    "asymptote_cells",
    "cells",
    "continuation_gap",
    "cumulative_regret",
    "data_ceiling",
    "data_ceiling_from_history",
    "episode_returns_from_traj",
    "episodes_to_threshold",
    "episodes_to_threshold_ci",
    "exceedance",
    "exceedance_difference",
    "in_context_improvement",
    "iqm",
    "iqm_ci",
    "last_episodes",
    "mean_curve_ci",
    "per_task",
    "speedup_ci",
    "versus",
    "versus_cells",
]
