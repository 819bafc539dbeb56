import csv

import numpy as np
import pytest

from outlearn.config import load_toml, parse_config
from outlearn.envs import make_env
from outlearn.errors import CheckpointError, ConfigError
from outlearn.evaluation.baselines import make_baseline, make_teacher
from outlearn.evaluation.evaluate import (
    EvalConfig,
    evaluate,
    evaluate_from_toml,
)
from outlearn.rollout import JaxLearnerAdapter


def _bandit_cfg(tmp_path, learners, **kw):
    data = {
        "env": {"name": "bernoulli-bandit", "kwargs": {"num_arms": 3}},
        "tasks": {"seed": 0, "split": "test", "n_train": 4, "n_test": 3},
        "learners": learners,
        "num_episodes": 20,
        "seeds": [0, 1],
        "out_dir": str(tmp_path),
        **kw,
    }
    return parse_config(EvalConfig, data)


def test_evaluate_bandit_writes_csv_png_and_orders_learners(tmp_path):
    cfg = _bandit_cfg(tmp_path, [
        {"name": "ucb", "kind": "teacher", "teacher": "ucb1"},
        {"name": "rand", "kind": "baseline", "baseline": "random"},
        {"name": "best", "kind": "baseline", "baseline": "oracle"},
    ])
    run = evaluate(cfg)
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert set(rows[0]) == {"learner", "seed", "task_id", "episode", "return", "regret",
                            "cum_regret"}
    assert len(rows) == 3 * 2 * 3 * 20
    png = (run / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    cum = {name: np.mean([float(r["cum_regret"]) for r in rows
                          if r["learner"] == name and r["episode"] == "19"])
           for name in ("ucb", "rand", "best")}
    assert cum["best"] == pytest.approx(0.0, abs=1e-6)  # the oracle never regrets
    assert cum["ucb"] < cum["rand"]


def test_noop_on_bandit_is_refused(tmp_path):
    fam = make_env("bernoulli-bandit")
    with pytest.raises(ConfigError, match=r"noop.*no(ne)?.*stay action|stay action.*none"):
        make_baseline("noop", fam)
    cfg = _bandit_cfg(tmp_path, [{"name": "n", "kind": "baseline", "baseline": "noop"}])
    with pytest.raises(ConfigError, match="baseline 'random'"):
        evaluate(cfg)


def test_bad_configs_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"learners.0.*needs 'checkpoint'"):
        _bandit_cfg(tmp_path, [{"name": "s", "kind": "student"}])
    with pytest.raises(ConfigError, match=r"unknown baseline 'zero'"):
        _bandit_cfg(tmp_path, [{"name": "z", "kind": "baseline", "baseline": "zero"}])
    with pytest.raises(ConfigError, match=r"unknown key 'num_episode'"):
        _bandit_cfg(tmp_path, [{"name": "r", "kind": "baseline", "baseline": "random"}],
                    num_episode=3)
    cfg = _bandit_cfg(tmp_path, [{"name": "r", "kind": "baseline", "baseline": "random"}])
    bad = parse_config(EvalConfig, {**cfg.model_dump(), "tasks": {"n_train": 4, "n_test": 0}})
    with pytest.raises(ConfigError, match=r"split is empty.*n_test"):
        evaluate(bad)


def test_evaluate_from_toml_darkroom_noop_and_oracle(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text(f"""
num_episodes = 2
seeds = [0]
out_dir = "{tmp_path}"
[env]
name = "darkroom"
kwargs = {{ size = 3, episode_len = 5 }}
[tasks]
split = "train"
n_train = 9
[[learners]]
name = "stay"
kind = "baseline"
baseline = "noop"
[[learners]]
name = "best"
kind = "baseline"
baseline = "oracle"
""")
    run = evaluate_from_toml(p)
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert set(rows[0]) == {"learner", "seed", "task_id", "episode", "return"}
    assert len(rows) == 2 * 9 * 2
    for r in rows:  # start at the centre cell 4; goal = task id; 5 steps per episode
        goal = int(r["task_id"])
        dist = abs(goal // 3 - 1) + abs(goal % 3 - 1)
        want = (5.0 if goal == 4 else 0.0) if r["learner"] == "stay" else min(5.0, 5.0 - dist + 1)
        assert float(r["return"]) == want, r
    assert (run / "curves.png").stat().st_size > 5000
    assert load_toml(EvalConfig, p).num_episodes == 2


@pytest.fixture(scope="module")
def ucb_history(tmp_path_factory):
    from outlearn.collect import CollectConfig, collect

    d = tmp_path_factory.mktemp("hist")
    cfg = parse_config(CollectConfig, {
        "env": {"name": "bernoulli-bandit", "kwargs": {"num_arms": 3}},
        "teacher": {"name": "thompson"},
        "tasks": {"seed": 0, "n_train": 6, "n_test": 2},
        "num_steps": 24, "seed": 5, "out": str(d / "h.h5"),
    })
    return collect(cfg, progress=False)


def test_step_path_replays_recorded_history(ucb_history):
    from outlearn.histories import History
    from outlearn.rng import learner_keys
    from outlearn.rollout import rollout_steps

    with History(ucb_history) as h:
        rec, seeds, ids = h.trajectory(), h.learner_seeds, h.task_ids
    fam = make_env("bernoulli-bandit", num_arms=3)
    keys, params = learner_keys(seeds), fam.task_params(ids)
    ad = JaxLearnerAdapter(make_teacher("thompson", fam), keys, params)
    rep = rollout_steps(fam, ad.policy, ad.observe, keys, params, rec.actions.shape[1])
    for name in ("obs", "actions", "rewards", "terminated", "truncated", "probs",
                 "optimal_actions", "expected_rewards"):
        np.testing.assert_array_equal(getattr(rep, name), getattr(rec, name), err_msg=name)


def test_evaluate_student_checkpoint(ucb_history, tmp_path):
    from outlearn.students import TrainConfig, train

    tcfg = parse_config(TrainConfig, {
        "history": str(ucb_history), "env": "bernoulli-bandit",
        "student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 2, "d_model": 16,
                                            "d_ff": 32}},
        "data": {"context_len": 8, "batch_size": 4, "val_fraction": 0.2},
        "optim": {"warmup_steps": 1, "total_steps": 3}, "out": str(tmp_path / "s"),
        "threads": 1,
    })
    ckpt = train(tcfg, quiet=True)
    cfg = _bandit_cfg(tmp_path, [{"name": "ad", "kind": "student", "checkpoint": str(ckpt)}],
                      num_episodes=12, mode="greedy")
    rows = list(csv.DictReader(open(evaluate(cfg) / "results.csv")))
    assert len(rows) == 2 * 3 * 12 and {r["learner"] for r in rows} == {"ad"}
    wrong = parse_config(EvalConfig, {**cfg.model_dump(), "env": {"name": "darkroom"}})
    with pytest.raises(CheckpointError, match="evaluate it on the env it was trained on"):
        evaluate(wrong)


@pytest.mark.parametrize("name", ["eval-bandit.toml", "eval-darkroom.toml"])
def test_shipped_eval_configs_load(name):
    from pathlib import Path

    cfg = load_toml(EvalConfig, Path(__file__).parents[1] / "configs" / name)
    assert cfg.learners[0].kind == "student" and cfg.tasks.split == "test"
