"""Teacher learners: each learns (or follows its schedule) on the real task families."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from outlearn.envs import make_env
from outlearn.errors import ConfigError
from outlearn.rollout import rollout_scan
from outlearn.teachers import QLearning, QLearningConfig, Transition, epsilon_at, make_teacher
from outlearn.teachers.bandit import ArmStats

EP = 20  # Dark Room episode length


def run(env, name, n_tasks, steps, seed=0, **kw):
    """Rollout of teacher ``name`` on tasks 0..n_tasks-1; returns (traj, optimal returns)."""
    params = env.task_params(jnp.arange(n_tasks))
    keys = jax.random.split(jax.random.key(seed), n_tasks)
    traj, lstate = rollout_scan(env, make_teacher(name, env, **kw), keys, params, steps)
    return traj, np.asarray(jax.vmap(env.optimal_return)(params)), lstate


def episode_returns(traj) -> np.ndarray:
    """(B, episodes) returns of fixed-length Dark Room episodes."""
    b, s = traj.rewards.shape
    return traj.rewards.reshape(b, s // EP, EP).sum(-1)


@pytest.fixture(scope="module")
def room():
    return make_env("darkroom")


@pytest.fixture(scope="module")
def bandit():
    return make_env("bernoulli-bandit", num_arms=5)


def test_qlearning_reaches_90_percent_of_optimal_on_darkroom(room):
    # all 81 goals, 150 episodes; measured: 90% at ~100 episodes, ~100% from ~160.
    traj, opt, _ = run(room, "qlearning", 81, 150 * EP)
    ret = episode_returns(traj)
    assert ret[:, :5].mean() < 0.3 * opt.mean()  # it starts far from optimal ...
    assert ret[:, 140:150].mean() >= 0.9 * opt.mean()  # ... and learns within 150 episodes


def test_qlearning_probs_sum_to_one_and_respect_epsilon(room):
    traj, _, _ = run(room, "qlearning", 8, 200, eps_start=0.2)
    np.testing.assert_allclose(traj.probs.sum(-1), 1.0, atol=1e-6)
    assert traj.probs.min() >= 0.2 / 5 - 1e-7
    # the greedy mass is exactly 1 - eps shared among tied argmax actions
    assert np.isclose(traj.probs.max(), 0.2 / 5 + 0.8, atol=1e-6)


def test_qlearning_policy_and_update_by_hand():
    cfg = QLearningConfig(learning_rate=0.5, discount=0.9, initial_value=0.0, eps_start=0.5)
    ql = QLearning(num_obs=3, num_actions=4, cfg=cfg)
    q = jnp.array([[1.0, 3.0, 3.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # eps/A = 0.125 each, the two tied greedy actions share 0.5
    probs = ql.policy(q, jnp.int32(0), jnp.int32(7))
    np.testing.assert_allclose(probs, [0.125, 0.375, 0.375, 0.125])

    def tr(term, trunc):
        return Transition(jnp.int32(0), jnp.int32(0), jnp.float32(1.0), jnp.int32(1),
                          jnp.bool_(term), jnp.bool_(trunc))

    key = jax.random.key(0)
    # truncated: bootstraps, 1 + 0.5 * (1 + 0.9 * 2 - 1) = 1.9
    assert float(ql.update(key, q, tr(False, True), jnp.int32(0))[0, 0]) == pytest.approx(1.9)
    # terminated: no bootstrap, 1 + 0.5 * (1 - 1) = 1.0
    assert float(ql.update(key, q, tr(True, False), jnp.int32(0))[0, 0]) == pytest.approx(1.0)


def test_epsilon_schedules_by_hand():
    t = jnp.int32(50)
    assert float(epsilon_at(t, 1.0, 0.0, 100, "linear")) == pytest.approx(0.5)
    assert float(epsilon_at(t, 1.0, 0.0, 100, "exponential")) == pytest.approx(0.1)
    assert float(epsilon_at(jnp.int32(100), 1.0, 0.0, 100, "exponential")) == 0.0
    assert float(epsilon_at(jnp.int32(500), 0.9, 0.1, 100, "linear")) == pytest.approx(0.1)
    assert float(epsilon_at(t, 0.3, 0.0, 100, "constant")) == pytest.approx(0.3)


def _episode_index(traj) -> np.ndarray:
    """(B, S) int: the episode each step belongs to (episodes end on terminated or truncated)."""
    ends = np.asarray(traj.terminated) | np.asarray(traj.truncated)
    return np.concatenate([np.zeros((ends.shape[0], 1), int), np.cumsum(ends, 1)[:, :-1]], 1)


def test_per_episode_epsilon_is_constant_within_each_episode():
    """eps_unit = "episode": the noise teacher's epsilon (read back from its probabilities,
    eps/A off the optimal action) is the schedule at the learner's episode count, constant
    within an episode, on a room whose episodes end early at the goal (lengths differ)."""
    fam = make_env("darkroom-hard", size=5, episode_len=12)
    kw = dict(eps_start=1.0, eps_end=0.0, decay_steps=6)
    traj, _, _ = run(fam, "noise", 6, 120, eps_unit="episode", **kw)
    eps = np.asarray(traj.probs).min(-1) * fam.num_actions  # (B, S)
    ep = _episode_index(traj)
    lengths = np.diff(np.flatnonzero(np.diff(ep[0]))) if ep[0, -1] > 2 else np.array([])
    assert len(set(lengths.tolist())) > 1  # episodes of different lengths: a real test
    want = np.asarray(epsilon_at(jnp.asarray(ep, jnp.int32), 1.0, 0.0, 6, "linear"))
    np.testing.assert_allclose(eps, want, atol=1e-6)
    for b in range(eps.shape[0]):
        for e in np.unique(ep[b]):
            assert np.ptp(eps[b][ep[b] == e]) == 0.0  # constant within the episode
    # the default clock is the step: within the first episode epsilon moves every step
    steps, _, _ = run(fam, "noise", 6, 120, **kw)
    first = np.asarray(steps.probs)[0, :5].min(-1) * fam.num_actions
    np.testing.assert_allclose(first, [1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6], atol=1e-6)


def test_per_episode_qlearning_counts_episodes_in_its_state():
    """Q-learning with eps_unit = "episode": the state carries the episodes finished; the
    policy reads epsilon from that count (not the step), the update adds one exactly when a
    transition ends an episode, and the Q update itself is unchanged."""
    from outlearn.teachers.qlearning import EpisodeClock

    kw = dict(learning_rate=0.5, discount=0.9, initial_value=0.0, eps_schedule="linear",
              eps_start=1.0, eps_end=0.0, eps_decay_steps=4)
    per_ep = QLearning(3, 4, QLearningConfig(eps_unit="episode", **kw))
    per_step = QLearning(3, 4, QLearningConfig(**kw))
    s = per_ep.init(jax.random.key(0), None)
    assert isinstance(s, EpisodeClock) and int(s.episodes) == 0
    q = jnp.array([[1.0, 3.0, 0.0, 0.0], [0.0] * 4, [0.0] * 4])
    s = EpisodeClock(q, jnp.int32(1))
    for t in (0, 7, 1000):  # eps = 0.75 at episode 1, whatever the step
        np.testing.assert_allclose(per_ep.policy(s, jnp.int32(0), jnp.int32(t)),
                                   [0.1875, 0.4375, 0.1875, 0.1875])

    def tr(term, trunc):
        return Transition(jnp.int32(0), jnp.int32(0), jnp.float32(1.0), jnp.int32(1),
                          jnp.bool_(term), jnp.bool_(trunc))

    key = jax.random.key(0)
    for term, trunc, more in ((False, False, 0), (True, False, 1), (False, True, 1)):
        out = per_ep.update(key, s, tr(term, trunc), jnp.int32(5))
        assert int(out.episodes) == 1 + more
        np.testing.assert_array_equal(out.inner, per_step.update(key, q, tr(term, trunc),
                                                                 jnp.int32(5)))


def test_per_episode_epsilon_on_a_bandit_is_per_step():
    """A bandit pull is an episode, so epsilon-greedy's two clocks give the same history."""
    fam = make_env("bernoulli-bandit", num_arms=4)
    kw = dict(eps_schedule="linear", eps_start=1.0, eps_end=0.1, eps_decay_steps=30)
    a, _, _ = run(fam, "egreedy", 5, 60, **kw)
    b, _, _ = run(fam, "egreedy", 5, 60, eps_unit="episode", **kw)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.probs, b.probs)


@pytest.fixture(scope="module")
def room_random(room):
    """Random learner on 81 goals for 10 episodes: the trajectory."""
    return run(room, "random", 81, 10 * EP)[0]


def test_random_probs_uniform_and_oracle_optimal(room, room_random):
    assert np.all(room_random.probs == np.float32(1 / 5))
    traj, opt, _ = run(room, "oracle", 81, 2 * EP)
    np.testing.assert_array_equal(episode_returns(traj), np.stack([opt, opt], 1))


@pytest.fixture(scope="module")
def random_regret(bandit):
    """Mean cumulative pseudo-regret of the uniform learner, 100 tasks, T = 1000."""
    traj, best, _ = run(bandit, "random", 100, 1000, seed=1)
    return (best[:, None] - traj.expected_rewards).sum(1).mean()


@pytest.mark.parametrize("name,c", [("ucb1", 15.0), ("thompson", 5.0)])
def test_bandit_regret_logarithmic(bandit, random_regret, name, c):
    # 100 tasks, T = 1000. Measured mean pseudo-regret: UCB1 70 (10.1 ln T),
    # Thompson 17 (2.4 ln T), random 323.
    T = 1000
    traj, best, _ = run(bandit, name, 100, T, seed=1)
    regret = (best[:, None] - traj.expected_rewards).sum(1).mean()
    assert regret < c * math.log(T)
    assert regret < 0.3 * random_regret
    # policies are one-hot (deterministic UCB; exact Thompson's drawn arm) and followed
    assert np.all(traj.probs.max(-1) == 1.0)
    np.testing.assert_array_equal(traj.actions, traj.probs.argmax(-1))
    if name == "ucb1":  # each arm once first, lowest index first
        np.testing.assert_array_equal(traj.actions[:, :5], np.tile(np.arange(5), (100, 1)))


@pytest.mark.parametrize("env_name", ["bernoulli-bandit", "gaussian-bandit"])
def test_thompson_posterior_draws_by_hand(env_name):
    # arm 0: 100 pulls summing to 50; arm 1: never pulled. 4000 posterior draws.
    th = make_teacher("thompson", make_env(env_name, num_arms=2))
    stats = ArmStats(jnp.array([100.0, 0.0]), jnp.array([50.0, 0.0]))
    draws = np.asarray(jax.vmap(lambda k: th.sample_means(k, stats))(
        jax.random.split(jax.random.key(3), 4000)))
    if env_name == "bernoulli-bandit":  # Beta(51, 51) and Beta(1, 1)
        mean, std = [0.5, 0.5], [math.sqrt(0.25 / 103), math.sqrt(1 / 12)]
    else:  # N(0, 1) prior, noise std 1: N(50/101, 1/101) and N(0, 1)
        mean, std = [50 / 101, 0.0], [1 / math.sqrt(101), 1.0]
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(draws.std(0), std, rtol=0.08)


def test_thompson_gaussian_prior_mean_and_noise_by_hand():
    """A N(0.5, 0.5^2) prior with noise std 0.3 (DPT's bandit: means in [0, 1]); a zero prior
    mean draws exactly what the teacher drew before prior_mean existed."""
    fam = make_env("gaussian-bandit", num_arms=2)
    th = make_teacher("thompson", fam, prior_mean=0.5, prior_std=0.5, noise_std=0.3)
    stats = ArmStats(jnp.array([100.0, 0.0]), jnp.array([50.0, 0.0]))
    keys = jax.random.split(jax.random.key(3), 4000)
    draws = np.asarray(jax.vmap(lambda k: th.sample_means(k, stats))(keys))
    prec = 1 / 0.25 + 100 / 0.09
    np.testing.assert_allclose(draws.mean(0), [(0.5 / 0.25 + 50 / 0.09) / prec, 0.5], atol=0.02)
    np.testing.assert_allclose(draws.std(0), [1 / math.sqrt(prec), 0.5], rtol=0.08)
    zero = make_teacher("thompson", fam, prior_mean=0.0)
    default = make_teacher("thompson", fam)
    a = jax.vmap(lambda k: zero.sample_means(k, stats))(keys[:50])
    b = jax.vmap(lambda k: default.sample_means(k, stats))(keys[:50])
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_egreedy_respects_epsilon_and_beats_random(bandit, random_regret):
    traj, best, _ = run(bandit, "egreedy", 100, 1000, seed=1)
    assert traj.probs.min() == pytest.approx(0.3 / 5)
    np.testing.assert_allclose(traj.probs.sum(-1), 1.0, atol=1e-6)
    # measured 105 (eps 0.3 keeps paying 0.3 x the random per-step regret)
    assert (best[:, None] - traj.expected_rewards).sum(1).mean() < 0.5 * random_regret


def test_noise_curriculum_return_follows_schedule(room, room_random):
    # eps falls linearly 1 -> 0 over 150 episodes, then stays 0 for 50 more.
    traj, opt, _ = run(room, "noise", 81, 200 * EP, decay_steps=150 * EP)
    ret = episode_returns(traj).mean(0)  # (200,) mean over the 81 goals
    phases = ret[:150].reshape(3, 50).mean(1)
    rand = episode_returns(room_random).mean()
    assert abs(phases[0] - rand) < 0.2 * opt.mean()  # eps ~0.83 on average: close to random
    assert phases[0] < phases[1] < phases[2]  # the return rises as eps falls
    assert phases[2] > 0.5 * opt.mean()  # eps ~0.17 on average: mostly optimal
    np.testing.assert_array_equal(ret[150:], np.full(50, opt.mean(), np.float32))  # eps = 0


def test_noise_curriculum_with_withheld_actions_by_hand(room):
    """Withheld stay (0): eps * u + (1 - eps) * onehot(optimal), u uniform over actions
    1-4; on the goal, where the oracle stays, uniform over 1-4; never any mass on 0."""
    t = make_teacher("noise", room, eps_start=0.4, eps_end=0.4, withheld_actions=[0])
    params = room.task_params(jnp.arange(81))
    s = jax.vmap(t.init, (None, 0))(jax.random.key(0), params)
    centre = jnp.full(81, 40, jnp.int32)  # the start cell
    probs = np.asarray(jax.vmap(t.policy, (0, 0, None))(s, centre, jnp.int32(0)))
    opt = np.asarray(jax.vmap(room.optimal_action)(centre, params))
    u = np.array([0, 0.25, 0.25, 0.25, 0.25], np.float32)
    for g in range(81):
        want = 0.4 * u + 0.6 * (u if opt[g] == 0 else np.eye(5, dtype=np.float32)[opt[g]])
        np.testing.assert_allclose(probs[g], want, atol=1e-7)
    assert np.all(probs[:, 0] == 0) and (opt == 0).sum() == 1  # the goal at the centre
    traj, _, _ = run(room, "noise", 81, 5 * EP, withheld_actions=[0])
    assert not np.any(np.asarray(traj.actions) == 0)


def test_ppo_beats_random_quickly(room, room_random):
    # 16 goals, 100 episodes (default config): measured mean return over episodes
    # 80-99 = 10.4 (0.67 of optimal), random's = 0.26.
    traj, opt, _ = run(room, "ppo", 16, 100 * EP)
    rand = episode_returns(room_random).mean()
    late = episode_returns(traj)[:, 80:].mean()
    assert late > 10 * rand
    assert late > 0.4 * opt.mean()


def test_ppo_trains_only_when_the_buffer_is_full(room):
    ppo = make_teacher("ppo", room, n_steps=4, num_minibatches=2)
    s0 = ppo.init(jax.random.key(0), None)
    tr = Transition(jnp.int32(40), jnp.int32(2), jnp.float32(1.0), jnp.int32(41),
                    jnp.bool_(False), jnp.bool_(False))
    update = jax.jit(ppo.update)
    s1 = update(jax.random.key(1), s0, tr, jnp.int32(2))  # slot 2 of 4: store only
    np.testing.assert_array_equal(s1.net["w1"], s0.net["w1"])
    assert int(s1.buf.obs[2]) == 40 and float(s1.buf.rewards[2]) == 1.0
    s2 = update(jax.random.key(1), s1, tr, jnp.int32(3))  # slot 3 of 4: full, train
    assert not np.allclose(s2.net["w1"], s0.net["w1"])


@pytest.mark.slow
def test_ppo_learns_darkroom_thoroughly(room):
    # all 81 goals, 300 episodes: measured ~0.98 of optimal over the last 30 episodes.
    traj, opt, _ = run(room, "ppo", 81, 300 * EP)
    assert episode_returns(traj)[:, 270:].mean() >= 0.9 * opt.mean()


@pytest.mark.parametrize(
    "name,kwargs,key",
    [
        ("qlearning", {"discount": 1.5}, "discount"),
        ("qlearning", {"learning_rate": 0.0}, "learning_rate"),
        ("qlearning", {"eps_schedule": "cosine"}, "eps_schedule"),
        ("qlearning", {"alpha": 0.1}, "alpha"),
        ("ppo", {"n_steps": 10, "num_minibatches": 3}, "num_minibatches"),
        ("ppo", {"clip": -0.1}, "clip"),
        ("ucb1", {"c": -1.0}, "c"),
        ("thompson", {"likelihood": "poisson"}, "likelihood"),
        ("egreedy", {"eps_start": 2.0}, "eps_start"),
        ("noise", {"decay_steps": 0}, "decay_steps"),
        ("noise", {"schedule": "cosine"}, "schedule"),
        ("noise", {"eps_unit": "epoch"}, "eps_unit"),
        ("qlearning", {"eps_unit": "steps"}, "eps_unit"),
        ("random", {"x": 1}, "x"),
        ("noise", {"withheld_actions": [5]}, "withheld_actions"),
        ("noise", {"withheld_actions": [0, 0]}, "withheld_actions"),
        ("noise", {"withheld_actions": [0, 1, 2, 3, 4]}, "withheld_actions"),
    ],
)
def test_bad_config_names_the_key(room, name, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        make_teacher(name, room, **kwargs)


def test_unknown_teacher_lists_known_ones(room):
    with pytest.raises(ConfigError, match="qlearning"):
        make_teacher("q-learning", room)


def test_mixture_teacher_draws_one_fixed_distribution_per_learner(bandit):
    """DPT's contexts: each learner keeps one action distribution for its whole history,
    (1 - c) Dirichlet + c one-hot with c from the grid; the learners span the grid."""
    traj, _, state = run(bandit, "mixture", 400, 50)
    probs = np.asarray(traj.probs)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(probs, np.broadcast_to(probs[:, :1], probs.shape))
    np.testing.assert_allclose(probs[:, 0], np.asarray(state), atol=0)
    top = probs[:, 0].max(-1)
    assert np.mean(top > 0.999) > 0.05  # c = 1: all on one arm
    assert np.mean(top < 0.5) > 0.2  # small c: spread over the arms
    # actions follow each learner's distribution: the top arm is pulled most often
    counts = np.stack([(np.asarray(traj.actions) == a).sum(1) for a in range(5)], -1)
    assert np.mean(counts[top > 0.9].argmax(-1) == probs[top > 0.9, 0].argmax(-1)) == 1.0
    one = np.asarray(run(bandit, "mixture", 50, 5, point_mass=[1.0])[0].probs)
    assert np.all(one.max(-1) == 1.0)
    with pytest.raises(ConfigError, match=r"point_mass.*\[0, 1\]"):
        make_teacher("mixture", bandit, point_mass=[1.5])


def _contract_pairs() -> list[tuple[str, str]]:
    """(teacher, family) for every registered teacher on each family it accepts (a teacher
    refuses a family it cannot run, e.g. UCB1 on Dark Room, with a ConfigError)."""
    import outlearn.teachers  # noqa: F401  (registers them)
    from outlearn.registry import TEACHERS

    pairs = []
    for name in sorted(TEACHERS.names()):
        for env in _FAMILIES:
            try:
                make_teacher(name, _FAMILIES[env])
            except ConfigError:
                continue
            pairs.append((name, env))
    return pairs


_FAMILIES = {"bernoulli-bandit": make_env("bernoulli-bandit", num_arms=3),
             "darkroom": make_env("darkroom", size=3, episode_len=4),
             "gymnax": make_env("gymnax", name="Breakout-MinAtar", episode_len=6)}


def test_every_registered_teacher_runs_somewhere():
    from outlearn.registry import TEACHERS

    assert {t for t, _ in _contract_pairs()} == set(TEACHERS.names())


@pytest.mark.parametrize("name,env", _contract_pairs())
def test_teacher_contract_under_vmap(name, env):
    """Every teacher, batched: probabilities are a distribution over the family's actions at
    every step, the fused rollout keeps its state's shapes, and it is deterministic in its
    keys."""
    fam = _FAMILIES[env]
    traj, _, lstate = run(fam, name, 4, 12)
    traj2, _, _ = run(fam, name, 4, 12)
    p = np.asarray(traj.probs)
    assert p.shape == (4, 12, fam.num_actions)
    assert np.all(p >= 0) and np.allclose(p.sum(-1), 1.0, atol=1e-5)
    a = np.asarray(traj.actions)
    assert np.all((a >= 0) & (a < fam.num_actions))
    assert all(leaf.shape[0] == 4 for leaf in jax.tree.leaves(lstate))
    np.testing.assert_array_equal(a, np.asarray(traj2.actions))

