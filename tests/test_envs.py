"""Task families: protocol under vmap, hand-checked dynamics, exact optimal returns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from outlearn.envs import (
    DarkRoomState,
    KeyDoorState,
    TaskFamily,
    has_discrete_obs,
    has_oracle,
    make_env,
    obs_dtype,
    obs_shape,
    split_tasks,
)
from outlearn.envs.darkroom import start_cells
from outlearn.errors import ConfigError
from outlearn.registry import ENVS

#: families whose name differs from what they build (a wrapper names what it wraps)
WRAPPERS = {"permuted-actions"}
#: every registered family: a new one joins the contract test without editing this file
ALL = sorted(ENVS.names())


def _keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


# ----------------------------------------------------------------------------- protocol


@pytest.mark.parametrize("name", ALL)
def test_protocol_under_vmap(name):
    fam = ENVS.get(name)()
    assert isinstance(fam, TaskFamily)
    assert fam.name == name or name in WRAPPERS
    n = 6
    ids = np.arange(n) * 7
    params = fam.task_params(ids)
    assert all(leaf.shape[0] == n for leaf in jax.tree.leaves(params))
    obs, state = jax.vmap(fam.reset)(_keys(n), params)
    # index observations: int32 (n,) in [0, num_obs); frames: (n, *obs_shape), obs_dtype
    shape, dtype = (n, *obs_shape(fam)), obs_dtype(fam)
    assert obs.shape == shape and obs.dtype == dtype
    assert has_discrete_obs(fam) == (fam.num_obs > 0)
    for t in range(3):
        actions = jnp.arange(n, dtype=jnp.int32) % fam.num_actions
        exp_r = jax.vmap(fam.expected_reward)(state, actions, params)
        out = jax.vmap(fam.step)(_keys(n, t + 1), state, actions, params)
        assert out.obs.shape == shape and out.obs.dtype == dtype
        if has_discrete_obs(fam):
            assert bool(jnp.all((out.obs >= 0) & (out.obs < fam.num_obs)))
        assert out.reward.dtype == jnp.float32 and exp_r.shape == (n,)
        assert out.terminated.dtype == jnp.bool_ and out.truncated.dtype == jnp.bool_
        state = out.state
    opt = jax.vmap(fam.optimal_return)(params)
    assert opt.shape == (n,) and opt.dtype == jnp.float32
    acts = jax.vmap(fam.optimal_action)(obs, params)
    assert acts.shape == (n,) and acts.dtype == jnp.int32
    if has_oracle(fam):
        assert bool(jnp.all((acts >= 0) & (acts < fam.num_actions)))
        assert bool(jnp.all(jnp.isfinite(opt)))
    else:  # no oracle: -1 and NaN, never a made-up label
        assert bool(jnp.all(acts == -1)) and bool(jnp.all(jnp.isnan(opt)))
    # task_params is deterministic in the id
    again = fam.task_params(ids)
    assert all(np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(params), jax.tree.leaves(again), strict=True))


# ----------------------------------------------------------------------------- dynamics


def _dr_step(fam, cell, action, goal, time=0, paid=False):
    st = DarkRoomState(jnp.int32(cell), jnp.int32(time), jnp.bool_(paid))
    return fam.step(jax.random.key(0), st, jnp.int32(action), _params1(fam.task_params([goal])))


def test_darkroom_moves_clip_at_walls():
    fam = make_env("darkroom", size=3)  # cells 0 1 2 / 3 4 5 / 6 7 8, goal far away
    expect = {(0, 0): 0, (0, 1): 0, (0, 4): 0, (0, 2): 1, (0, 3): 3,
              (8, 2): 8, (8, 3): 8, (8, 1): 5, (8, 4): 7, (4, 1): 1, (5, 2): 5}
    for (cell, a), nxt in expect.items():
        out = _dr_step(fam, cell, a, goal=6)
        assert int(out.obs) == nxt, (cell, a)


def _params1(p):
    return jax.tree.map(lambda x: x[0], p)


def test_darkroom_rewards_and_termination():
    every = make_env("darkroom", size=3)
    out = _dr_step(every, 0, 2, goal=1)  # move onto the goal
    assert float(out.reward) == 1.0 and not bool(out.terminated)
    out = _dr_step(every, 1, 0, goal=1, paid=True)  # staying pays again
    assert float(out.reward) == 1.0
    assert float(_dr_step(every, 0, 3, goal=1).reward) == 0.0
    once = make_env("darkroom", size=3, reward_mode="once")
    assert float(_dr_step(once, 0, 2, goal=1).reward) == 1.0
    assert float(_dr_step(once, 1, 0, goal=1, paid=True).reward) == 0.0
    term = make_env("darkroom-hard", size=3)
    out = _dr_step(term, 0, 2, goal=1)
    assert float(out.reward) == 1.0 and bool(out.terminated) and not bool(out.truncated)
    st = DarkRoomState(jnp.int32(0), jnp.int32(0), jnp.bool_(False))
    p = _params1(every.task_params([1]))
    assert float(every.expected_reward(st, jnp.int32(2), p)) == 1.0
    assert float(every.expected_reward(st, jnp.int32(3), p)) == 0.0


def test_darkroom_truncates_at_episode_len():
    fam = make_env("darkroom", size=3, episode_len=4)
    p = _params1(fam.task_params([8]))
    obs, st = fam.reset(jax.random.key(1), p)
    assert int(obs) == 4  # centre of 3x3
    flags = []
    for _ in range(4):
        out = fam.step(jax.random.key(0), st, jnp.int32(0), p)
        flags.append((bool(out.terminated), bool(out.truncated)))
        st = out.state
    assert flags == [(False, False)] * 3 + [(False, True)]


def _kd_run(fam, task_id, start, actions):
    p = _params1(fam.task_params([task_id]))
    st = KeyDoorState(jnp.int32(start), jnp.bool_(False), jnp.int32(0))
    rows = []
    for a in actions:
        out = fam.step(jax.random.key(0), st, jnp.int32(a), p)
        rows.append((int(out.obs), float(out.reward), bool(out.terminated)))
        st = out.state
    return rows


def test_keydoor_dynamics_by_hand():
    fam = make_env("keydoor", size=3)
    # key at 2, door at 6; start 0: right, right (key), down, down, left, left (door)
    rows = _kd_run(fam, 2 * 9 + 6, 0, [2, 2, 3, 3, 4, 4])
    assert rows == [(1, 0.0, False), (2 + 9, 1.0, False), (5 + 9, 0.0, False),
                    (8 + 9, 0.0, False), (7 + 9, 0.0, False), (6 + 9, 1.0, True)]
    # the door without the key gives nothing; the key pays once
    rows = _kd_run(fam, 2 * 9 + 6, 3, [3, 0, 1, 1, 2, 2, 0])
    assert [r[1] for r in rows] == [0, 0, 0, 0, 0, 1, 0] and not any(r[2] for r in rows)
    # key and door on one cell: both rewards and termination on the same step
    assert _kd_run(fam, 4 * 9 + 4, 1, [3]) == [(4 + 9, 2.0, True)]
    p = _params1(fam.task_params([2 * 9 + 6]))
    assert int(fam.optimal_action(jnp.int32(0), p)) == 2  # towards the key
    assert int(fam.optimal_action(jnp.int32(2 + 9), p)) == 3  # with it, towards the door
    assert int(fam.optimal_action(jnp.int32(2), p)) == 0  # on the key: stay to pick it up


def test_bandit_rewards():
    fam = make_env("bernoulli-bandit", num_arms=3)
    p = _params1(fam.task_params([5]))
    n = 2000
    st = fam.reset(jax.random.key(0), p)[1]
    out = jax.jit(jax.vmap(lambda k: fam.step(k, st, jnp.int32(1), p)))(_keys(n, 3))
    assert bool(jnp.all(out.truncated)) and not bool(jnp.any(out.terminated))
    assert bool(jnp.all(out.obs == 0))
    assert set(np.unique(np.asarray(out.reward))) <= {0.0, 1.0}
    assert abs(float(out.reward.mean()) - float(p.means[1])) < 4 * 0.5 / np.sqrt(n)
    assert float(fam.expected_reward(st, jnp.int32(1), p)) == float(p.means[1])
    assert int(fam.optimal_action(jnp.int32(0), p)) == int(jnp.argmax(p.means))
    assert float(fam.optimal_return(p)) == float(jnp.max(p.means))
    g = make_env("gaussian-bandit", num_arms=3, noise_std=0.0)
    gp = _params1(g.task_params([5]))
    out = g.step(jax.random.key(1), st, jnp.int32(2), gp)
    assert float(out.reward) == float(gp.means[2])
    noisy = make_env("gaussian-bandit", num_arms=3, noise_std=2.0)
    r = jax.jit(jax.vmap(lambda k: noisy.step(k, st, jnp.int32(0), gp).reward))(_keys(n, 4))
    assert abs(float(r.std()) - 2.0) < 0.15 and abs(float(r.mean() - gp.means[0])) < 0.2


def test_bandit_means_come_from_the_id():
    fam = make_env("bernoulli-bandit", num_arms=4)
    a = fam.task_params(np.array([3, 4, 3]))
    b = make_env("bernoulli-bandit", num_arms=4).task_params(jnp.array([3], dtype=jnp.int32))
    assert np.array_equal(a.means[0], a.means[2]) and np.array_equal(a.means[0], b.means[0])
    assert not np.allclose(a.means[0], a.means[1])
    means = np.asarray(fam.task_params(np.arange(800)).means)
    assert means.min() >= 0 and means.max() <= 1 and len({tuple(r) for r in means}) == len(means)
    g = np.asarray(make_env("gaussian-bandit", num_arms=4).task_params(np.arange(800)).means)
    assert abs(g.mean()) < 0.1 and abs(g.std() - 1.0) < 0.1
    # split ids of two seeds differ in the high bits: their tasks must differ too
    bern = make_env("bernoulli-bandit")
    tr0, _ = split_tasks(bern, 0, 3, 2)
    tr1, _ = split_tasks(bern, 1, 3, 2)
    assert not np.allclose(bern.task_params(tr0).means, bern.task_params(tr1).means)


def test_default_bandit_means_are_the_old_draws_bit_for_bit():
    """The ``means`` setting left at its default draws exactly what the families drew before
    it existed: ``uniform(key, (K,))`` (Bernoulli) and ``normal(key, (K,))`` (Gaussian) on
    the task's id key, so every old task id is the same task, to the bit."""
    from outlearn.rng import id_keys

    ids = np.concatenate([np.arange(500), split_tasks(make_env("bernoulli-bandit"), 7, 0, 50)[1]])
    for name, salt, old, spelled in (
            ("bernoulli-bandit", 1, lambda k: jax.random.uniform(k, (5,), dtype=jnp.float32),
             {"dist": "uniform", "low": 0.0, "high": 1.0}),
            ("gaussian-bandit", 2, lambda k: jax.random.normal(k, (5,), dtype=jnp.float32),
             {"dist": "normal", "mean": 0, "sd": 1})):
        ref = np.asarray(jax.jit(jax.vmap(old))(id_keys(jnp.asarray(ids), salt)))
        for fam in (make_env(name), make_env(name, means=spelled)):
            new = np.asarray(fam.task_params(ids).means)
            np.testing.assert_array_equal(new.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("name", ["bernoulli-bandit", "gaussian-bandit"])
def test_bandit_mean_distributions(name):
    """uniform on [a, b], normal (clipped to [0, 1] on a Bernoulli bandit) and beta(a, b)
    draw means with the right range and moments; the draws stay deterministic in the id."""
    ids = np.arange(3000)

    def means(**dist):
        fam = make_env(name, num_arms=4, means=dist)
        m = np.asarray(fam.task_params(ids).means)
        np.testing.assert_array_equal(m, np.asarray(fam.task_params(ids).means))
        return m

    u = means(dist="uniform", low=0.2, high=0.6)
    assert u.min() >= 0.2 and u.max() < 0.6
    assert abs(u.mean() - 0.4) < 0.01 and abs(u.std() - 0.4 / np.sqrt(12)) < 0.01
    b = means(dist="beta", a=2.0, b=5.0)
    assert b.min() >= 0 and b.max() <= 1
    assert abs(b.mean() - 2 / 7) < 0.01 and abs(b.var() - 10 / (49 * 8)) < 0.003
    n = means(dist="normal", mean=0.5, sd=0.4)
    if name == "gaussian-bandit":
        assert abs(n.mean() - 0.5) < 0.02 and abs(n.std() - 0.4) < 0.02
        assert n.min() < 0 and n.max() > 1
    else:  # a probability: clipped to [0, 1], the tails pile up on the ends
        assert n.min() == 0.0 and n.max() == 1.0
        assert abs((n == 0).mean() - 0.106) < 0.02 and abs((n == 1).mean() - 0.106) < 0.02


def test_dpt_bandit_setting():
    """DPT's bandit: Gaussian rewards with sd 0.3 around means uniform on [0, 1]."""
    fam = make_env("gaussian-bandit", num_arms=5, noise_std=0.3,
                   means={"dist": "uniform", "low": 0.0, "high": 1.0})
    p = _params1(fam.task_params([11]))
    assert bool(jnp.all((p.means >= 0) & (p.means < 1)))
    st = fam.reset(jax.random.key(0), p)[1]
    r = jax.jit(jax.vmap(lambda k: fam.step(k, st, jnp.int32(2), p).reward))(_keys(4000, 5))
    assert abs(float(r.mean()) - float(p.means[2])) < 0.02 and abs(float(r.std()) - 0.3) < 0.02


# ----------------------------------------------------------------------------- optimum


def _plan(fam, params, states, encode, n_states):
    """Exact finite-horizon value iteration over (state, time) using ``fam.step``.

    ``states``: a batched state pytree (m,) with time 0; ``encode(state) -> index``.
    Returns V_0 as a numpy array (n_states,)."""
    m, a_n = len(encode(states)), fam.num_actions
    idx = np.asarray(encode(states))
    acts = jnp.arange(a_n, dtype=jnp.int32)

    def one(st, a):
        return fam.step(jax.random.key(0), st, a, params)

    out = jax.vmap(lambda st: jax.vmap(lambda a: one(st, a))(acts))(states)
    nxt = np.asarray(jax.vmap(jax.vmap(encode))(out.state))  # (m, A)
    rew = np.asarray(out.reward, dtype=np.float64)
    cont = ~np.asarray(out.terminated)
    v = np.zeros(n_states)
    for _ in range(fam.episode_len):
        q = rew + cont * v[nxt]
        v_new = np.zeros(n_states)
        v_new[idx] = q.max(axis=1)
        v = v_new
    assert m == len(idx)
    return v


def _plan_darkroom(fam, goal):
    n = fam.num_obs
    cells = jnp.tile(jnp.arange(n, dtype=jnp.int32), 2)
    paid = jnp.repeat(jnp.array([False, True]), n)
    states = DarkRoomState(cells, jnp.zeros(2 * n, jnp.int32), paid)
    params = _params1(fam.task_params([goal]))
    v = _plan(fam, params, states, lambda s: s.cell + n * s.paid, 2 * n)
    starts = np.asarray(start_cells(fam.cfg.start, fam.size))
    return v[starts].mean(), float(fam.optimal_return(params))


def _plan_keydoor(fam, task_id):
    n = fam.num_cells
    cells = jnp.tile(jnp.arange(n, dtype=jnp.int32), 2)
    has = jnp.repeat(jnp.array([False, True]), n)
    states = KeyDoorState(cells, has, jnp.zeros(2 * n, jnp.int32))
    params = _params1(fam.task_params([task_id]))
    v = _plan(fam, params, states, lambda s: s.cell + n * s.has_key, 2 * n)
    starts = np.asarray(start_cells(fam.cfg.start, fam.size))
    return v[starts].mean(), float(fam.optimal_return(params))


@pytest.mark.parametrize("name,kwargs,goals", [
    ("darkroom", {}, [0, 40, 44, 80, 9]),
    ("darkroom-hard", {}, [0, 288, 150]),
    ("darkroom-dpt", {}, [0, 99, 55]),
    ("darkroom", {"size": 5, "episode_len": 4, "start": "random"}, [0, 12, 24, 3]),
    ("darkroom", {"size": 5, "episode_len": 3, "start": "random", "reward_mode": "once"},
     [0, 12, 7]),
    ("darkroom", {"size": 4, "episode_len": 9, "start": "corner", "terminate_on_goal": True},
     [0, 15, 6]),
])
def test_darkroom_optimal_return_matches_planner(name, kwargs, goals):
    fam = make_env(name, **kwargs)
    for g in goals:
        planned, formula = _plan_darkroom(fam, g)
        assert formula == pytest.approx(planned, abs=1e-5), g


def test_darkroom_formula_anchor():
    fam = make_env("darkroom")  # AD: 20 - distance + 1, capped at 20
    ret = jax.vmap(fam.optimal_return)(fam.task_params(np.array([40, 41, 0, 80])))
    assert np.allclose(ret, [20, 20, 13, 13])


@pytest.mark.parametrize("kwargs,tasks", [
    ({}, [0, 2 * 81 + 78, 40 * 81 + 40, 80 * 81]),
    ({"size": 5, "episode_len": 8}, [0 * 25 + 24, 12 * 25 + 0, 6 * 25 + 6, 4 * 25 + 20]),
    ({"size": 4, "episode_len": 5, "start": "corner"}, [15 * 16 + 0, 5 * 16 + 5, 0, 0 * 16 + 11]),
])
def test_keydoor_optimal_return_matches_planner(kwargs, tasks):
    fam = make_env("keydoor", **kwargs)
    for t in tasks:
        planned, formula = _plan_keydoor(fam, t)
        assert formula == pytest.approx(planned, abs=1e-5), t


def _greedy_returns(fam, params, starts):
    """Return of following optimal_action for one episode, from each start cell.

    params: batched (n,); starts: (m,) cells. Returns (n, m)."""
    def episode(p, cell):
        if hasattr(p, "goal"):
            st = DarkRoomState(cell, jnp.int32(0), jnp.bool_(False))
            obs = cell
        else:
            st = KeyDoorState(cell, jnp.bool_(False), jnp.int32(0))
            obs = cell

        def body(c, _):
            st, obs, ret, done = c
            out = fam.step(jax.random.key(0), st, fam.optimal_action(obs, p), p)
            ret = ret + jnp.where(done, 0.0, out.reward)
            return (out.state, out.obs, ret, done | out.terminated | out.truncated), None

        (_, _, ret, _), _ = jax.lax.scan(body, (st, obs, 0.0, False), None,
                                         length=fam.episode_len)
        return ret

    return jax.jit(jax.vmap(lambda p: jax.vmap(lambda c: episode(p, c))(starts)))(params)


@pytest.mark.parametrize("name,kwargs", [
    ("darkroom", {}), ("darkroom-hard", {}), ("darkroom-dpt", {}),
    ("darkroom", {"size": 5, "episode_len": 4, "start": "random"}),
    ("keydoor", {"start": "centre"}), ("keydoor", {"size": 5, "episode_len": 8}),
])
def test_optimal_action_achieves_optimal_return(name, kwargs):
    fam = make_env(name, **kwargs)
    ids = np.arange(fam.num_tasks) if fam.num_tasks <= 400 else np.arange(0, fam.num_tasks, 7)
    params = fam.task_params(ids)
    got = _greedy_returns(fam, params, start_cells(fam.cfg.start, fam.size)).mean(axis=1)
    want = jax.vmap(fam.optimal_return)(params)
    assert np.allclose(got, want, atol=1e-5)
    if fam.cfg.start != "random":  # the real reset gives that start
        obs, _ = jax.vmap(fam.reset)(_keys(len(ids)), params)
        assert bool(jnp.all(obs == start_cells(fam.cfg.start, fam.size)[0]))


def test_random_start_is_uniform():
    fam = make_env("keydoor")
    params = fam.task_params(np.zeros(8100, dtype=np.int64))
    obs, _ = jax.jit(jax.vmap(fam.reset))(_keys(8100, 5), params)
    counts = np.bincount(np.asarray(obs), minlength=81)
    assert counts.size == 81 and counts.min() > 60 and counts.max() < 145


# ----------------------------------------------------------------------------- splits, configs


@pytest.mark.parametrize("name,n_train,n_test", [("darkroom", 65, 16), ("keydoor", 100, 20),
                                                 ("gaussian-bandit", 30, 10)])
def test_splits(name, n_train, n_test):
    fam = make_env(name)
    tr, te = split_tasks(fam, 3, n_train, n_test)
    tr2, te2 = split_tasks(fam, 3, n_train, n_test)
    tr3, _ = split_tasks(fam, 4, n_train, n_test)
    assert len(tr) == n_train and len(te) == n_test
    assert not set(tr) & set(te) and len(set(tr)) == n_train
    assert np.array_equal(tr, tr2) and np.array_equal(te, te2)
    assert not np.array_equal(tr, tr3)
    fam.task_params(tr)  # every split id is a valid task


@pytest.mark.parametrize("name,kwargs,match", [
    ("darkroom", {"size": 1}, r"key 'size'.*greater than or equal to 2"),
    ("keydoor", {"size": 1}, r"key 'size'"),
    ("darkroom-hard", {"episode_len": 0}, r"key 'episode_len'"),
    ("darkroom", {"start": "middle"}, r"key 'start'"),
    ("darkroom", {"reward_mode": "sometimes"}, r"key 'reward_mode'"),
    ("bernoulli-bandit", {"num_arms": 0}, r"key 'num_arms'.*greater than or equal to 2"),
    ("gaussian-bandit", {"num_arms": 1}, r"key 'num_arms'"),
    ("gaussian-bandit", {"noise_std": -1.0}, r"key 'noise_std'"),
    ("darkroom", {"sise": 5}, r"unknown key 'sise': remove it"),
    ("bernoulli-bandit", {"arms": 5}, r"unknown key 'arms'"),
    ("bernoulli-bandit", {"means": {"dist": "uniform", "low": -0.5, "high": 1.0}},
     r"key 'means': a Bernoulli arm's mean is a probability.*keep 0 <= low < high <= 1"),
    ("gaussian-bandit", {"means": {"dist": "uniform", "low": 1.0, "high": 0.0}},
     r"key 'means': low = 1 must be below high = 0: swap them"),
    ("gaussian-bandit", {"means": {"dist": "normal", "low": 0.0}},
     r"dist = 'normal' takes mean and sd, not low: remove low or change dist"),
    ("gaussian-bandit", {"means": {"dist": "cauchy"}},
     r"key 'means.dist': Input should be 'uniform', 'normal' or 'beta'"),
    ("gaussian-bandit", {"means": {"low": 0.0}}, r"missing key 'means.dist': add it"),
    ("bernoulli-bandit", {"means": {"dist": "beta", "a": 0.0}},
     r"key 'means.a'.*greater than 0"),
    ("bernoulli-bandit", {"means": {"dist": "normal", "sd": -1.0}}, r"key 'means.sd'"),
    ("bernoulli-bandit", {"means": "uniform"},
     r"key 'means': means is a table.*e\.g\. means = \{ dist = \"uniform\""),
])
def test_bad_config_names_the_key(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_env(name, **kwargs)


def test_bad_name_and_ids():
    with pytest.raises(ConfigError, match=r"unknown env 'darkrom'.*known envs: .*darkroom"):
        make_env("darkrom")
    with pytest.raises(ConfigError, match=r"task ids must lie in \[0, 81\)"):
        make_env("darkroom").task_params(np.array([81]))
    with pytest.raises(ConfigError, match=r"task ids must be >= 0"):
        make_env("bernoulli-bandit").task_params(np.array([-1]))


# ----------------------------------------------------------------------------- slow, exhaustive


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", [
    ("darkroom", {}), ("darkroom-hard", {}), ("darkroom-dpt", {}),
    ("darkroom", {"start": "random", "episode_len": 10}),
    ("darkroom", {"start": "random", "episode_len": 10, "reward_mode": "once"}),
])
def test_every_darkroom_goal_matches_planner(name, kwargs):
    fam = make_env(name, **kwargs)
    for g in range(fam.num_tasks):
        planned, formula = _plan_darkroom(fam, g)
        assert formula == pytest.approx(planned, abs=1e-5), g


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [{}, {"episode_len": 20}, {"episode_len": 12}])
def test_many_keydoor_tasks_match_planner(kwargs):
    fam = make_env("keydoor", **kwargs)
    for t in range(0, fam.num_tasks, 41):
        planned, formula = _plan_keydoor(fam, t)
        assert formula == pytest.approx(planned, abs=1e-5), t
