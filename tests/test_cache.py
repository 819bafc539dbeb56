"""The key/value cache: a student acting one step at a time computes exactly what a full
recompute of its stream computes, across episode boundaries and window slides."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from recording import Recording

from outlearn.envs import make_env
from outlearn.rng import unit_keys
from outlearn.rollout import rollout_steps
from outlearn.students import ADConfig, ADTransformer, StudentLearner, step_inputs

torch.set_num_threads(1)
C, EP_LEN = 8, 5
STEPS = 3 * C + 2 * EP_LEN + 3  # > 3 contexts, many episode ends, the window slides


def model(positions: str) -> ADTransformer:
    torch.manual_seed(0)
    cfg = ADConfig(n_layers=3, n_heads=2, d_model=32, d_ff=64, context_len=C,
                   positions=positions, obs_factors=[4, 4], prev_obs=True)
    return ADTransformer(cfg, 16, 5).eval()


class FullRecompute(StudentLearner):
    """Recomputes its whole stream every step (``forward_stream``): the reference."""

    def __init__(self, *a, **kw):
        super().__init__(*a, cache=False, **kw)
        self.cols: list[tuple] = []

    @torch.no_grad()
    def logits(self, obs):
        self.cols.append((np.asarray(obs).astype(np.int64), self.prev_action.copy(),
                          self.prev_reward.copy(), self.new_episode.copy()))
        x = [torch.from_numpy(np.stack(c, 1)) for c in zip(*self.cols, strict=True)]
        return self.model.forward_stream(*x)[:, -1].numpy()


def rollout(learner):
    fam = make_env("darkroom", size=4, episode_len=EP_LEN)
    ids = np.arange(6)
    params = fam.task_params(jax.numpy.asarray(ids))
    traj = rollout_steps(fam, learner.policy, learner.observe, unit_keys(3, ids), params, STEPS)
    return traj


@pytest.mark.parametrize("positions", ["rope", "alibi"])
def test_cached_logits_equal_full_recompute_of_the_stream(positions):
    m = model(positions)
    rec = Recording(m, num_envs=6, context_len=C, mode="sample", seed=0)
    traj = rollout(rec)
    assert rec.kv is not None and rec.kv.t == STEPS
    done = traj.terminated | traj.truncated
    assert done.sum() >= 6 * (STEPS // EP_LEN)  # episode boundaries inside the rollout
    x = step_inputs(traj.obs, traj.actions, traj.rewards, done, has_prev=False)
    with torch.no_grad():
        ref = m.forward_stream(*(torch.from_numpy(x[k]) for k in (
            "obs", "prev_action", "prev_reward", "new_episode"))).numpy()
    got = np.stack(rec.seen, 1)
    assert got.shape == ref.shape == (6, STEPS, 5)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    # and the stream form really is a sliding window: past C steps, the first step of
    # the rollout no longer matters
    with torch.no_grad():
        alt = {k: torch.from_numpy(v.copy()) for k, v in x.items()}
        alt["obs"][:, 0] = (alt["obs"][:, 0] + 1) % 16
        out = m.forward_stream(alt["obs"], alt["prev_action"], alt["prev_reward"],
                               alt["new_episode"]).numpy()
    deep = 3 * (C - 1) + 2  # 3 layers: the first step's reach ends here (its prev_obs: +1)
    assert not np.allclose(out[:, 1], ref[:, 1])
    np.testing.assert_array_equal(out[:, deep:], ref[:, deep:])


def test_cached_actions_equal_full_recompute_actions():
    m = model("rope")
    a = rollout(StudentLearner(m, num_envs=6, context_len=C, mode="sample", seed=0))
    b = rollout(FullRecompute(m, num_envs=6, context_len=C, mode="sample", seed=0))
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)


def test_policy_twice_for_one_step_does_not_advance_the_cache():
    m = model("rope")
    sl = StudentLearner(m, num_envs=2, context_len=C)
    p1 = sl.policy(np.array([0, 3]), 0)
    p2 = sl.policy(np.array([0, 3]), 0)
    assert sl.kv.t == 1
    np.testing.assert_array_equal(p1, p2)


def test_learned_positions_fall_back_to_recompute():
    torch.manual_seed(0)
    m = ADTransformer(ADConfig(d_model=32, context_len=C, positions="learned"), 16, 5).eval()
    sl = StudentLearner(m, num_envs=2, context_len=C)
    assert sl.kv is None and not m.supports_cache
    with pytest.raises(ValueError, match="learned"):
        m.init_cache(2)


def test_position_settings_are_checked():
    with pytest.raises(ValueError, match="rope_base"):
        ADConfig(d_model=32, context_len=C, rope_base=float("inf"))
    with pytest.raises(ValueError, match="even head size"):
        ADConfig(d_model=30, n_heads=2, context_len=C)  # head size 15
    ADConfig(d_model=30, n_heads=2, context_len=C, positions="alibi")  # no pairs needed
