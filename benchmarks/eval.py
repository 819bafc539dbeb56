"""A student acting in context: env steps/s with the key/value cache vs recomputing its window.

Run: ``.venv/bin/python benchmarks/eval.py [--contexts 100 640 --envs 32 --steps 40]``

The student is the AD 9x9 Dark Room recipe's model (untrained: speed does not depend on
the weights) on 9x9 Dark Room, ``--envs`` environments in one batch (the quality check
runs 16 goals x 2 seeds = 32). Both learners first fill their window (the cache by
stepping the model on random tokens, the recompute learner's ring buffer directly), so the
timed ``--steps`` steps of the real rollout loop (:func:`outlearn.rollout.rollout_steps`,
environment included) run with a full window, the steady state of a long evaluation.
Figures: median over ``--reps`` timings, the two learners alternating.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np
import torch
from train import RECIPE  # benchmarks/train.py: the AD 9x9 recipe's model

from outlearn.envs import make_env
from outlearn.rng import unit_keys
from outlearn.rollout import rollout_steps
from outlearn.students import StudentLearner
from outlearn.students.ad import ADConfig, ADTransformer


def full_window(model: ADTransformer, envs: int, context: int, cache: bool) -> StudentLearner:
    """A learner whose window already holds ``context - 1`` random past steps."""
    sl = StudentLearner(model, num_envs=envs, context_len=context, cache=cache)
    rng = np.random.default_rng(0)
    past = {"obs": rng.integers(0, 81, (context - 1, envs)),
            "prev_action": rng.integers(0, 5, (context - 1, envs)),
            "prev_reward": rng.random((context - 1, envs)).astype(np.float32),
            "new_episode": rng.random((context - 1, envs)) < 0.05}
    if cache:
        with torch.no_grad():
            prev = torch.full((envs,), 81)
            for t in range(context - 1):
                x = {k: torch.from_numpy(v[t]) for k, v in past.items()}
                model.step(sl.kv, x["obs"], x["prev_action"], x["prev_reward"],
                           x["new_episode"], prev)
                prev = x["obs"]
    else:
        for t in range(context - 1):
            sl.ring.push(**{k: v[t] for k, v in past.items()})
    return sl


def steps_per_s(model: ADTransformer, envs: int, context: int, cache: bool, steps: int) -> float:
    fam = make_env("darkroom", size=9, episode_len=20)
    ids = np.arange(envs) % 81
    params = fam.task_params(jax.numpy.asarray(ids))
    sl = full_window(model, envs, context, cache)
    t0 = time.perf_counter()
    rollout_steps(fam, sl.policy, sl.observe, unit_keys(0, ids), params, steps)
    return envs * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, nargs="+", default=[100, 640])
    ap.add_argument("--envs", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"AD 9x9 recipe model, 9x9 Dark Room, {a.envs} envs, full window, "
          f"{a.steps} steps per timing, torch at 1 thread")
    print(f"{'context':>8}{'cache (env steps/s)':>22}{'recompute':>12}{'ratio':>8}")
    for ctx in a.contexts:
        torch.manual_seed(0)
        model = ADTransformer(ADConfig(**RECIPE, context_len=ctx), 81, 5).eval()
        steps_per_s(model, a.envs, ctx, True, 5)  # warm-up (jit of the env step)
        cached, full = [], []
        for _ in range(a.reps):
            cached.append(steps_per_s(model, a.envs, ctx, True, a.steps))
            full.append(steps_per_s(model, a.envs, ctx, False, a.steps))
        c, f = statistics.median(cached), statistics.median(full)
        print(f"{ctx:>8}{c:>22,.0f}{f:>12,.0f}{c / f:>8.1f}")


if __name__ == "__main__":
    main()
