"""The cut-off study's cut stage: a teacher's histories cut at a fraction of optimal, at the
end of its early episodes or after a fraction of its episodes, with the data ceiling of the
held-out tasks. Its own module, so that the stage's code version (``STAGE_CODE["cut"]``)
changes with what it computes, not with the study's glue and report in
:mod:`outlearn.studies.cutoff` (whose edits would otherwise re-cut, and so retrain, every
student)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from outlearn.errors import ConfigError
from outlearn.evaluation import metrics as M
from outlearn.evaluation.baselines import make_baseline
from outlearn.evaluation.evaluate import run_learner
from outlearn.histories.io import History
from outlearn.histories.transforms import cut_at_performance, cut_at_step
from outlearn.stats import bootstrap_ci
from outlearn.studies.common import held_out_tasks
from outlearn.studies.cutspec import Cut, cut_name, episodes_fraction, kept_episodes

if TYPE_CHECKING:
    from outlearn.studies.cutoff_config import CutoffConfig

__all__ = ["CutInfo", "cut_history", "early_steps", "episode_boundary"]


@dataclass(frozen=True)
class CutInfo:
    """A cut history: its file, how much of the teacher it keeps, and its data ceiling."""

    name: str
    path: Path
    steps: int
    episodes: int
    context_len: int
    ceiling: M.DataCeiling


def cut_history(cfg: CutoffConfig, family: Any, full: Path, c: Cut, d: Path) -> CutInfo:
    """Cut ``full`` at a fraction of optimal, at the end of the early episodes, after a
    fraction of the teacher's episodes (:func:`episode_boundary`), or not."""
    dst = d / "cut.h5"
    if c == "uncut":
        h = History(full)
    elif c == "early":
        h = cut_at_step(full, early_steps(cfg, family, full), dst)
    elif (f := episodes_fraction(c)) is not None:
        n = kept_episodes(f, cfg.teacher_episodes)
        h = cut_at_step(full, episode_boundary(full, n, cut_name(c)), dst)
    else:
        h, _ = cut_at_performance(full, float(c), dst, window=cfg.smoothing, split="train")
    with h:
        ret = h.episode_returns[h.learners("train")]
        episodes = int(np.isfinite(ret).sum(axis=1).min())
        # the ceiling on the held-out tasks the students are judged on, task for task: the
        # teacher's histories there, cut at the same step
        ceiling = M.data_ceiling_from_history(h, held_out_tasks(family, cfg.tasks), "test",
                                              window=min(cfg.smoothing, episodes))
        steps, path = h.num_steps, Path(h.path)
    return CutInfo(cut_name(c), path, steps, episodes, min(cfg.cut_context(), steps),
                   ceiling)


def episode_boundary(full: Path, n: int, name: str) -> int:
    """The step that ends the ``n``-th episode of every learner of ``full`` (train and
    held-out alike: the held-out ones give the data ceiling), so that a cut there keeps
    exactly the first ``n`` episodes of each. With fixed-length episodes (Dark Room, a
    bandit) it is ``n x episode_len``. Episodes that end early (on reaching a goal: Dark
    Room Hard, Key-to-Door) end at different steps in different learners; a per-learner
    cut would give the learners different lengths, which a history file cannot hold, so
    such a history is refused (ConfigError) rather than cut off an episode boundary."""
    with History(full) as h:
        lengths = h.episode_lengths[:, :n].astype(np.int64)
        where = h.path
    if lengths.shape[1] < n or bool((lengths == 0).any()):
        done = int((lengths > 0).sum(axis=1).min())
        raise ConfigError(
            f"cut {name} keeps the first {n} episodes of every learner, but a learner of "
            f"{where} completed only {done}: lower the fraction or raise teacher_episodes")
    ends = lengths.sum(axis=1)
    if ends.min() != ends.max():
        raise ConfigError(
            f"cut {name} cuts every learner after its first {n} episodes, but this "
            f"family's episodes vary in length (they end early, e.g. on reaching the goal): "
            f"the learners' {n}-th episodes end anywhere from step {ends.min()} to "
            f"{ends.max()}, so no one step is an episode boundary for all of them. Cut by "
            "performance (a fraction of optimal, e.g. 0.4) instead, or use a family with "
            "fixed-length episodes")
    return int(ends[0])


def early_steps(cfg: CutoffConfig, family: Any, full: Path) -> int:
    """Steps of the leading episodes where the teacher is no better than random: episode
    ``e`` is the first "better" one when the lower end of the 95% CI of the teacher's mean
    return there (over train learners) is above the upper end of random's on those tasks."""
    with History(full) as h:
        idx = h.learners("train")
        ids, ret = np.unique(h.task_ids[idx]), h.episode_returns[idx].astype(np.float64)
        lengths = h.episode_lengths[idx]
    rand = run_learner(family, make_baseline("random", family), ids, [cfg.seed], 20)[0]
    high = bootstrap_ci(rand.mean(axis=-1).ravel()).high
    n = next((e for e in range(ret.shape[1])
              if bootstrap_ci(ret[np.isfinite(ret[:, e]), e]).low > high), ret.shape[1])
    if n < 1:
        raise ConfigError(
            f"the teacher beats random (CI high {high:.3g}) in its first episode, so there "
            "is no early-only data: remove \"early\" from cuts or use a slower teacher")
    return int(math.ceil(float(np.cumsum(lengths, axis=1)[:, n - 1].mean())))
