"""The rollout loop: fused (scan) and step paths give the same trajectories."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from outlearn.core import Learner, Trajectory
from outlearn.envs import make_env
from outlearn.rng import action_uniforms, fold_in, split2, step_keys, uniforms
from outlearn.rollout import JaxLearnerAdapter, rollout_scan, rollout_steps


class CountingRandom:
    """Uniform-random JAX learner; its state counts updates and sums rewards seen."""

    name = "uniform-counting"

    def __init__(self, num_actions: int):
        self.num_actions = num_actions

    def init(self, key, params):
        return {"count": jnp.int32(0), "reward_sum": jnp.float32(0.0)}

    def policy(self, lstate, obs, t):
        return jnp.full((self.num_actions,), 1.0 / self.num_actions, dtype=jnp.float32)

    def update(self, key, lstate, tr, t):
        return {"count": lstate["count"] + 1, "reward_sum": lstate["reward_sum"] + tr.reward}


def _both_paths(fam, task_ids, num_steps, seed=0, chunk=None):
    params = fam.task_params(np.asarray(task_ids))
    keys = jax.random.split(jax.random.key(seed), len(task_ids))
    learner = CountingRandom(fam.num_actions)
    assert isinstance(learner, Learner)
    fused, lstate = rollout_scan(fam, learner, keys, params, num_steps, chunk=chunk)
    adapter = JaxLearnerAdapter(learner, keys, params)
    stepped = rollout_steps(fam, adapter.policy, adapter.observe, keys, params, num_steps)
    return params, fused, lstate, stepped, adapter.lstate


def _assert_same(a: Trajectory, b: Trajectory):
    for name, x, y in zip(Trajectory._fields, a, b, strict=True):
        assert x.shape == y.shape, name
        assert np.array_equal(x, y), name


@pytest.mark.parametrize("name,kwargs,ids,steps", [
    ("darkroom", {"size": 3, "episode_len": 6, "start": "random"}, [0, 4, 8], 20),
    ("bernoulli-bandit", {"num_arms": 3}, [0, 1, 2, 3], 12),
])
def test_scan_and_step_paths_identical(name, kwargs, ids, steps):
    fam = make_env(name, **kwargs)
    _, fused, lstate, stepped, lstate2 = _both_paths(fam, ids, steps)
    assert fused.obs.shape == (len(ids), steps)
    assert fused.probs.shape == (len(ids), steps, fam.num_actions)
    _assert_same(fused, stepped)
    for st in (lstate, lstate2):  # the learner saw every transition, with its reward
        assert np.all(np.asarray(st["count"]) == steps)
        assert np.allclose(np.asarray(st["reward_sum"]), fused.rewards.sum(axis=1))
    # a random learner moves: not all actions are the same
    assert len(np.unique(fused.actions)) == fam.num_actions


def test_chunked_scan_matches_one_scan():
    fam = make_env("darkroom", size=3, episode_len=5)
    params = fam.task_params(np.array([2, 6]))
    keys = jax.random.split(jax.random.key(7), 2)
    learner = CountingRandom(fam.num_actions)
    whole, _ = rollout_scan(fam, learner, keys, params, 23)
    done = []
    parts, _ = rollout_scan(fam, learner, keys, params, 23, chunk=10, on_chunk=done.append)
    _assert_same(whole, parts)
    assert done == [10, 20, 23]


def test_episode_boundaries_and_rewards_darkroom():
    fam = make_env("darkroom", size=3, episode_len=5)  # centre start, no termination
    _, traj, _, _, _ = _both_paths(fam, [0, 4, 7], 25, seed=3)
    t = np.arange(25)
    assert np.array_equal(traj.truncated, np.broadcast_to(t % 5 == 4, traj.truncated.shape))
    assert not traj.terminated.any()
    assert np.all(traj.obs[:, t % 5 == 0] == 4)  # every episode starts at the centre
    # deterministic env: the reward is the expected reward of the action taken
    assert np.array_equal(traj.rewards, traj.expected_rewards)
    # and it is paid exactly when the move ends on the goal
    goals = np.array([0, 4, 7])[:, None]
    reached = _next_cells(traj.obs, traj.actions, 3)
    assert np.array_equal(traj.rewards, (reached == goals).astype(np.float32))
    assert traj.rewards.sum() > 0
    # oracle labels are the family's optimal action in the observed state
    opt = jax.vmap(jax.vmap(fam.optimal_action, in_axes=(0, None)))(
        jnp.asarray(traj.obs), fam.task_params(np.array([0, 4, 7])))
    assert np.array_equal(traj.optimal_actions, np.asarray(opt))


def _next_cells(obs, actions, size):
    moves = np.array([[0, 0], [-1, 0], [0, 1], [1, 0], [0, -1]])
    r = np.clip(obs // size + moves[actions, 0], 0, size - 1)
    c = np.clip(obs % size + moves[actions, 1], 0, size - 1)
    return r * size + c


def test_episode_boundaries_with_termination_keydoor():
    # 2x2 room, key and door both on cell 3: reaching cell 3 ends the episode with reward 2
    fam = make_env("keydoor", size=2, episode_len=4, start="corner")
    _, traj, _, _, _ = _both_paths(fam, [3 * 4 + 3], 60, seed=1)
    term, trunc = traj.terminated[0], traj.truncated[0]
    assert term.any() and trunc.any() and not (term & trunc).any()
    assert np.array_equal(traj.rewards[0], np.where(term, 2.0, 0.0).astype(np.float32))
    assert np.array_equal(traj.rewards, traj.expected_rewards)
    # episodes restart at the corner after every end, and last at most 4 steps
    ends = np.flatnonzero(term | trunc)
    assert np.all(traj.obs[0, ends[:-1] + 1] == 0) and traj.obs[0, 0] == 0
    assert np.all(np.diff(np.concatenate([[-1], ends])) <= 4)
    assert np.all(trunc[ends] == (np.diff(np.concatenate([[-1], ends])) == 4) & ~term[ends])


def test_bandit_episodes_and_expected_rewards():
    fam = make_env("gaussian-bandit", num_arms=4, noise_std=0.0)
    params, traj, _, _, _ = _both_paths(fam, [10, 11], 15, seed=2)
    assert traj.truncated.all() and not traj.terminated.any() and (traj.obs == 0).all()
    means = np.asarray(params.means)
    want = np.take_along_axis(means, traj.actions, axis=1)
    assert np.array_equal(traj.expected_rewards, want)
    assert np.array_equal(traj.rewards, want)  # noise 0: reward is the mean
    assert np.array_equal(traj.optimal_actions, np.broadcast_to(means.argmax(1)[:, None],
                                                                traj.actions.shape))


def test_fast_random_helpers_equal_jax_random():
    keys = jax.random.split(jax.random.key(3), 7)
    kd = jax.random.key_data
    for t in [0, 1, 5, 2**31 - 1]:
        want = jax.vmap(lambda k, t=t: jax.random.fold_in(k, t))(keys)
        assert np.array_equal(kd(fold_in(keys, t)), kd(want))
    assert np.array_equal(uniforms(keys), jax.vmap(jax.random.uniform)(keys))
    pair = jax.vmap(jax.random.split)(keys)
    a, b = split2(keys)
    assert np.array_equal(kd(a), kd(pair[:, 0])) and np.array_equal(kd(b), kd(pair[:, 1]))
    ts = jnp.arange(3, 9, dtype=jnp.int32)
    rows = [uniforms(step_keys(keys, t)[0]) for t in ts]
    assert np.array_equal(jax.jit(action_uniforms)(keys, ts), np.stack(rows))
