"""The gymnax adapter: any gymnax env with discrete actions as a task family, its frames
stored in a history and read back bit for bit, and the clear errors around it."""

from __future__ import annotations

import gymnax
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from outlearn.collect import EnvSection, collect
from outlearn.config import parse_config
from outlearn.envs import make_env, make_family
from outlearn.envs.gymnax_env import GymnaxState
from outlearn.errors import ConfigError
from outlearn.histories import History
from outlearn.teachers import make_teacher


@pytest.fixture(scope="module")
def breakout():
    return make_env("gymnax", name="Breakout-MinAtar", episode_len=5)


def test_breakout_shape_actions_and_config_path(breakout):
    assert (breakout.num_actions, breakout.num_obs, breakout.num_tasks) == (3, 0, None)
    assert breakout.obs_shape == (10, 10, 4) and breakout.obs_dtype == np.bool_
    assert breakout.episode_len == 5 and breakout.env_params.max_steps_in_episode == 5
    # a config's env section reaches it through the registry, `name` included
    fam = make_family(EnvSection(name="gymnax", kwargs={"name": "CartPole-v1"}))
    assert fam.obs_shape == (4,) and fam.obs_dtype == np.float32 and fam.num_actions == 2
    assert fam.episode_len == 500  # CartPole's own max_steps_in_episode


def test_step_matches_gymnax_without_its_reset(breakout):
    """Our step is gymnax's step_env: same frame (as bool) and reward as gymnax's own step
    on steps that do not end the episode; truncation after episode_len steps is ours."""
    env, gparams = gymnax.make("Breakout-MinAtar")
    p = jax.tree.map(lambda x: x[0], breakout.task_params(np.array([3])))
    obs, st = breakout.reset(jax.random.key(0), p)
    g_obs, g_st = env.reset_env(jax.random.fold_in(jax.random.key(0), 3), gparams)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(g_obs).astype(bool))
    assert np.asarray(g_obs).max() == 1.0 and np.asarray(obs).any()
    flags = []
    for t in range(5):
        k = jax.random.key(10 + t)
        out = breakout.step(k, st, jnp.int32(t % 3), p)
        g_obs, g_st, g_r, g_term, g_trunc, _ = env.step(k, g_st, t % 3, gparams)
        assert not bool(g_term) and not bool(g_trunc)
        np.testing.assert_array_equal(np.asarray(out.obs), np.asarray(g_obs).astype(bool))
        assert float(out.reward) == float(g_r)
        flags.append((bool(out.terminated), bool(out.truncated)))
        st = out.state
    assert flags == [(False, False)] * 4 + [(False, True)]
    assert isinstance(st, GymnaxState) and int(st.time) == 5


def test_terminated_is_gymnax_terminal_and_not_truncated():
    fam = make_env("gymnax", name="Breakout-MinAtar", episode_len=2000)
    params = fam.task_params(np.arange(8))
    obs, st = jax.vmap(fam.reset)(jax.random.split(jax.random.key(1), 8), params)

    def body(c, k):
        st, done = c
        out = jax.vmap(fam.step)(jax.random.split(k, 8), st, jnp.zeros(8, jnp.int32), params)
        return (out.state, done | out.terminated), (out.terminated, out.truncated)

    (_, done), (term, trunc) = jax.lax.scan(body, (st, jnp.zeros(8, bool)),
                                            jax.random.split(jax.random.key(2), 300))
    assert bool(done.all())  # never moving the paddle loses the ball within 300 steps
    assert not bool(trunc.any()) and not bool((term & trunc).any())


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "Breakout"}, r"unknown gymnax environment 'Breakout'; valid names: .*"
                           r"Breakout-MinAtar.*CartPole-v1"),
    ({"name": "Pendulum-v1"}, r"Pendulum-v1.*continuous.*Discrete actions"),
    ({"name": "MountainCarContinuous-v0"}, r"continuous"),
    ({"params": {"gravity": 1.0}}, r"unknown params 'gravity'.*max_steps_in_episode"),
    ({"episode_len": 0}, r"key 'episode_len'"),
    ({"nmae": "CartPole-v1"}, r"unknown key 'nmae'"),
])
def test_bad_input_names_the_problem_and_fix(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_env("gymnax", **kwargs)


def test_tabular_and_oracle_teachers_refuse_frames(breakout):
    with pytest.raises(ConfigError, match=r"qlearning.*frames of shape \(10, 10, 4\)"):
        make_teacher("qlearning", breakout)
    with pytest.raises(ConfigError, match=r"ppo.*frames"):
        make_teacher("ppo", breakout)
    with pytest.raises(ConfigError, match=r"oracle.*no oracle"):
        make_teacher("oracle", breakout)


def _collect(tmp_path, **over):
    from outlearn.collect import CollectConfig

    data = {"seed": 4, "learners_per_task": 2, "num_steps": 60, "chunk_steps": 16,
            "out": str(tmp_path / "breakout.h5"),
            "env": {"name": "gymnax", "kwargs": {"name": "Breakout-MinAtar", "episode_len": 25}},
            "teacher": {"name": "random"}, "tasks": {"seed": 0, "n_train": 2, "n_test": 1}}
    data.update(over)
    return parse_config(CollectConfig, data)


def test_frames_round_trip_bit_for_bit(tmp_path):
    """collect -> HDF5 -> History: the frames come back exactly, stored compactly."""
    from outlearn.collect import learner_keys, learner_seeds, plan_learners
    from outlearn.rollout import rollout_scan

    cfg = _collect(tmp_path)
    path = collect(cfg, progress=False)
    fam = make_family(cfg.env)
    ids, _ = plan_learners(cfg, fam)
    keys = learner_keys(learner_seeds(cfg.seed, len(ids)))
    traj, _ = rollout_scan(fam, make_teacher("random", fam), keys, fam.task_params(ids), 60)
    want = np.asarray(traj.obs)
    assert want.shape == (6, 60, 10, 10, 4) and want.dtype == np.bool_ and want.any()
    with History(path, verify=True) as h:
        assert h.has_frames and h.obs_shape == (10, 10, 4) and h.meta.num_obs == 0
        got = h.read_steps("obs")
        assert got.dtype == np.bool_ and np.array_equal(got, want)
        assert np.array_equal(h.window(4, 17, 20)["obs"], want[4, 17:37])
        np.testing.assert_array_equal(h.read_steps("actions"), traj.actions)
        assert np.all(h.read_steps("optimal_actions") == -1)
        assert np.all(np.isnan(h.optimal_return))
        assert h.episode_lengths[h.episode_lengths > 0].max() <= 25
    with h5py.File(path, "r") as f:
        ds = f["obs"]
        assert ds.chunks == (1, 16, 10, 10, 4) and ds.compression == "gzip"
        assert ds.fletcher32 and ds.shuffle and ds.dtype == np.bool_
        stored = ds.id.get_storage_size()
    assert stored < want.size / 8  # under a bit a pixel on disk, for 1 byte in memory


def test_transforms_keep_frames_exact(tmp_path):
    """Cutting and subsampling a frame history select whole frames, bit for bit."""
    from outlearn.core import Trajectory
    from outlearn.histories import HistoryMeta, LearnerInfo, write_history
    from outlearn.histories.transforms import cut_at_step, keep_every_kth_episode

    L, S = 2, 12
    rng = np.random.default_rng(0)
    frames = rng.random((L, S, 10, 10, 4)) < 0.1
    trunc = np.zeros((L, S), bool)
    trunc[:, 2::3] = True  # episodes of 3 steps
    z = np.zeros((L, S), np.int32)
    traj = Trajectory(frames, z, z.astype(np.float32), np.zeros((L, S), bool), trunc,
                      np.full((L, S, 3), 1 / 3, np.float32), z - 1, z.astype(np.float32))
    meta = HistoryMeta(env_name="gymnax", num_actions=3, num_obs=0, episode_len=3,
                       teacher_name="random", seed=0)
    info = LearnerInfo(np.arange(L), np.zeros(L, np.uint8), np.full(L, np.nan, np.float32),
                       np.arange(L, dtype=np.uint32))
    src = write_history(tmp_path / "f.h5", traj, meta, info, chunk_steps=4)
    with cut_at_step(src, 6, tmp_path / "cut.h5") as h:
        assert np.array_equal(h.read_steps("obs"), frames[:, :6])
    with keep_every_kth_episode(src, 2, tmp_path / "sub.h5") as h:
        keep = np.r_[0:3, 6:9]  # episodes 0 and 2
        assert np.array_equal(h.read_steps("obs"), frames[:, keep])
        assert h.read_steps("obs").dtype == np.bool_
