"""Which position scheme learns in context: AD students on the demo's setting, by scheme.

Run: ``.venv/bin/python benchmarks/positions.py [--seeds 0 1 --steps 2000]`` (about 1 min
per student on 2 cores; the default 4 schemes x 2 seeds: about 8 min)

The setting is ``configs/demo.toml``'s uncut student: Q-learning histories on a 5x5 Dark
Room (10-step episodes, 17 training goals x 16 learners, 40 episodes), AD small with
(row, col) cell embeddings and the previous observation in each token, context 30 steps,
2,000 steps, lr 3e-3, batch 32. Each student runs 45 episodes on the 8 held-out goals x 2
eval seeds; the figure is the mean return over the last 4 episodes, acting with the
key/value cache (relative schemes) and recomputing its window (every scheme).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from outlearn.collect import CollectConfig, collect
from outlearn.config import parse_config
from outlearn.envs import make_env
from outlearn.envs.base import split_tasks
from outlearn.evaluation.evaluate import run_learner
from outlearn.students import StudentLearner, TrainConfig, load_student, train

ENV = {"size": 5, "episode_len": 10}
QL = {"initial_value": 1.0, "eps_schedule": "linear", "eps_start": 1.0, "eps_end": 0.0,
      "eps_decay_steps": 100}
SCHEMES = {"learned": {"positions": "learned"}, "rope base 10000": {"rope_base": 10000.0},
           "rope base 100": {"rope_base": 100.0}, "alibi": {"positions": "alibi"}}


def history(tmp: Path) -> Path:
    cfg = parse_config(CollectConfig, {
        "env": {"name": "darkroom", "kwargs": ENV}, "teacher": {"name": "qlearning",
                                                               "kwargs": QL},
        "tasks": {"seed": 0, "n_train": 17, "n_test": 8}, "learners_per_task": 16,
        "num_episodes": 40, "seed": 0, "out": str(tmp / "h.h5")})
    return collect(cfg, progress=False)


def student(tmp: Path, hist: Path, name: str, seed: int, steps: int) -> Path:
    model = {"prev_obs": True, "obs_factors": [5, 5], "dropout": 0.0, "attn_dropout": 0.0,
             **SCHEMES[name]}
    cfg = parse_config(TrainConfig, {
        "history": str(hist), "env": "darkroom", "seed": seed,
        "out": str(tmp / f"{name}-{seed}".replace(" ", "-")),
        "student": {"kind": "ad", "preset": "small", "model": model},
        "data": {"context_len": 30, "batch_size": 32, "val_fraction": 0.0},
        "optim": {"lr": 3e-3, "total_steps": steps, "warmup_steps": 50},
        "checkpoint_every": steps, "val_every": steps})
    return train(cfg, quiet=True)


def last4(ckpt: Path, cache: bool) -> float:
    fam = make_env("darkroom", **ENV)
    test = split_tasks(fam, 0, 17, 8)[1]
    m, _ = load_student(ckpt)
    make = lambda n, s: StudentLearner(m, num_envs=n, context_len=30, seed=s,  # noqa: E731
                                       cache=cache)
    return float(run_learner(fam, make, test, [0, 1], 45)[0][..., -4:].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=2000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        hist = history(tmp)
        print(f"demo setting, uncut AD, {a.steps} steps; mean return over the last 4 of 45 "
              "episodes (optimum 8.88, random 0.67)")
        print(f"{'scheme':<18}{'seed':>5}{'cache':>8}{'recompute':>11}")
        means: dict[str, list[float]] = {}
        for name in SCHEMES:
            for seed in a.seeds:
                ck = student(tmp, hist, name, seed, a.steps)
                c = last4(ck, True) if name != "learned" else float("nan")
                r = last4(ck, False)
                means.setdefault(name, []).append(c if name != "learned" else r)
                print(f"{name:<18}{seed:>5}{c:>8.2f}{r:>11.2f}", flush=True)
        print("mean over seeds (cache where the scheme has one): " + ", ".join(
            f"{k} {np.mean(v):.2f}" for k, v in means.items()))


if __name__ == "__main__":
    main()
