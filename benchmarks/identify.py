"""Family identification's speed: one learner's 150-episode 9x9 Dark Room history (3,000
steps) under a grid of 10,000 Q-learning members.

Run: ``.venv/bin/python benchmarks/identify.py [--members 10000 --episodes 150 --reps 3]``

The history is a Q-learner's (learning rate 0.5, initial value 1, epsilon 1 -> 0.05 over
1,000 steps) on one 9x9 Dark Room goal, collected first (not timed). Timed: the
log-likelihood of the whole history under every member of a 10 x 10 x 10 x 10 grid over
(learning rate, discount, initial value, final epsilon), compiled once before (the
compile is reported apart). The bar (issue 15): under 10 s on the 2-core machine.
Figures: median over ``--reps``; the machine's load is printed beside them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from outlearn.collect import CollectConfig, collect
from outlearn.histories import History
from outlearn.identify import Steps, make_learner_family

TEACHER = {"learning_rate": 0.5, "initial_value": 1.0, "eps_schedule": "linear",
           "eps_start": 1.0, "eps_end": 0.05, "eps_decay_steps": 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--episodes", type=int, default=150)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cc = CollectConfig.model_validate(dict(
            env={"name": "darkroom", "kwargs": {"size": 9, "episode_len": 20}},
            teacher={"name": "qlearning", "kwargs": TEACHER},
            tasks={"n_train": 1, "n_test": 0, "seed": 0}, learners_per_task=1,
            num_episodes=a.episodes, seed=0, out=Path(d) / "h.h5"))
        with History(collect(cc, progress=False)) as h:
            steps = Steps.from_history(h, h.learners())
            num_obs, num_actions = h.meta.num_obs, h.meta.num_actions
    fam = make_learner_family("qlearning")
    k = round(a.members ** 0.25)
    axes = [np.geomspace(0.05, 1.0, k), np.linspace(0.5, 0.99, k), np.linspace(0, 5, k),
            np.linspace(0, 0.5, k)]
    grid = np.array(list(itertools.product(*axes)))
    theta = {"learning_rate": grid[:, 0], "discount": grid[:, 1],
             "initial_value": grid[:, 2], "eps_end": grid[:, 3],
             "eps_start": np.ones(len(grid)), "eps_decay_steps": np.full(len(grid), 1000.0)}
    variant = {"eps_schedule": "linear", "eps_unit": "step", "initial": "value"}
    n_steps = steps.obs.shape[1]

    def once() -> float:
        t0 = time.perf_counter()
        fam.log_likelihood(theta, variant, steps, n_steps, num_obs, num_actions)
        return time.perf_counter() - t0

    first = once()
    times = [once() for _ in range(a.reps)]
    med = statistics.median(times)
    load = os.getloadavg()[0]
    print(f"history: 1 learner x {n_steps} steps (9x9 Dark Room, {a.episodes} episodes); "
          f"{len(grid)} members")
    print(f"first call (compile + run): {first:.2f} s")
    print(f"log-likelihood of all members: median {med:.2f} s over {a.reps} "
          f"({', '.join(f'{t:.2f}' for t in times)}); "
          f"{len(grid) * n_steps / med / 1e6:.1f} M member-steps/s; load {load:.2f}")
    print(f"bar: under 10 s -> {'met' if med < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
