"""Quality checks (slow, minutes each): students learn in context as well as their sources.

Each check collects teacher histories, trains a student on the train tasks, and runs the
student and its source fresh on held-out tasks with the same seeds. Run with
``pytest -m slow tests/test_quality.py -s`` to see the measured numbers.
"""

from __future__ import annotations

import json
import time

import jax
import numpy as np
import pytest

from outlearn.collect import CollectConfig, collect
from outlearn.config import parse_config
from outlearn.envs import make_env
from outlearn.evaluation.baselines import make_teacher
from outlearn.evaluation.evaluate import LearnerSpec, run_learner
from outlearn.evaluation.metrics import episodes_to_threshold, mean_curve_ci
from outlearn.histories import History
from outlearn.students import TrainConfig, train

pytestmark = pytest.mark.slow

SEEDS = [0, 1]


def _collect(tmp, env, env_kw, teacher, teacher_kw, n_train, n_test, lpt=1, **length):
    cfg = parse_config(CollectConfig, {
        "env": {"name": env, "kwargs": env_kw}, "teacher": {"name": teacher, "kwargs": teacher_kw},
        "tasks": {"seed": 0, "n_train": n_train, "n_test": n_test}, "learners_per_task": lpt,
        "seed": 0, "out": str(tmp / f"{env}-{teacher}.h5"), **length,
    })
    path = collect(cfg, progress=False)
    with History(path) as h:
        test_ids = np.unique(h.task_ids[h.learners("test")])
    return path, test_ids


# a CPU-sized transformer (the "small" preset at half width, no dropout)
TINY = {"n_layers": 2, "n_heads": 2, "d_model": 32, "d_ff": 128, "dropout": 0.0,
        "attn_dropout": 0.0}


def _train(tmp, history, env, kind, ctx, labels, steps, model=None, lr=2e-3, batch=16,
           threads=None, data=None):
    cfg = parse_config(TrainConfig, {
        "history": str(history), "env": env,
        "student": {"kind": kind, "preset": "small", "model": {**TINY, **(model or {})}},
        "data": {"context_len": ctx, "labels": labels, "batch_size": batch, **(data or {})},
        "optim": {"lr": lr, "warmup_steps": min(200, steps // 10), "total_steps": steps},
        "seed": 0, "out": str(tmp / f"train-{kind}"), "val_every": max(steps // 4, 1),
        "checkpoint_every": steps, "threads": threads,
    })
    return train(cfg, quiet=True)


def _report(name, **numbers):
    print(f"\n[quality] {name}: " + json.dumps(numbers, default=float))


def _bandit_regret_at_t(fam, learner, ids, t, mode):
    """Mean cumulative regret at pull ``t`` over (seeds, tasks), with its 95% band."""
    _, reg = run_learner(fam, learner, ids, SEEDS, t, mode)
    band = mean_curve_ci(np.cumsum(reg, axis=-1))
    return float(band.mean[-1]), (float(band.low[-1]), float(band.high[-1]))


def test_ad_matches_ucb_on_bandit(tmp_path):
    """AD on UCB1 histories (5 arms, T=100) within 15% of UCB1's cumulative regret."""
    t = 100
    fam = make_env("bernoulli-bandit", num_arms=5)
    hist, ids = _collect(tmp_path, "bernoulli-bandit", {"num_arms": 5}, "ucb1", {},
                         n_train=400, n_test=50, num_steps=t)
    ckpt = _train(tmp_path, hist, "bernoulli-bandit", "ad", t, "actions", 800)
    ad, ad_ci = _bandit_regret_at_t(
        fam, LearnerSpec(name="ad", kind="student", checkpoint=ckpt), ids, t, "greedy")
    ucb, ucb_ci = _bandit_regret_at_t(fam, make_teacher("ucb1", fam), ids, t, "greedy")
    _report("AD vs UCB1, bandit T=100", ad=ad, ad_ci=ad_ci, ucb=ucb, ucb_ci=ucb_ci,
            ratio=ad / ucb)
    assert ad <= 1.15 * ucb


def test_dpt_matches_thompson_on_bandit(tmp_path):
    """DPT within 15% of Thompson sampling's regret (5 arms, T=100), trained as in the DPT
    paper: contexts from random action mixtures (the ``mixture`` teacher), the task's best
    arm as label, every prefix of the first 100 pulls a query, arms relabelled at random.

    (Trained on Thompson's own histories instead, the same model reached 1.37x Thompson:
    it fits the posterior along the teacher's trajectories and drifts along its own.)
    As configs/collect-bandit-mixture.toml + train-dpt-bandit.toml + eval-dpt-bandit.toml.
    """
    t = 100
    fam = make_env("bernoulli-bandit", num_arms=5)
    hist, ids = _collect(tmp_path, "bernoulli-bandit", {"num_arms": 5}, "mixture", {},
                         n_train=20000, n_test=50, num_steps=t + 1)
    ckpt = _train(tmp_path, hist, "bernoulli-bandit", "dpt", t, "optimal", 3000,
                  model={"predict_prefixes": True, "d_model": 64,
                         "d_ff": 256}, lr=1e-3, batch=32,
                  data={"set_start": "first", "permute_actions": True})
    dpt, dpt_ci = _bandit_regret_at_t(
        fam, LearnerSpec(name="dpt", kind="student", checkpoint=ckpt), ids, t, "sample")
    ts, ts_ci = _bandit_regret_at_t(fam, make_teacher("thompson", fam), ids, t, "sample")
    _report("DPT vs Thompson, bandit T=100", dpt=dpt, dpt_ci=dpt_ci, thompson=ts,
            thompson_ci=ts_ci, ratio=dpt / ts)
    assert dpt <= 1.15 * ts


# rotary positions, a key/value cache in evaluation, shards on both cores. 10,000 steps
# reached 0.8 at episode 83 in one run and at episode 98 (over the 97.5 budget) after only
# the summation order of the gradients changed: too thin a margin. 12,000 steps (61M
# tokens): 0.8 at episode 76 with the earlier summation order, at episode 139 with the
# final one: not reliably met. 24,000 steps (123M tokens, the tokens of the GPU recipe whose
# five students meet the bar on their mean curve): 0.8 at episode 76, 0.842 at best within
# the budget, 20 min 37 s end to end on the idle machine (README, quality bars).
DARKROOM_STEPS = 24000
QL = {"initial_value": 1.0, "eps_schedule": "linear", "eps_start": 1.0, "eps_end": 0.0,
      "eps_decay_steps": 400}


def test_ad_learns_darkroom_in_context(tmp_path):
    """AD on 9x9 Dark Room Q-learning histories: >= 80% of optimal on held-out goals
    within 1.5x the episodes the teacher needs."""
    env_kw = {"size": 9, "episode_len": 20}
    fam = make_env("darkroom", **env_kw)
    # 120 episodes per history: the teacher reaches 0.8 of optimal by about episode 65 and
    # its plateau by 90, so every window sees learning, not 100 more episodes of the same
    # converged walk (tried with 200: see below)
    hist, ids = _collect(tmp_path, "darkroom", env_kw, "qlearning", QL, n_train=65, n_test=16,
                         lpt=16, num_episodes=120)
    horizon = 200
    opt = np.asarray(jax.vmap(fam.optimal_return)(fam.task_params(ids)), np.float64)
    teacher = run_learner(fam, make_teacher("qlearning", fam, **QL), ids, SEEDS, horizon)[0]
    t_norm = mean_curve_ci(teacher / opt[None, :, None]).mean
    t_eps = episodes_to_threshold(t_norm, 0.8)
    # cells embedded from (row, col) and the previous observation in each token, as in
    # configs/demo.toml (tests/test_ad_consistency.py measures what each buys); a context of
    # 32 episodes: the student must remember where it has already looked. Measured on
    # 200-episode histories, 12,000 steps (best share of optimal within the 98-episode
    # budget; teacher to 0.8: 65 episodes), by context (batch): 4 episodes (32) 0.59;
    # 8 (32) 0.70; 16 (16) 0.73, 0.8 at episode 164; 32 (8) 0.77; 64 (8) 0.70, though its
    # validation loss was lowest (0.142 vs 0.195 at 32). With learned positions and the
    # window recomputed every step (before the cache): 120-episode histories, 24,000
    # steps: 0.8 at episode 83, 0.867 at best, 76 min in all here (1 h of training).
    t0 = time.perf_counter()
    ckpt = _train(tmp_path, hist, "darkroom", "ad", 640, "actions", DARKROOM_STEPS, lr=3e-3,
                  batch=8, model={"d_model": 64, "d_ff": 256, "obs_factors": [9, 9],
                                  "prev_obs": True})
    t_train = time.perf_counter() - t0
    budget = int(np.ceil(1.5 * t_eps)) if np.isfinite(t_eps) else horizon
    student = run_learner(fam, LearnerSpec(name="ad", kind="student", checkpoint=ckpt), ids,
                          SEEDS, horizon, "sample")[0]
    s_norm = mean_curve_ci(student / opt[None, :, None]).mean
    s_eps = episodes_to_threshold(s_norm, 0.8)
    _report("AD on Dark Room 9x9", train_s=t_train, eval_s=time.perf_counter() - t0 - t_train,
            steps=DARKROOM_STEPS, teacher_episodes_to_80=t_eps, student_episodes_to_80=s_eps,
            budget=budget, student_best_in_budget=float(s_norm[:budget].max()),
            student_best=float(s_norm.max()), student_last10=float(s_norm[-10:].mean()),
            teacher_last10=float(t_norm[-10:].mean()))
    assert np.isfinite(t_eps), "the teacher itself never reached 80% of optimal"
    assert np.isfinite(s_eps) and s_eps <= 1.5 * t_eps
