"""The DQN teacher: TD targets, loss, replay buffer and target copies by hand; shapes and
determinism under vmap; its histories through collect; and (slow) it learns Breakout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from outlearn.envs import make_env
from outlearn.errors import ConfigError
from outlearn.rollout import rollout_scan
from outlearn.teachers import DQN, DQNConfig, Transition, make_teacher
from outlearn.teachers.dqn import Replay, q_values, td_targets


def test_td_targets_by_hand():
    q_next = jnp.array([[1.0, 3.0], [2.0, -1.0], [5.0, 4.0]])
    y = td_targets(q_next, jnp.array([1.0, 0.0, 2.0]), jnp.array([False, False, True]), 0.5)
    np.testing.assert_allclose(y, [1.0 + 0.5 * 3.0, 0.0 + 0.5 * 2.0, 2.0])  # terminal: r only


def _room_dqn(**kw):
    room = make_env("darkroom", size=3, episode_len=4)  # 9 cells, 5 actions
    return room, DQN(room, DQNConfig(hidden=4, **kw))


def test_loss_by_hand():
    """With zero weights Q(s) = b3 for every s: Q(s, a) = b3[a], max Q_target = max b3."""
    _, dqn = _room_dqn(discount=0.5, huber_delta=1.0)
    net = jax.tree.map(jnp.zeros_like, dqn.init_net(jax.random.key(0)))
    net["b3"] = jnp.array([0.0, 1.0, 2.0, 0.0, 0.0])
    batch = Replay(jnp.array([0, 4]), jnp.array([1, 2]), jnp.array([0.0, 1.0]),
                   jnp.array([1, 5]), jnp.array([False, True]))
    # targets: 0 + 0.5 * 2 = 1 and 1 (terminal); errors: 1 - 1 = 0 and 2 - 1 = 1
    # Huber(delta=1): 0 and 0.5 * 1^2 = 0.5; mean 0.25
    assert float(dqn.loss(net, net, batch)) == pytest.approx(0.25)
    np.testing.assert_allclose(q_values(net, dqn.features(jnp.int32(3))), net["b3"])


def _tr(obs, action, reward, next_obs, term=False):
    return Transition(jnp.int32(obs), jnp.int32(action), jnp.float32(reward),
                      jnp.int32(next_obs), jnp.bool_(term), jnp.bool_(False))


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                                    strict=True))


def test_replay_buffer_and_target_copies_by_hand():
    _, dqn = _room_dqn(buffer_size=4, batch_size=2, learning_starts=2, target_every=3)
    key = jax.random.key(0)
    s0 = dqn.init(key, None)
    assert s0.buf.obs.shape == (4,) and _same(s0.online, s0.target)
    dqn.update = jax.jit(dqn.update)  # one compile instead of op-by-op conds
    # t=0: stored in slot 0; 1 < learning_starts: no training, no copy
    s1 = dqn.update(key, s0, _tr(2, 3, 1.0, 5, term=True), jnp.int32(0))
    assert [int(x[0]) for x in s1.buf] == [2, 3, 1, 5, 1]
    assert not bool(s1.buf.terminated[1:].any())
    assert _same(s1.online, s0.online)
    # t=1: slot 1; t + 1 = 2 >= learning_starts: one Adam step, the target stays
    s2 = dqn.update(key, s1, _tr(5, 0, 0.0, 6), jnp.int32(1))
    assert int(s2.buf.obs[1]) == 5 and int(s2.buf.next_obs[1]) == 6
    assert not _same(s2.online, s1.online) and _same(s2.target, s0.target)
    # t=2: (t + 1) % target_every == 0: the target takes the online weights
    s3 = dqn.update(key, s2, _tr(6, 1, 0.0, 3), jnp.int32(2))
    assert _same(s3.target, s3.online) and not _same(s3.target, s0.target)
    # t=5 wraps to slot 5 % 4 = 1, overwriting the transition of t=1
    s4 = dqn.update(key, s3, _tr(7, 4, 0.5, 8), jnp.int32(5))
    assert [float(x[1]) for x in s4.buf] == [7, 4, 0.5, 8, 0]
    assert int(s4.buf.obs[0]) == 2  # slot 0 untouched


def test_epsilon_schedule_in_policy():
    _, dqn = _room_dqn(eps_start=1.0, eps_end=0.2, eps_decay_steps=10)
    s = dqn.init(jax.random.key(1), None)
    np.testing.assert_allclose(dqn.policy(s, jnp.int32(0), jnp.int32(0)), 0.2)  # uniform
    p = np.asarray(dqn.policy(s, jnp.int32(0), jnp.int32(10)))
    assert p.min() == pytest.approx(0.2 / 5) and p.sum() == pytest.approx(1.0)


def test_runs_batched_shapes_and_is_deterministic():
    room = make_env("darkroom", size=3, episode_len=4)
    kw = dict(hidden=8, buffer_size=16, batch_size=4, learning_starts=8, target_every=8)
    params = room.task_params(np.arange(3))
    dqn = make_teacher("dqn", room, **kw)  # one object: the rollout compiles once

    def run(seed):
        keys = jax.random.split(jax.random.key(seed), 3)
        return rollout_scan(room, dqn, keys, params, 30)

    traj, s = run(0)
    traj2, s2 = run(0)
    traj3, _ = run(1)
    assert traj.probs.shape == (3, 30, 5) and s.online["w1"].shape == (3, 9, 8)
    assert s.buf.obs.shape == (3, 16) and s.buf.rewards.shape == (3, 16)
    np.testing.assert_array_equal(traj.actions, traj2.actions)
    assert _same(s.online, s2.online) and not np.array_equal(traj.actions, traj3.actions)


def test_frame_features_and_bad_config():
    fam = make_env("gymnax", name="Breakout-MinAtar")
    dqn = make_teacher("dqn", fam, hidden=8, buffer_size=4, batch_size=2)
    s = dqn.init(jax.random.key(0), None)
    assert s.buf.obs.shape == (4, 10, 10, 4) and s.buf.obs.dtype == jnp.bool_
    assert s.online["w1"].shape == (400, 8)
    frame = jnp.zeros((10, 10, 4), bool).at[2, 3, 1].set(True)
    x = dqn.features(frame)
    assert x.shape == (400,) and float(x.sum()) == 1.0 and float(x[(2 * 10 + 3) * 4 + 1]) == 1
    with pytest.raises(ConfigError, match=r"batch_size \(64\) must be <= buffer_size \(32\)"):
        make_teacher("dqn", fam, batch_size=64, buffer_size=32)
    with pytest.raises(ConfigError, match=r"key 'learning_rate'"):
        make_teacher("dqn", fam, learning_rate=0.0)


def test_histories_through_collect(tmp_path):
    from outlearn.collect import CollectConfig, collect
    from outlearn.config import parse_config
    from outlearn.histories import History

    cfg = parse_config(CollectConfig, {
        "seed": 0, "learners_per_task": 2, "num_steps": 24, "chunk_steps": 8,
        "out": str(tmp_path / "dqn.h5"),
        "env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 4}},
        "teacher": {"name": "dqn", "kwargs": {"hidden": 8, "buffer_size": 16, "batch_size": 4,
                                              "learning_starts": 8}},
        "tasks": {"seed": 0, "n_train": 2, "n_test": 1}})
    with History(collect(cfg, progress=False)) as h:
        assert h.meta.teacher_name == "dqn" and h.num_learners == 6 and h.num_steps == 24
        assert h.has_probs and h.read_steps("probs").shape == (6, 24, 5)
        assert "online" not in h.file and h.episode_lengths.shape == (6, 6)


@pytest.mark.slow
def test_dqn_learns_breakout_minatar():
    """Mean return over each learner's last 10% of episodes >= 10x a random policy's,
    with the whole 95% CI over learners above that level."""
    from scipy import stats

    fam = make_env("gymnax", name="Breakout-MinAtar")
    n, steps = 8, 150_000
    params = fam.task_params(np.arange(n))
    keys = jax.random.split(jax.random.key(0), n)

    def tail_means(traj):
        from outlearn.histories.io import episode_returns

        ret, lens = episode_returns(traj.rewards, traj.terminated, traj.truncated)
        out = []
        for r, ln in zip(ret, lens, strict=True):
            r = r[ln > 0]
            out.append(r[-max(1, len(r) // 10):].mean())
        return np.array(out)

    rand, _ = rollout_scan(fam, make_teacher("random", fam), keys, params, 20_000)
    random_mean = float(tail_means(rand).mean())
    traj, _ = rollout_scan(fam, make_teacher("dqn", fam), keys, params, steps, chunk=10_000)
    m = tail_means(traj)
    lo = m.mean() - stats.t.ppf(0.975, n - 1) * m.std(ddof=1) / np.sqrt(n)
    print(f"random {random_mean:.3f}/episode; dqn last 10%: mean {m.mean():.2f}, "
          f"95% CI lower {lo:.2f}, per learner {np.round(m, 2)}")
    assert 0.1 < random_mean < 1.0  # random Breakout: ~0.4 a episode
    assert lo >= 10 * random_mean
