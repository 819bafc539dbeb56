"""The teacher as a cut leaves it, acting greedily: its state replayed from its history
(checked against the policy the history recorded), frozen, run on the held-out tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from outlearn.collect import CollectConfig, collect
from outlearn.envs import make_family
from outlearn.evaluation.baselines import make_baseline
from outlearn.evaluation.evaluate import run_learner
from outlearn.histories.transforms import cut_at_step
from outlearn.studies.common import held_out_tasks
from outlearn.studies.cutoff_config import CutoffConfig
from outlearn.studies.greedy_teacher import greedy_teacher_at_cut, replay_mismatch

ROOM = {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 6}}
#: a Q-learner that explores (epsilon 1 -> 0 over 150 steps) and then knows its room
TEACHER = {"learning_rate": 0.5, "initial_value": 1.0, "eps_schedule": "linear",
           "eps_start": 1.0, "eps_end": 0.0, "eps_decay_steps": 150}


def _cfg(teacher: dict) -> CutoffConfig:
    return CutoffConfig.model_validate({
        "env": ROOM, "teacher": {"name": "qlearning", "kwargs": teacher},
        "tasks": {"seed": 0, "n_train": 4, "n_test": 3}, "learners_per_task": 2,
        "teacher_episodes": 60, "cuts": ["uncut"], "train_seeds": [0, 1],
        "student": {"kind": "ad"}, "eval": {"episodes": 60}})


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    cfg = _cfg(TEACHER)
    cc = CollectConfig(env=cfg.env, teacher=cfg.teacher, tasks=cfg.tasks,
                       learners_per_task=cfg.learners_per_task,
                       num_episodes=cfg.teacher_episodes, seed=0,
                       out=tmp_path_factory.mktemp("h") / "full.h5")
    return collect(cc, progress=False)


def test_the_teacher_at_the_end_of_its_history_plays_as_it_last_did(history):
    """With epsilon 0 from the 25th of its 60 episodes, each Q-learner's last recorded
    episodes repeat one return (its greedy path has stopped changing). Rebuilt from the
    history (the replay matched the recorded policy, or there would be no returns), frozen
    and greedy, every learner plays exactly that return, on every held-out task, in every
    episode: the optimum where it found the shortest path, less where it settled on a
    longer one (it does, on one task here)."""
    from outlearn.histories.io import History

    cfg = _cfg(TEACHER)
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    out = greedy_teacher_at_cut(cfg, family, history, ids, 4, seed=0)
    assert out["returns"] is not None, out.get("why")
    ret = out["returns"]
    assert ret.shape == (2, 3, 4)  # learners per task, tasks, episodes
    with History(history) as h:
        idx = h.learners("test")
        last = h.episode_returns[idx][:, -5:]
        tasks = h.task_ids[idx]
    assert np.all(last == last[:, :1])  # the premise: a settled greedy path
    np.testing.assert_array_equal(
        ret, np.stack([np.repeat(last[tasks == t][:, :1], 4, axis=1) for t in ids], axis=1))
    oracle = run_learner(family, make_baseline("oracle", family), ids, [0], 4)[0][0]
    assert (ret[..., 0] == oracle[:, 0]).mean() > 0.5 and (ret[..., 0] < oracle[:, 0]).any()


def test_at_an_early_cut_it_plays_what_it_had_learned_then(history, tmp_path):
    """Cut after two episodes the same teacher knows little: frozen and greedy, it is below
    the oracle somewhere, and (no learning, no exploration, a fixed start) it repeats one
    return in every episode."""
    cfg = _cfg(TEACHER)
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    early = cut_at_step(history, 12, tmp_path / "early.h5")
    early.close()
    ret = greedy_teacher_at_cut(cfg, family, tmp_path / "early.h5", ids, 4, seed=0)["returns"]
    oracle = run_learner(family, make_baseline("oracle", family), ids, [0], 4)[0][0]
    assert (ret.mean(axis=(0, 2)) < oracle.mean(axis=-1)).any()
    assert np.all(ret == ret[..., :1])


def test_a_teacher_the_history_was_not_written_by_is_refused(history):
    """Replayed with another learning rate the Q-table drifts from the one that wrote the
    history: its policy no longer matches the recorded one, and the row says so rather
    than reporting a teacher that never existed."""
    cfg = _cfg({**TEACHER, "learning_rate": 0.1})
    family = make_family(cfg.env)
    out = greedy_teacher_at_cut(cfg, family, history, held_out_tasks(family, cfg.tasks), 4, 0)
    assert out["returns"] is None
    assert "cannot be rebuilt" in out["why"] and "recorded" in out["why"]


def test_a_replay_may_split_a_tie_the_recording_broke_and_nothing_else():
    """The replay runs the update outside the rollout loop's fused step, so an exact tie
    between two actions can come out a rounding apart (2 of 128 learners of the demo's
    teachers, once each): that is the same learner. Best actions that do not overlap, or
    the same best action with another epsilon, are not."""
    rec = np.array([[[0.05, 0.05, 0.80, 0.05, 0.05], [0.046, 0.046, 0.431, 0.046, 0.431]]])
    assert replay_mismatch(rec, rec) is None
    split = rec.copy()
    split[0, 1] = [0.046, 0.046, 0.816, 0.046, 0.046]  # the tie broken toward action 2
    assert replay_mismatch(split, rec) is None and replay_mismatch(rec, split) is None
    other = rec.copy()
    other[0, 0] = [0.05, 0.80, 0.05, 0.05, 0.05]  # another best action
    assert "1 steps where the two prefer different actions, the first at step 0" in (
        replay_mismatch(other, rec))
    eps = rec.copy()
    eps[0, 0] = [0.1, 0.1, 0.6, 0.1, 0.1]  # the same best action, another epsilon
    assert replay_mismatch(eps, rec) is not None
    half = rec.copy()
    half[0, 1] = [0.0, 0.092, 0.816, 0.046, 0.046]  # a tie split, and one more change
    assert replay_mismatch(half, rec) is not None
