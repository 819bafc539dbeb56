"""`outlearn collect`: real families and teachers end to end, reproducible, validated."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from outlearn.cli import app
from outlearn.collect import (
    CollectConfig,
    collect,
    collect_from_toml,
    learner_keys,
    learner_seeds,
)
from outlearn.config import parse_config
from outlearn.envs import make_env
from outlearn.envs.base import split_tasks
from outlearn.errors import ConfigError
from outlearn.histories import History
from outlearn.registry import TEACHERS
from outlearn.rollout import rollout_scan

TINY_TOML = """\
seed = {seed}
learners_per_task = 2
num_episodes = 4
out = "{out}"
chunk_steps = 10

[env]
name = "darkroom"
kwargs = {{ size = 3, episode_len = 5 }}

[teacher]
name = "qlearning"
kwargs = {{ eps_schedule = "linear", eps_start = 1.0, eps_end = 0.1, eps_decay_steps = 10 }}

[tasks]
seed = 1
n_train = 3
n_test = 2
"""


def tiny(tmp_path, seed=0, name="h.h5", **over):
    data = {
        "seed": seed, "learners_per_task": 2, "num_episodes": 4, "out": str(tmp_path / name),
        "chunk_steps": 20,
        "env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
        "teacher": {"name": "qlearning", "kwargs": {"eps_schedule": "linear", "eps_start": 1.0,
                                                    "eps_end": 0.1, "eps_decay_steps": 10}},
        "tasks": {"seed": 1, "n_train": 3, "n_test": 2},
    }
    data.update(over)
    return parse_config(CollectConfig, data)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """File a collected twice with one config (bytes of the first run kept), c: other seed."""
    d = tmp_path_factory.mktemp("collect")
    a = collect(tiny(d, name="a.h5"), progress=False)
    first = a.read_bytes()
    assert collect(tiny(d, name="a.h5"), progress=False) == a
    c = collect(tiny(d, seed=1, name="c.h5"), progress=False)
    return a, first, c


def test_collection_records_tasks_splits_and_meta(collected):
    a, _, _ = collected
    cfg = tiny(a.parent, name="a.h5")
    family = make_env("darkroom", size=3, episode_len=5)
    train, test = split_tasks(family, 1, 3, 2)
    with History(a) as h:
        assert (h.num_learners, h.num_steps, h.has_probs) == (10, 20, True)
        assert np.array_equal(h.task_ids, np.repeat(np.r_[train, test], 2))
        assert np.array_equal(h.split, [0] * 6 + [1] * 4)
        assert np.array_equal(h.task_params["goal"], h.task_ids)
        want_opt = jax.vmap(family.optimal_return)(family.task_params(h.task_ids))
        assert np.array_equal(h.optimal_return, np.asarray(want_opt))
        assert np.array_equal(h.learner_seeds, learner_seeds(0, 10))
        m = h.meta
        assert (m.env_name, m.teacher_name, m.num_actions, m.num_obs, m.episode_len) == (
            "darkroom", "qlearning", 5, 9, 5)
        assert m.env_kwargs == {"size": 3, "episode_len": 5} and m.seed == 0
        assert CollectConfig.model_validate(m.config) == cfg
        assert h.episode_returns.shape == (10, 4)  # fixed-length episodes: 4 per learner
        assert np.allclose(h.read_steps("probs").sum(-1), 1.0, atol=1e-5)


def test_same_config_is_byte_identical_and_another_seed_differs(collected):
    a, first, c = collected
    assert a.read_bytes() == first
    with History(a) as ha, History(c) as hc:
        assert np.array_equal(ha.task_ids, hc.task_ids)  # same task split seed
        assert not np.array_equal(ha.read_steps("actions"), hc.read_steps("actions"))


def test_a_learner_reruns_alone_from_its_recorded_seed(collected):
    a, _, _ = collected
    family = make_env("darkroom", size=3, episode_len=5)
    with History(a) as h:
        teacher = TEACHERS.get("qlearning")(family, **h.meta.teacher_kwargs)
        i = 7
        params = family.task_params(h.task_ids[i : i + 1])
        traj, _ = rollout_scan(family, teacher, learner_keys(h.learner_seeds[i : i + 1]),
                               params, h.num_steps)
        w = h.window(i, 0, h.num_steps)
        assert np.array_equal(traj.actions[0], w["actions"])
        assert np.array_equal(traj.rewards[0], w["rewards"])


def test_bandit_ucb_collection(tmp_path):
    cfg = parse_config(CollectConfig, {
        "num_steps": 30, "out": str(tmp_path / "b.h5"),
        "env": {"name": "bernoulli-bandit", "kwargs": {"num_arms": 3}},
        "teacher": {"name": "ucb1"}, "tasks": {"n_train": 4, "n_test": 2}})
    with History(collect(cfg, progress=False)) as h:
        assert h.episode_returns.shape == (6, 30)  # every pull is an episode
        assert np.array_equal(h.read_steps("actions")[:, :3], np.tile([0, 1, 2], (6, 1)))
        assert h.task_params["means"].shape == (6, 3)


def test_cli_collect_writes_the_file_and_prints_its_path(tmp_path):
    out = tmp_path / "cli.h5"
    p = tmp_path / "c.toml"
    p.write_text(TINY_TOML.format(seed=0, out=out))
    result = CliRunner().invoke(app, ["collect", str(p)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "10 learners" in result.output  # the progress display
    with History(out) as h:
        assert h.num_learners == 10 and h.meta.created_by == f"outlearn collect {p}"


def test_unknown_toml_key_is_named(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(TINY_TOML.format(seed=0, out=tmp_path / "x.h5").replace("n_test", "n_tset"))
    with pytest.raises(ConfigError, match="unknown key 'tasks.n_tset'"):
        collect_from_toml(p)
    result = CliRunner().invoke(app, ["collect", str(p)])
    assert result.exit_code == 2 and "tasks.n_tset" in result.output


@pytest.mark.parametrize(
    "over, message",
    [
        ({"num_episodes": None, "num_steps": 3}, "shorter than one episode.*num_steps >= 5"),
        ({"num_steps": 10}, "exactly one of num_steps and num_episodes"),
        ({"learners_per_task": 0}, "key 'learners_per_task'"),
        ({"tasks": {"n_train": 0, "n_test": 0}}, "n_train \\+ tasks.n_test must be >= 1"),
        ({"tasks": {"n_train": 9, "n_test": 1}}, "has 9 tasks"),
        ({"env": {"name": "darkrom"}}, "unknown env 'darkrom'; known envs: .*darkroom"),
        ({"teacher": {"name": "qlearn"}}, "unknown teacher 'qlearn'; known teachers: .*qlearning"),
        ({"teacher": {"name": "qlearning", "kwargs": {"learning_rat": 0.1}}}, "learning_rat"),
    ],
)
def test_impossible_values_fail_before_any_work(tmp_path, over, message):
    with pytest.raises(ConfigError, match=message):
        cfg = tiny(tmp_path, **over)
        collect(cfg, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_darkroom_q_config_learns_and_can_be_cut_at_40_percent(tmp_path):
    """The shipped config: the teacher climbs from near 0 to >= 80% of optimal, so a
    cut at 40% lands well inside the history."""
    from outlearn.config import load_toml
    from outlearn.histories import cut_at_performance, performance_curve

    cfg = load_toml(CollectConfig, "configs/collect-darkroom-q.toml")
    path = collect(cfg.model_copy(update={"out": tmp_path / "dq.h5"}), progress=False)
    with History(path) as h:
        curve = performance_curve(h, window=10)
        opt = float(h.optimal_return.mean())
        assert curve[0] < 0.1 * opt and curve[-1] > 0.8 * opt, (curve[0], curve[-1], opt)
        cut, step = cut_at_performance(h, 0.4, tmp_path / "cut.h5", window=10)
        with cut:
            assert 0.2 * h.num_steps < step < 0.6 * h.num_steps
