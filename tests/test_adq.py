"""The RL student (adq): its loss by hand, bit-exact resume, and on a chain whose history is
a random walk it finds the optimum that AD, trained on the same history, only imitates."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from test_train import synthetic_history, tiny_cfg

from outlearn.config import parse_config
from outlearn.envs.base import StepOut
from outlearn.errors import ConfigError
from outlearn.histories import HistoryMeta, LearnerInfo, write_history
from outlearn.rng import unit_keys
from outlearn.rollout import rollout_steps
from outlearn.students import (
    StudentLearner,
    TrainConfig,
    WindowSampler,
    load_checkpoint,
    load_student,
    train,
)
from outlearn.students.adq import ADQConfig, ADQTransformer, td_terms
from outlearn.students.data import ArraySource

torch.set_num_threads(1)


# ------------------------------------------------------------------ the loss, by hand
def test_td_terms_hand_values():
    # one window, 2 steps, 2 actions
    q = torch.tensor([[[1.0, 2.0], [0.5, -1.0]]])
    q_next = torch.tensor([[[3.0, 4.0], [10.0, 0.0]]])
    action = torch.tensor([[1, 0]])
    reward = torch.tensor([[0.5, 1.0]])
    term = torch.tensor([[False, True]])
    mask = torch.tensor([[True, True]])
    # step 0: y = 0.5 + 0.9 * max(3, 4) = 4.1, Q(a) = 2: 0.5 * 2.1^2 = 2.205
    # step 1: terminated, y = 1, Q(a) = 0.5: 0.5 * 0.25 = 0.125
    total, count = td_terms(q, q_next, action, reward, term, mask, gamma=0.9, cql_alpha=0.0)
    assert count.item() == 2 and total.item() == pytest.approx(2.205 + 0.125)
    # CQL(H): + alpha (logsumexp Q - Q(a)) per step
    lse0 = np.log(np.exp(1.0) + np.exp(2.0)) - 2.0
    lse1 = np.log(np.exp(0.5) + np.exp(-1.0)) - 0.5
    total, _ = td_terms(q, q_next, action, reward, term, mask, gamma=0.9, cql_alpha=0.5)
    assert total.item() == pytest.approx(2.205 + 0.125 + 0.5 * (lse0 + lse1), rel=1e-6)
    # masked steps count for nothing; no gradient flows into the target values
    total, count = td_terms(q, q_next.requires_grad_(), action, reward, term,
                            torch.tensor([[False, True]]), gamma=0.9, cql_alpha=0.0)
    assert count.item() == 1 and total.item() == pytest.approx(0.125)
    assert not total.requires_grad


def tiny_adq(**over) -> ADQTransformer:
    torch.manual_seed(0)
    cfg = ADQConfig(**{"n_layers": 1, "n_heads": 2, "d_model": 16, "d_ff": 32,
                       "dropout": 0.0, "context_len": 4, **over})
    return ADQTransformer(cfg, 6, 3)


def test_the_target_is_the_next_step_of_the_slid_window():
    """A window of C + 1 steps: Q at steps [0, C) from the trained network, the bootstrap
    at steps [1, C + 1) from the target network; rewards and ends are step t's own."""
    m = tiny_adq(gamma=0.5)
    src = ArraySource({
        "obs": np.array([[0, 1, 2, 3, 4, 5, 0, 1]]),
        "actions": np.array([[0, 1, 2, 0, 1, 2, 0, 1]]),
        "rewards": np.arange(8, dtype=np.float32)[None] / 10,
        "terminated": np.array([[0, 0, 1, 0, 0, 0, 0, 0]], bool),
        "truncated": np.zeros((1, 8), bool), "split": np.array([0])}, 6, 3, 8)
    s = WindowSampler(src, kind="sequence", context_len=4, labels="actions", gap_episodes=1,
                      batch_size=1, val_fraction=0.0, seed=0, transitions=True)
    ex = s.sequence_example(0, 1)  # steps 1..5
    assert ex["obs"].tolist() == [1, 2, 3, 4, 5]
    assert ex["reward"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert ex["terminated"].tolist() == [False, True, False, False, False]
    assert ex["new_episode"].tolist() == [False, False, True, False, False]
    b = {k: torch.from_numpy(np.asarray(v)[None]) for k, v in ex.items()}
    with torch.no_grad():
        for p in m.target.parameters():  # a target unlike the trained weights
            p.add_(0.3)
        q, q_next = m.forward_batch(b)
        x = [b[k] for k in ("obs", "prev_action", "prev_reward", "new_episode")]
        torch.testing.assert_close(q, m(*(z[:, :4] for z in x)), rtol=0, atol=0)
        torch.testing.assert_close(q_next, m.target(*(z[:, 1:] for z in x)), rtol=0, atol=0)
        total, count = m.objective_terms((q, q_next), b)
    q_a = q[0, torch.arange(4), torch.tensor([1, 2, 0, 1])]
    y = torch.tensor([0.1, 0.2, 0.3, 0.4]) + 0.5 * torch.tensor([1.0, 0.0, 1.0, 1.0]) * (
        q_next[0].max(-1).values)
    assert count.item() == 4
    assert total.item() == pytest.approx((0.5 * (q_a - y) ** 2).sum().item() + m.cfg.cql_alpha
                                         * (torch.logsumexp(q[0], -1) - q_a).sum().item())
    with pytest.raises(ConfigError, match=r"data\.labels must be \"actions\", not 'probs'"):
        WindowSampler(src, kind="sequence", context_len=4, labels="probs", gap_episodes=1,
                      batch_size=1, val_fraction=0.0, seed=0, transitions=True)


def test_target_network_is_frozen_and_synced_on_schedule():
    m = tiny_adq(target_every=3)
    assert all(not p.requires_grad for p in m.target.parameters())
    assert {n for n, p in m.named_parameters() if p.requires_grad} == {
        n for n, _ in m.named_parameters() if not n.startswith("target.")}
    m.train()
    assert m.training and not m.target.training
    with torch.no_grad():
        m.head.bias.add_(1.0)
    m.after_update(2)
    assert not torch.equal(m.head.bias, m.target.head.bias)
    m.after_update(3)
    assert torch.equal(m.head.bias, m.target.head.bias)


def test_acting_is_greedy_or_epsilon_greedy():
    m = tiny_adq(epsilon=0.3)
    q = np.array([[0.0, 2.0, 1.0], [5.0, -1.0, 0.0]])
    np.testing.assert_array_equal(m.action_probs(q, "greedy"), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(m.action_probs(q, "sample"),
                               [[0.1, 0.8, 0.1], [0.8, 0.1, 0.1]], rtol=1e-6)


# ------------------------------------------------------------------ the chain
class ChainState(NamedTuple):
    pos: jax.Array
    time: jax.Array


class ChainParams(NamedTuple):
    goal: jax.Array


class Chain:
    """States 0..n-1, start at 0; actions 0 left (a wall at 0), 1 right. Reaching state
    n - 1 pays 1 and ends the episode (terminated); else it is truncated after
    ``episode_len`` steps. Optimal: right every step, the goal in n - 1 steps."""

    name, num_actions, num_tasks = "chain", 2, 1

    def __init__(self, n: int = 5, episode_len: int = 8):
        self.num_obs, self.episode_len = n, episode_len

    def task_params(self, task_ids):
        return ChainParams(goal=jnp.full(jnp.shape(task_ids), self.num_obs - 1, jnp.int32))

    def reset(self, key, params):
        return jnp.int32(0), ChainState(jnp.int32(0), jnp.int32(0))

    def step(self, key, state, action, params):
        pos = jnp.clip(state.pos + 2 * action - 1, 0, self.num_obs - 1).astype(jnp.int32)
        time = state.time + 1
        goal = pos == params.goal
        return StepOut(pos, ChainState(pos, time), goal.astype(jnp.float32), goal,
                       (time >= self.episode_len) & ~goal)

    def optimal_action(self, obs, params):
        return jnp.int32(1)

    def expected_reward(self, state, action, params):
        return self.step(None, state, action, params).reward

    def optimal_return(self, params):
        return jnp.float32(1.0)


N, EP = 5, 8


def random_walk_actions(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Uniform random actions, episode by episode; an episode after one that reached the
    goal is drawn again until it does not (the walk never succeeds twice in a row)."""
    out: list[int] = []
    won = False
    while len(out) < steps:
        while True:
            acts, pos = [], 0
            for _ in range(EP):
                a = int(rng.integers(2))
                acts.append(a)
                pos = min(max(pos + 2 * a - 1, 0), N - 1)
                if pos == N - 1:
                    break
            if not (won and pos == N - 1):
                break
        won = pos == N - 1
        out += acts
    return np.array(out[:steps])


def replay(family, planned: np.ndarray):
    """Roll the family out playing the planned actions (B, S): the history's trajectory."""
    B, S = planned.shape
    onehot = np.eye(2, dtype=np.float32)
    traj = rollout_steps(family, lambda obs, t: onehot[planned[:, t]], lambda *a: None,
                         unit_keys(0, np.arange(B)), family.task_params(jnp.zeros(B)), S)
    assert np.array_equal(traj.actions, planned)
    return traj


def episode_outcomes(terminated: np.ndarray, truncated: np.ndarray) -> list[list[bool]]:
    """Per row: whether each finished episode reached the goal."""
    return [[bool(t) for t, u in zip(te, tr, strict=True) if t or u]
            for te, tr in zip(terminated, truncated, strict=True)]


@pytest.fixture(scope="module")
def chain_history(tmp_path_factory):
    L, S = 12, 200
    fam = Chain(N, EP)
    rng = np.random.default_rng(0)
    traj = replay(fam, np.stack([random_walk_actions(rng, S) for _ in range(L)]))
    wins = episode_outcomes(traj.terminated, traj.truncated)
    # the walk never reaches the goal in two episodes in a row
    assert all(not (a and b) for row in wins for a, b in zip(row[:-1], row[1:], strict=True))
    rate = float(np.mean([w for row in wins for w in row]))
    meta = HistoryMeta(env_name="chain", num_actions=2, num_obs=N, episode_len=EP,
                       teacher_name="random-walk", seed=0)
    info = LearnerInfo(np.zeros(L, np.int64), np.zeros(L, np.uint8), np.ones(L, np.float32),
                       np.arange(L, dtype=np.uint32))
    path = write_history(tmp_path_factory.mktemp("chain") / "walk.h5", traj, meta, info,
                         chunk_steps=S)
    return path, rate


def chain_cfg(history, out, kind, **model):
    return parse_config(TrainConfig, {
        "history": str(history), "env": "chain", "out": str(out), "seed": 0, "threads": 1,
        "student": {"kind": kind, "model": {"n_layers": 2, "n_heads": 2, "d_model": 32,
                                            "d_ff": 64, "dropout": 0.0, **model}},
        "data": {"context_len": 16, "batch_size": 16, "val_fraction": 0.0},
        "optim": {"lr": 3e-3, "warmup_steps": 20, "total_steps": 300},
        "checkpoint_every": 1000, "val_every": 1000})


def play(model, mode: str, envs: int = 16, steps: int = 10 * EP):
    """The student in context on the chain: (per-episode goal flags, episode lengths of
    the successes, mean probability of 'right')."""
    fam = Chain(N, EP)
    sl = StudentLearner(model, num_envs=envs, context_len=model.context_len, mode=mode,
                        seed=0)
    traj = rollout_steps(fam, sl.policy, sl.observe, unit_keys(1, np.arange(envs)),
                         fam.task_params(jnp.zeros(envs)), steps)
    wins = [w for row in episode_outcomes(traj.terminated, traj.truncated) for w in row]
    lengths = []
    for te, tr in zip(traj.terminated, traj.truncated, strict=True):
        ends = np.flatnonzero(te | tr)
        starts = np.r_[0, ends[:-1] + 1]
        lengths += [int(e - s + 1) for s, e in zip(starts, ends, strict=True) if te[e]]
    return np.array(wins), np.array(lengths), float(traj.probs[..., 1].mean())


def test_rl_student_finds_the_optimum_that_ad_only_imitates(chain_history, tmp_path):
    history, walk_rate = chain_history
    ad, _ = load_student(train(chain_cfg(history, tmp_path / "ad", "ad"), quiet=True))
    rl, _ = load_student(train(chain_cfg(history, tmp_path / "adq", "adq"), quiet=True))
    ad_wins, _, ad_right = play(ad, "sample")
    rl_wins, rl_len, rl_right = play(rl, "greedy")
    print(f"chain: walk reaches the goal in {walk_rate:.2f} of its episodes; AD (sampled) "
          f"{ad_wins.mean():.2f} (P(right) {ad_right:.2f}); adq (greedy) {rl_wins.mean():.2f}"
          f" (P(right) {rl_right:.2f}, episode lengths {sorted(set(rl_len.tolist()))})")
    # the RL student: the goal (the optimal return) in every episode, by the shortest path
    # (4 steps) in nearly all (a stream's first token, with no previous step, is the
    # least trained: 1 training seed in 4 took one 5-step episode there)
    assert rl_wins.all() and len(rl_wins) >= 16 * (10 * EP // (N - 1) - 1)
    assert (rl_len == N - 1).mean() >= 0.95
    # AD plays the walk: about as often to the goal as the walk, a coin for each move
    assert abs(ad_wins.mean() - walk_rate) < 0.1 and ad_wins.mean() < 0.4
    assert 0.35 < ad_right < 0.65


# ------------------------------------------------------------------ training: resume, threads
def small_cfg(tmp_path, out, **over):
    model = {"n_layers": 1, "d_model": 16, "d_ff": 32, "target_every": 3, "dropout": 0.1}
    return tiny_cfg(tmp_path, out, student={"kind": "adq", "model": model}, **over)


def test_interrupted_resume_is_bit_identical_target_network_included(tmp_path):
    """Interrupted at step 10, between two target copies (9 and 12): the resumed run reads
    the target network of step 9 from the checkpoint and ends on the same weights."""
    synthetic_history(tmp_path / "h.h5")
    full = load_checkpoint(train(small_cfg(tmp_path, "full"), quiet=True))
    cfg = small_cfg(tmp_path, "split")
    first = load_checkpoint(train(cfg, stop_after=10, quiet=True))
    assert first["step"] == 10
    w = first["model"]
    assert not torch.equal(w["head.weight"], w["target.head.weight"])  # last copied at 9
    last = load_checkpoint(train(cfg, quiet=True))
    assert full["step"] == last["step"] == 20
    assert any(k.startswith("target.") for k in full["model"])
    for k in full["model"]:
        assert torch.equal(full["model"][k], last["model"][k]), k
    # the shards run on 1 or 2 threads: the same weights
    two = load_checkpoint(train(small_cfg(tmp_path, "two", threads=2), quiet=True))
    for k in full["model"]:
        assert torch.equal(full["model"][k], two["model"][k]), k
    # and the trained student acts through the cache, greedily
    model, _ = load_student(tmp_path / "full")
    sl = StudentLearner(model, num_envs=2, context_len=12, mode="greedy")
    p = sl.policy(np.array([1, 2]), 0)
    assert sl.kv is not None and p.shape == (2, 3) and set(np.unique(p)) <= {0.0, 1.0}


# ------------------------------------------------------------------ in a study
def test_the_cutoff_study_trains_and_evaluates_the_rl_student(tmp_path):
    """The cut-off study with ``student.kind = "adq"``: the same stages, report and
    checkpoints as AD's; a context as long as a history (the bandit horizon's T pulls) is
    cut to leave each window its successor."""
    import copy

    from test_cutoff_study import TINY

    from outlearn.studies.runner import run_study

    data = copy.deepcopy(TINY)
    data["student"]["kind"] = "adq"
    report = run_study("cutoff", data, tmp_path, quiet=True)
    assert report.is_file()
    from outlearn.histories import History

    shortened = 0
    for d in sorted((report.parent / "stages").glob("*train-*")):
        model, cfg = load_student(d / "student")
        assert isinstance(model, ADQTransformer) and cfg.student.kind == "adq"
        with History(cfg.history) as h:
            steps = h.num_steps
        assert cfg.data.context_len == min(TINY["student"]["context_len"], steps - 1)
        shortened += cfg.data.context_len == steps - 1
    # the early cut (3 episodes of 5 steps) and the horizon (T pulls): one student a seed
    assert shortened == 2 * len(TINY["train_seeds"])
