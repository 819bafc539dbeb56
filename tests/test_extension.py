"""A researcher's own task family, registered from outside outlearn, runs end to end."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from outlearn.collect import CollectConfig, collect
from outlearn.config import parse_config
from outlearn.histories import History
from outlearn.registry import ENVS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_env.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("my_env", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["my_env"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_user_env_collects_and_the_teacher_learns(tmp_path):
    if "corridor" not in ENVS:
        _load_example()
    cfg = parse_config(CollectConfig, {
        "env": {"name": "corridor", "kwargs": {"length": 7}},
        "teacher": {"name": "qlearning"},
        "tasks": {"seed": 0, "n_train": 2, "n_test": 0},
        "learners_per_task": 4, "num_episodes": 30, "out": str(tmp_path / "c.h5"),
    })
    path = collect(cfg, progress=False)
    with History(path) as h:
        rets = h.episode_returns  # (L, E)
        opt = h.optimal_return  # (L,)
        assert h.meta.env_name == "corridor" and rets.shape == (8, 30)
    # the optimistic Q-learner explores first, then goes straight to the goal: optimal
    assert np.allclose(rets[:, -5:], opt[:, None])
    assert rets[:, 0].mean() < opt.mean()
