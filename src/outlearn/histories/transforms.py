"""Transforms that studies apply to history files: cut-offs and episode subsampling.

Each reads a source history (a path or an open :class:`History`), writes a NEW file
atomically with the same layout and a provenance record appended to
``meta.provenance`` (``{"transform", "source", "args"}``), recomputes the episode arrays,
and returns the new file opened as a :class:`History` (close it, or use ``with``).

Arrays are ``(L, S)`` per step, ``(L, E)`` per episode, as in the schema.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from outlearn.core import Trajectory
from outlearn.errors import ConfigError
from outlearn.histories.io import History, write_history
from outlearn.histories.schema import (
    NEXT_OBS,
    PROBS,
    code_version,
    read_guard,
    split_code,
)

__all__ = ["cut_at_performance", "cut_at_step", "keep_every_kth_episode", "keep_train_tasks",
           "performance_curve"]

Source = str | Path | History


def _open(src: Source) -> tuple[History, bool]:
    """(history, whether we opened it and must close it)."""
    return (src, False) if isinstance(src, History) else (History(src), True)


def _chunk_steps(h: History) -> int:
    chunks = h.dataset("obs").chunks
    return int(chunks[1]) if chunks else h.num_steps


def _read_steps(h: History, sel: slice = slice(None),
                learners: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every per-step field, steps ``sel`` of every learner (or of the increasing indices
    ``learners``): (L, S') or (L, S', A)."""
    names = h.step_fields
    rows = slice(None) if learners is None else learners
    with read_guard(h.path):
        return {k: h.dataset(k)[rows, sel] for k in names}


def _traj(a: dict[str, np.ndarray]) -> Trajectory:
    return Trajectory(a["obs"], a["actions"], a["rewards"], a["terminated"], a["truncated"],
                      a.get(PROBS), a["optimal_actions"], a["expected_rewards"], a.get(NEXT_OBS))


def _write_derived(h: History, dst: str | Path, arrays: dict[str, np.ndarray],
                   transform: str, args: dict[str, Any],
                   learners: np.ndarray | None = None) -> History:
    source = str(Path(h.path).resolve()) if isinstance(h.path, Path) else repr(h.path)
    if isinstance(h.path, Path) and Path(dst).resolve() == Path(h.path).resolve():
        raise ConfigError(f"{transform}: the destination {dst} is the source file; "
                          "write the result to a new path")
    step = {"transform": transform, "source": source, "args": args}
    meta = replace(h.meta, provenance=(*h.meta.provenance, step), code_version=code_version())
    info = h.learner_info() if learners is None else h.learner_info().select(learners)
    path = write_history(dst, _traj(arrays), meta, info, chunk_steps=_chunk_steps(h))
    return History(path)


def cut_at_step(src: Source, step: int, dst: str | Path) -> History:
    """Keep steps ``[0, step)`` of every learner; a trailing unfinished episode is kept
    in the step arrays but not counted in the episode arrays."""
    h, owned = _open(src)
    try:
        S = h.num_steps
        if not 1 <= step <= S:
            raise ConfigError(f"cut step {step} is outside {h.path}: it has num_steps={S}; "
                              f"choose 1 <= step <= {S}")
        return _write_derived(h, dst, _read_steps(h, slice(0, step)), "cut_at_step",
                              {"step": int(step)})
    finally:
        if owned:
            h.close()


def performance_curve(h: History, window: int = 1, split: str | None = None) -> np.ndarray:
    """The teacher's mean episode return across learners, smoothed over a trailing window.

    Returns float64 (E - window + 1,): entry ``j`` is the mean of the across-learner mean
    return of episodes ``j .. j + window - 1`` (learners that did not complete an episode
    are left out of its mean).
    """
    ret = h.episode_returns[h.learners(split)].astype(np.float64)
    if ret.shape[0] == 0 or ret.shape[1] == 0:
        raise ConfigError(f"{h.path} has no completed episodes on split {split!r}: "
                          "collect more steps or learners")
    E = ret.shape[1]
    if not 1 <= window <= E:
        raise ConfigError(f"window={window} must be between 1 and the number of episodes "
                          f"E={E} of {h.path}")
    counts = np.sum(~np.isnan(ret), axis=0)
    curve = np.nansum(ret, axis=0) / np.maximum(counts, 1)
    c = np.concatenate([[0.0], np.cumsum(curve)])
    return (c[window:] - c[:-window]) / window


def cut_at_performance(
    src: Source, fraction_of_optimal: float, dst: str | Path, *, window: int = 10,
    split: str | None = None,
) -> tuple[History, int]:
    """Cut every learner at the step where the teacher first reaches a performance level.

    The level: the mean return across learners (of ``split``, default all), smoothed over
    a trailing ``window`` of episodes, reaches ``fraction_of_optimal`` times the mean
    optimal return. If that first happens at episode ``e`` (the window's last episode),
    the cut is the mean over learners of the step that ends episode ``e``, rounded up
    (exactly ``(e + 1) * episode_len`` for fixed-length episodes). Returns the new
    history and the step chosen; a level never reached raises ConfigError.
    """
    if not fraction_of_optimal > 0:
        raise ConfigError(f"fraction_of_optimal={fraction_of_optimal} must be > 0")
    h, owned = _open(src)
    try:
        idx = h.learners(split)
        smoothed = performance_curve(h, window, split)
        target = fraction_of_optimal * float(np.mean(h.optimal_return[idx]))
        hits = np.flatnonzero(smoothed >= target)
        if hits.size == 0:
            best = float(smoothed.max())
            frac = best / target * fraction_of_optimal if target else math.nan
            raise ConfigError(
                f"fraction_of_optimal={fraction_of_optimal} is never reached in {h.path}: the "
                f"teacher's best smoothed mean return is {best:.4g} ({frac:.3g} of optimal, "
                f"window={window}). Lower the fraction or collect more steps")
        e = int(hits[0]) + window - 1
        ends = np.cumsum(h.episode_lengths.astype(np.int64), axis=1)[:, e]
        done = h.episode_lengths[:, e] > 0
        step = int(math.ceil(float(np.mean(ends[done]))))
        args = {"fraction_of_optimal": float(fraction_of_optimal), "window": int(window),
                "split": split, "episode": e, "step": step}
        out = _write_derived(h, dst, _read_steps(h, slice(0, step)), "cut_at_performance", args)
        return out, step
    finally:
        if owned:
            h.close()


def keep_every_kth_episode(src: Source, k: int, dst: str | Path, *, offset: int = 0) -> History:
    """Keep whole episodes ``offset, offset + k, offset + 2k, ...`` of every learner.

    Steps of the dropped episodes (and of a trailing unfinished one) are removed and the
    kept steps are packed in order. Learners whose episodes vary in length keep different
    numbers of steps; all are cut to the fewest (so S' = min over learners; a learner's
    last kept episode may then be unfinished and is not counted).
    """
    if k < 1 or not 0 <= offset < k:
        raise ConfigError(f"keep_every_kth_episode needs k >= 1 and 0 <= offset < k "
                          f"(got k={k}, offset={offset})")
    h, owned = _open(src)
    try:
        a = _read_steps(h)
        done = a["terminated"] | a["truncated"]
        ep = np.cumsum(done, axis=1) - done
        keep = (ep % k == offset) & (ep < done.sum(axis=1, keepdims=True))
        new_s = int(keep.sum(axis=1).min())
        if new_s == 0:
            raise ConfigError(
                f"keep_every_kth_episode(k={k}, offset={offset}) keeps no complete episode of "
                f"some learner in {h.path} (it has at most {h.num_episodes} episodes): "
                "lower k or offset")
        order = np.argsort(~keep, axis=1, kind="stable")[:, :new_s]  # kept steps, in order
        out = {}
        for name, arr in a.items():
            sel = order.reshape(order.shape + (1,) * (arr.ndim - 2))  # probs, frames
            out[name] = np.take_along_axis(arr, sel, axis=1)
        return _write_derived(h, dst, out, "keep_every_kth_episode",
                              {"k": int(k), "offset": int(offset)})
    finally:
        if owned:
            h.close()



def keep_train_tasks(src: Source, n: int, dst: str | Path) -> History:
    """Keep the learners of the first ``n`` train tasks (in the order the file lists them)
    and every test learner: fewer training tasks, the same held-out ones."""
    h, owned = _open(src)
    try:
        train = h.learners("train")
        order = list(dict.fromkeys(h.task_ids[train].tolist()))
        if not 1 <= n <= len(order):
            raise ConfigError(f"keep_train_tasks(n={n}): {h.path} has {len(order)} train tasks; "
                              f"choose 1 <= n <= {len(order)}")
        keep = set(order[:n])
        test = split_code("test")
        idx = np.flatnonzero([(s == test) or (int(t) in keep)
                              for t, s in zip(h.task_ids, h.split, strict=True)]).astype(np.int64)
        return _write_derived(h, dst, _read_steps(h, learners=idx), "keep_train_tasks",
                              {"n": int(n)}, learners=idx)
    finally:
        if owned:
            h.close()
