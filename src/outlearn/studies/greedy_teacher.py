"""The teacher as its history leaves it, acting greedily: a reference for the studies that
judge a student against its data (the cut-off study at each cut, the gap study at the end
of the teacher's history).

Each judged teacher learner's state is rebuilt by replaying its kept history with the
teacher's own ``update`` and the collection's keys (:mod:`outlearn.identify.replay`),
checked against the policy the history recorded, then frozen and run on its task acting on
the argmax of its policy. What the data would show without the teacher's exploration: a
student above the data ceiling but not above this has dropped the teacher's noise rather
than learned past it. Its own module, so that the stage's code version
(``STAGE_CODE["teacher-greedy"]``) is this file's, not the cut's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from outlearn.errors import ConfigError
from outlearn.histories.io import History

if TYPE_CHECKING:
    from outlearn.collect import TeacherSection
    from outlearn.studies.cutoff_config import CutoffConfig

__all__ = ["REPLAY_TOL", "FrozenGreedy", "greedy_teacher_at_cut", "greedy_teacher_of_history",
           "replay_mismatch"]


class FrozenGreedy:
    """A teacher frozen in a given state, acting on the argmax of its policy there (ties
    to the lowest action); it never updates. ``t``: the step its policy is read at (the
    cut), so a schedule (an epsilon) stays where the cut left it: the argmax drops it."""

    def __init__(self, inner: Any, t: int):
        self.inner, self.t = inner, t
        self.name = f"{inner.name}, greedy and frozen"
        self.num_actions = int(inner.num_actions)

    def init(self, key: Any, params: Any) -> Any:
        return self.inner.init(key, params)

    def policy(self, lstate: Any, obs: Any, t: Any) -> Any:
        import jax
        import jax.numpy as jnp

        p = self.inner.policy(lstate, obs, jnp.int32(self.t))
        return jax.nn.one_hot(jnp.argmax(p), self.num_actions, dtype=jnp.float32)

    def update(self, key: Any, lstate: Any, tr: Any, t: Any) -> Any:
        return lstate


#: largest difference between a replayed policy and the recorded one that still counts as
#: the same learner (float32 rounding of the same computation)
REPLAY_TOL = 1e-4


def replay_mismatch(replayed: np.ndarray, recorded: np.ndarray) -> str | None:
    """None when a replayed policy (L, S, A) is the recorded one; else what differs.

    The same within :data:`REPLAY_TOL`, except where two actions' values are tied in one
    and a float rounding apart in the other (the replay runs the teacher's update outside
    the rollout loop's fused step, so an exact tie can come out split): the replay's best
    actions a subset of the recorded ones, or the other way round. Two best actions that
    do not overlap, or any other difference, is another learner."""
    rep = np.asarray(replayed, np.float64)
    rec = np.asarray(recorded, np.float64)
    off = np.abs(rep - rec).max(axis=-1) > REPLAY_TOL
    rep_top = rep >= rep.max(axis=-1, keepdims=True) - REPLAY_TOL
    rec_top = rec >= rec.max(axis=-1, keepdims=True) - REPLAY_TOL
    subset = ~(rep_top & ~rec_top).any(axis=-1) | ~(rec_top & ~rep_top).any(axis=-1)
    outside = ~(rep_top | rec_top)  # every other action: the same probability
    rest = np.where(outside, np.abs(rep - rec), 0.0).max(axis=-1) <= REPLAY_TOL
    tie = (rep_top != rec_top).any(axis=-1) & subset & rest
    bad = off & ~tie
    if bad.any():
        learner, step = (int(i[0]) for i in np.nonzero(bad))
        return (f"{int(bad.sum())} steps where the two prefer different actions, the first "
                f"at step {step} of learner {learner}: {np.round(rep[learner, step], 3)} "
                f"against {np.round(rec[learner, step], 3)}")
    return None


def greedy_teacher_at_cut(cfg: CutoffConfig, family: Any, path: Path, ids: np.ndarray,
                          episodes: int, seed: int) -> dict[str, Any]:
    """The cut-off study's teacher as the cut at ``path`` leaves it, acting greedily, on the
    held-out tasks ``ids``: :func:`greedy_teacher_of_history` with the study's teacher."""
    return greedy_teacher_of_history(cfg.teacher, family, path, ids, episodes, seed)


def greedy_teacher_of_history(teacher_spec: TeacherSection, family: Any, path: Path,
                              ids: np.ndarray, episodes: int, seed: int,
                              split: Literal["train", "test"] = "test") -> dict[str, Any]:
    """The teacher as the history at ``path`` leaves it, acting greedily: each of its
    learners on the ``split`` tasks (the held-out ones by default) rebuilt by replaying its
    recorded transitions with the teacher's own ``update`` (``teacher_spec``: the name and
    kwargs that wrote the history) and the collection's keys, then frozen and run for
    ``episodes`` fresh episodes on its task, acting on the argmax of its policy.

    What the data would show without the teacher's exploration: a student that beats the
    data ceiling but not this has dropped the teacher's noise rather than learned past it.
    Returns ``{"returns": (learners per task, tasks, episodes)}``, tasks in the order of
    ``ids``, or ``{"returns": None, "why": ...}`` when the teacher cannot be rebuilt from
    its history (no replayable steps, or the replayed policy differs from the recorded
    one by more than :data:`REPLAY_TOL`)."""
    import jax
    import jax.numpy as jnp

    from outlearn.evaluation.baselines import make_teacher
    from outlearn.evaluation.metrics import episode_returns_from_traj
    from outlearn.identify import Steps
    from outlearn.identify.replay import replay_with_policy
    from outlearn.rng import learner_keys
    from outlearn.rollout import rollout_scan

    with History(path) as h:
        idx = h.learners(split)
        try:
            steps = Steps.from_history(h, idx)
        except ConfigError as err:
            return {"returns": None, "why": str(err)}
        if not h.has_probs:
            return {"returns": None, "why": f"history {path} records no policy to check a "
                                            "replay against"}
        recorded = h.read_steps("probs", idx)
        task_ids, seeds, upto = h.task_ids[idx], h.learner_seeds[idx], h.num_steps
    name = teacher_spec.name
    teacher = make_teacher(name, family, **teacher_spec.kwargs)
    keys = learner_keys(seeds)
    params = family.task_params(jnp.asarray(task_ids))
    states, replayed = replay_with_policy(teacher, keys, params, steps, upto)
    off = replay_mismatch(replayed, recorded)
    if off is not None:
        return {"returns": None, "why": f"replaying teacher {name} on its history gives "
                                        f"another policy than the recorded one ({off}): its "
                                        "state cannot be rebuilt"}
    run_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2_000_003 + seed))(keys)
    traj, _ = rollout_scan(family, FrozenGreedy(teacher, upto), run_keys, params,
                           episodes * family.episode_len, start=(states, upto))
    ret = episode_returns_from_traj(np.asarray(traj.rewards), np.asarray(traj.terminated),
                                    np.asarray(traj.truncated), episodes)
    per_task = [ret[task_ids == t] for t in ids]
    if len({len(r) for r in per_task}) != 1 or not len(per_task[0]):
        raise ValueError(f"history {path}: the {split} tasks have unequal numbers of teacher "
                         "learners")
    return {"returns": np.stack(per_task, axis=1)}
