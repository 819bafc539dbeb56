"""DPT on bandits: training contexts and deployment contexts have the same format.

The checks behind the slow DPT-vs-Thompson quality test (tests/test_quality.py): prefix
training covers every context size from 0, the (action, reward) of each pull is embedded,
a bandit's next_obs is the same "unknown" token in training and deployment, deployment
samples from the predicted distribution, and a small DPT learns to read rewards.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from outlearn.core import Transition
from outlearn.errors import ConfigError
from outlearn.students import ArraySource, DPTConfig, DPTTransformer, StudentLearner, WindowSampler

A, N = 3, 12  # arms, context transitions

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(seed: int = 0, **kw) -> DPTTransformer:
    torch.manual_seed(seed)
    cfg = DPTConfig(n_layers=2, n_heads=2, d_model=32, d_ff=64, dropout=0.0, attn_dropout=0.0,
                    context_len=N, predict_prefixes=True, **kw)
    return DPTTransformer(cfg, num_obs=1, num_actions=A).eval()


def _bandit_history(num_learners: int = 4, steps: int = N + 1, seed: int = 0) -> ArraySource:
    """A bandit history as the collector writes it: obs 0, every pull truncated."""
    rng = np.random.default_rng(seed)
    shape = (num_learners, steps)
    arrays = {
        "obs": np.zeros(shape, np.int32),
        "actions": rng.integers(0, A, shape).astype(np.int32),
        "rewards": rng.integers(0, 2, shape).astype(np.float32),
        "terminated": np.zeros(shape, bool),
        "truncated": np.ones(shape, bool),
        "optimal_actions": np.repeat(rng.integers(0, A, (num_learners, 1)), steps, 1),
        "split": np.zeros(num_learners, np.int64),
    }
    return ArraySource(arrays, num_obs=1, num_actions=A, episode_len=1)


def _sampler(src: ArraySource) -> WindowSampler:
    return WindowSampler(src, kind="set", context_len=N, labels="optimal", gap_episodes=1,
                         batch_size=4, val_fraction=0.0, seed=0)


def _forward(m: DPTTransformer, ex: dict[str, np.ndarray]) -> torch.Tensor:
    t = {k: torch.from_numpy(np.asarray(v))[None] for k, v in ex.items()}
    return m(t["ctx_obs"], t["ctx_action"], t["ctx_reward"], t["ctx_next_obs"],
             t["query_obs"].reshape(1))


def test_prefix_position_i_sees_exactly_the_first_i_pulls():
    """Training covers context sizes 0..N: position i is unchanged by pulls i+1..N, and
    position 0 equals the prediction on an empty context (the first step of deployment)."""
    m = _model()
    ex = _sampler(_bandit_history()).set_example(0, 0, 0)
    full = _forward(m, ex)[0]  # (N + 1, A)
    assert full.shape == (N + 1, A)
    for i in (0, 1, 5, N - 1):
        cut = {k: (v[:i] if k.startswith("ctx_") else v) for k, v in ex.items()}
        torch.testing.assert_close(_forward(m, cut)[0, -1], full[i], atol=1e-5, rtol=1e-5)
    changed = dict(ex, ctx_reward=ex["ctx_reward"].copy())
    changed["ctx_reward"][7] = 1.0 - changed["ctx_reward"][7]
    after = _forward(m, changed)[0]
    torch.testing.assert_close(after[:8], full[:8])
    assert not torch.allclose(after[8:], full[8:])


@pytest.mark.parametrize("by_action", [True, False])
def test_each_pulls_reward_reaches_the_prediction(by_action):
    """Flipping the reward of one pull changes the prediction (the reward is not dropped);
    with ``reward_by_action`` the reward also enters in its own arm's direction."""
    m = _model(reward_by_action=by_action)
    ex = _sampler(_bandit_history()).set_example(1, 0, 0)
    base = _forward(m, ex)[0, -1]
    for j in (0, N // 2, N - 1):
        flip = dict(ex, ctx_reward=ex["ctx_reward"].copy())
        flip["ctx_reward"][j] = 1.0 - flip["ctx_reward"][j]
        assert (_forward(m, flip)[0, -1] - base).abs().max() > 1e-4
    assert (m.reward_by_action is not None) == by_action


def test_bandit_next_obs_is_the_unknown_token_in_training():
    """Every bandit pull ends an episode: its next_obs is ``num_obs`` ("unknown"), so it
    carries no information and is the same constant token at deployment."""
    ex = _sampler(_bandit_history()).set_example(2, 0, 3)
    assert np.all(ex["ctx_next_obs"] == 1)
    assert ex["ctx_action"].dtype == np.int64 and ex["ctx_reward"].dtype == np.float32


def test_deployment_context_matches_training_format():
    """Pulls fed to a StudentLearner one at a time build exactly the set the sampler
    builds from the same history (fields, dtypes, "unknown" next_obs), oldest first, and
    its policy at step k is the softmax of prefix position k."""
    src = _bandit_history(num_learners=2)
    m = _model(seed=1)
    learner = StudentLearner(m, num_envs=2, context_len=N, mode="sample")
    exs = [_sampler(src).set_example(lr, 0, 0) for lr in range(2)]
    zero = np.zeros(2, np.int32)
    for k in range(N + 1):
        w = learner.window(zero)
        for name in ("ctx_obs", "ctx_action", "ctx_reward", "ctx_next_obs"):
            want = np.stack([e[name][:k] for e in exs])
            np.testing.assert_array_equal(w[name], want)
            assert w[name].dtype == want.dtype
        probs = learner.policy(zero, k)
        want_p = torch.softmax(torch.cat([_forward(m, e)[:, k] for e in exs]), -1)
        np.testing.assert_allclose(probs, want_p.numpy(), atol=1e-5)
        assert np.all(probs > 0) and np.allclose(probs.sum(-1), 1.0, atol=1e-5)
        if k == N:
            break
        a = np.array([src.arrays["actions"][lr, k] for lr in range(2)], np.int32)
        r = np.array([src.arrays["rewards"][lr, k] for lr in range(2)], np.float32)
        learner.observe(Transition(zero, a, r, zero, np.zeros(2, bool), np.ones(2, bool)))


def test_greedy_mode_is_the_argmax_of_the_sample_mode():
    m = _model(seed=2)
    zero = np.zeros(3, np.int32)
    s = StudentLearner(m, num_envs=3, context_len=N, mode="sample").policy(zero, 0)
    g = StudentLearner(m, num_envs=3, context_len=N, mode="greedy").policy(zero, 0)
    np.testing.assert_array_equal(g.argmax(-1), s.argmax(-1))
    np.testing.assert_array_equal(g.sum(-1), np.ones(3, np.float32))


def _reward_only_batch(rng: np.random.Generator, b: int):
    """Contexts whose actions are uniform (their counts say nothing about the best arm):
    one arm pays with p 0.9, the others with p 0.1; the label is the good arm."""
    best = rng.integers(0, A, b)
    act = rng.integers(0, A, (b, N))
    p = np.where(act == best[:, None], 0.9, 0.1)
    rew = (rng.random((b, N)) < p).astype(np.float32)
    z = torch.zeros((b, N), dtype=torch.long)
    return (z, torch.from_numpy(act), torch.from_numpy(rew), z + 1,
            torch.zeros(b, dtype=torch.long)), torch.from_numpy(best)


def test_dpt_learns_the_best_arm_from_rewards_alone():
    """Trained on uniform-action contexts (where only rewards tell the best arm), a small
    DPT's accuracy at the full context goes from chance (1/3) to >= 0.85."""
    m = _model(seed=3).train()
    rng = np.random.default_rng(0)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(250):
        x, y = _reward_only_batch(rng, 32)
        logits = m(*x)  # (B, N + 1, A)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, A), y[:, None].expand(-1, N + 1).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    x, y = _reward_only_batch(np.random.default_rng(1), 512)
    with torch.no_grad():
        acc = float((m(*x)[:, -1].argmax(-1) == y).float().mean())
    assert acc >= 0.85, acc


def _sampler_with(src: ArraySource, **kw) -> WindowSampler:
    return WindowSampler(src, kind="set", context_len=N, labels="optimal", gap_episodes=1,
                         batch_size=8, val_fraction=0.0, seed=0, **kw)


def test_first_start_sets_begin_at_each_learners_first_pull():
    src = _bandit_history(steps=3 * N)
    batch = _sampler_with(src, set_start="first").sample()
    firsts = {tuple(src.arrays["actions"][lr, :N]) for lr in range(4)}
    assert all(tuple(row) in firsts for row in batch["ctx_action"])


def test_permuted_arms_relabel_context_and_target_consistently():
    src = _bandit_history(steps=N + 1)
    plain = _sampler_with(src, set_start="first")
    perm = _sampler_with(src, set_start="first", permute_actions=True)
    b0, b1 = plain.sample(), perm.sample()  # same rng stream up to the permutations
    assert np.array_equal(b0["ctx_reward"], b1["ctx_reward"])
    relabelled = 0
    for a0, a1, t0, t1 in zip(b0["ctx_action"], b1["ctx_action"], b0["target"], b1["target"],
                              strict=True):
        mapping = dict(zip(a0.tolist(), a1.tolist(), strict=True))
        assert all(mapping[x] == y for x, y in zip(a0, a1, strict=True))  # one relabelling
        assert len(set(mapping.values())) == len(mapping)  # a bijection
        if t0 in mapping:
            assert mapping[t0] == t1
        relabelled += int(any(k != v for k, v in mapping.items()))
    assert relabelled > 0


def test_permuting_actions_is_refused_off_bandits():
    src = _bandit_history()
    src.num_obs = 9  # a gridworld's actions are not interchangeable
    with pytest.raises(ConfigError, match="permute_actions"):
        _sampler_with(src, permute_actions=True)
