"""A tiny synthetic history file for tests: 6 learners, 3 actions, 4 observations,
10-step episodes; the 'teacher' plays action obs % 3 with probability 0.8, else uniform."""

from __future__ import annotations

import numpy as np

from outlearn.core import Trajectory
from outlearn.histories import HistoryMeta, LearnerInfo, write_history

L, A, NOBS, EP = 6, 3, 4, 10


def synthetic_history(path, env_name: str = "toy", seed: int = 0, steps: int = 120,
                      task_params: bool = False):
    """Write the history to ``path`` (``steps`` per learner; with ``task_params``, a
    per-learner ``goal`` parameter too) and return its path."""
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, NOBS, size=(L, steps)).astype(np.int32)
    greedy = obs % A
    actions = np.where(rng.random((L, steps)) < 0.8, greedy, rng.integers(0, A, (L, steps)))
    probs = np.full((L, steps, A), 0.2 / A, np.float32)
    np.put_along_axis(probs, greedy[..., None], 0.8 + 0.2 / A, axis=-1)
    rewards = (actions == greedy).astype(np.float32)
    trunc = np.zeros((L, steps), bool)
    trunc[:, EP - 1 :: EP] = True
    traj = Trajectory(obs, actions.astype(np.int32), rewards, np.zeros((L, steps), bool), trunc,
                      probs, greedy.astype(np.int32), rewards)
    meta = HistoryMeta(env_name=env_name, num_actions=A, num_obs=NOBS, episode_len=EP,
                       teacher_name="synthetic", seed=seed)
    params = {"goal": np.arange(2 * L, dtype=np.int32).reshape(L, 2)} if task_params else {}
    info = LearnerInfo(np.arange(L, dtype=np.int64), np.array([0, 0, 0, 0, 0, 1], np.uint8),
                       np.ones(L, np.float32), np.arange(L, dtype=np.uint32), params)
    return write_history(path, traj, meta, info, chunk_steps=32)


def synthetic_frames(path, seed: int = 0, steps: int = 60, shape=(10, 10, 4)):
    """A history of bool frames (MinAtar's shape by default) from env 'gymnax' (no
    oracle: optimal actions -1): 6 learners, 3 actions, 10-step episodes, the action a
    channel's pixel count mod 3. Written directly, without JAX; returns its path."""
    rng = np.random.default_rng(seed)
    frames = rng.random((L, steps, *shape)) < 0.1
    actions = (frames[..., 0].sum((-1, -2)) % A).astype(np.int32)
    trunc = np.zeros((L, steps), bool)
    trunc[:, EP - 1 :: EP] = True
    rewards = rng.random((L, steps)).astype(np.float32)
    traj = Trajectory(frames, actions, rewards, np.zeros((L, steps), bool), trunc,
                      np.full((L, steps, A), 1 / A, np.float32),
                      np.full((L, steps), -1, np.int32), np.full((L, steps), np.nan, np.float32))
    meta = HistoryMeta(env_name="gymnax", num_actions=A, num_obs=0, episode_len=EP,
                       teacher_name="synthetic", seed=seed)
    info = LearnerInfo(np.arange(L, dtype=np.int64), np.array([0, 0, 0, 0, 0, 1], np.uint8),
                       np.full(L, np.nan, np.float32), np.arange(L, dtype=np.uint32))
    return write_history(path, traj, meta, info, chunk_steps=16)
