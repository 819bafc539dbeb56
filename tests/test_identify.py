"""Family identification (claim 12): the likelihood of a history under its own teacher, the
replay to a cut, parameter recovery, the study's verdicts and its refusals."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest

from outlearn.collect import CollectConfig, collect
from outlearn.envs import make_env
from outlearn.errors import ConfigError
from outlearn.histories import History
from outlearn.identify import FLOOR, Steps, make_learner_family
from outlearn.identify.fit import fit, space_from
from outlearn.identify.replay import kl_per_step, replay_states
from outlearn.report.section import Outcome
from outlearn.rng import learner_keys
from outlearn.rollout import rollout_scan
from outlearn.stats import Estimate
from outlearn.studies.verdicts import family_verdict, identify_verdict, within_verdict
from outlearn.teachers import make_teacher

ROOM = {"name": "darkroom", "kwargs": {"size": 4, "episode_len": 8}}
BANDIT = {"name": "bernoulli-bandit", "kwargs": {"num_arms": 4}}
#: a Q-learner whose parameters the fit must find (linear epsilon from 1 to 0.1)
Q_TEACHER = {"learning_rate": 0.5, "initial_value": 1.0, "eps_schedule": "linear",
             "eps_start": 1.0, "eps_end": 0.1, "eps_decay_steps": 200}


def _collect(tmp: Path, env: dict, teacher: str, kwargs: dict, episodes: int,
             n_train: int = 3, n_test: int = 1) -> Path:
    cc = CollectConfig.model_validate(dict(
        env=env, teacher={"name": teacher, "kwargs": kwargs},
        tasks={"n_train": n_train, "n_test": n_test, "seed": 0}, learners_per_task=2,
        num_episodes=episodes, seed=0, out=tmp / f"{teacher}-{len(kwargs)}.h5"))
    return collect(cc, progress=False)


@pytest.mark.parametrize("env,teacher,kwargs", [
    (ROOM, "qlearning", Q_TEACHER),
    (ROOM, "qlearning", {"initial_value": "optimistic"}),  # greedy, optimistic values
    (ROOM, "qlearning", {"eps_unit": "episode", "eps_schedule": "exponential",
                         "eps_start": 0.5, "eps_decay_steps": 10, "discount": 0.8}),
    (BANDIT, "egreedy", {}),
    (BANDIT, "ucb1", {"c": 0.7}),
])
def test_likelihood_of_own_history_is_its_logged_log_probs(tmp_path, env, teacher, kwargs):
    path = _collect(tmp_path, env, teacher, kwargs, 40)
    fam = make_learner_family(teacher)
    with History(path) as h:
        assert h.has_next_obs
        steps = Steps.from_history(h, h.learners())
        probs = h.read_steps("probs", h.learners())
        num_obs, a = h.meta.num_obs, h.meta.num_actions
    taken = np.take_along_axis(probs, steps.actions[..., None], -1)[..., 0]
    logged = np.log(np.maximum(taken, FLOOR)).astype(np.float64).sum(axis=1)
    values, variant = fam.truth(kwargs)
    theta = {k: np.array([v]) for k, v in values.items()}
    ll = fam.log_likelihood(theta, variant, steps, steps.obs.shape[1], num_obs, a)[:, 0]
    np.testing.assert_allclose(ll, logged, rtol=1e-5, atol=1e-3)
    # and step by step, the member's probabilities are the teacher's
    q = fam.action_probs(values, variant, steps, num_obs, a)
    np.testing.assert_allclose(q, probs, atol=1e-6)
    assert np.all(kl_per_step(probs, q) < 1e-5)


def test_replay_to_the_end_is_the_rollouts_final_state():
    family = make_env(ROOM["name"], **ROOM["kwargs"])
    teacher = make_teacher("qlearning", family, **Q_TEACHER)
    ids = jnp.arange(4)
    keys, params = learner_keys(np.arange(4)), family.task_params(ids)
    traj, final = rollout_scan(family, teacher, keys, params, 160)
    steps = Steps(traj.obs, traj.actions, traj.rewards, traj.next_obs, traj.terminated,
                  traj.terminated | traj.truncated)
    # the fused path's next_obs: the next step's obs, except where an episode ended
    done = steps.done[:, :-1]
    assert np.array_equal(traj.next_obs[:, :-1][~done], traj.obs[:, 1:][~done])
    replayed = replay_states(teacher, keys, params, steps, 160)
    # the same updates in a different program: equal up to float rounding (fused ops)
    np.testing.assert_allclose(np.asarray(replayed), np.asarray(final), rtol=1e-6)


def test_fit_recovers_an_in_family_teacher(tmp_path):
    path = _collect(tmp_path, ROOM, "qlearning", Q_TEACHER, 60, n_train=4, n_test=0)
    fam = make_learner_family("qlearning")
    truth, _ = fam.truth(Q_TEACHER)
    space = space_from(fam, {"learning_rate": [0.05, 1.0], "initial_value": [0.0, 3.0],
                             "eps_end": [0.0, 0.5]},
                       {"eps_schedule": ["linear", "constant"], "initial": "value"}, truth,
                       grid=500, refine_points=300, profile_points=12)
    with History(path) as h:
        steps = Steps.from_history(h, h.learners())
        res = fit(fam, steps, 320, h.meta.num_obs, h.meta.num_actions, space)
    assert res.variant["eps_schedule"] == "linear"
    assert res.variants["eps_schedule=constant, initial=value"] < res.loglik - 10
    for name in ("learning_rate", "initial_value", "eps_end"):
        lo, hi = res.ci[name]
        assert lo <= truth[name] <= hi, (name, res.ci[name])
        assert res.identified[name]
        assert hi - lo < 0.8 * (space.free[name][1] - space.free[name][0]), name
    # the fitted member is at least as likely as the truth
    theta = {k: np.array([v]) for k, v in truth.items()}
    with History(path) as h:
        true_ll = fam.log_likelihood(theta, res.variant, Steps.from_history(h, h.learners()),
                                     320, h.meta.num_obs, h.meta.num_actions).sum()
    assert res.loglik >= true_ll - 1e-3


def test_fit_refuses_a_cut_before_the_first_episode(tmp_path):
    path = _collect(tmp_path, ROOM, "qlearning", Q_TEACHER, 10)
    fam = make_learner_family("qlearning")
    space = space_from(fam, {"learning_rate": [0.1, 1.0]}, {}, fam.truth({})[0], grid=4)
    with History(path) as h, pytest.raises(ConfigError, match="first complete episode"):
        fit(fam, Steps.from_history(h, h.learners()), 5, h.meta.num_obs, h.meta.num_actions,
            space)


# ------------------------------------------------------------------------------ verdicts
def E(v: float, lo: float, hi: float) -> Estimate:
    return Estimate(v, lo, hi)


def test_family_and_within_verdicts_read_their_cis():
    assert family_verdict(E(0.004, 0.003, 0.005), 0.02).outcome is Outcome.YES
    assert family_verdict(E(0.3, 0.2, 0.4), 0.02).outcome is Outcome.NO
    assert family_verdict(E(0.02, 0.01, 0.03), 0.02).inconclusive
    assert within_verdict(E(1.0, 0.97, 1.03), 0.05, "r").outcome is Outcome.YES
    assert within_verdict(E(0.8, 0.7, 0.9), 0.05, "r").outcome is Outcome.NO
    assert within_verdict(E(0.95, 0.9, 1.0), 0.05, "r").inconclusive


def test_identify_verdict_follows_the_prediction_for_each_side():
    yes_f, no_f = family_verdict(E(0, 0, 0.01), 0.02), family_verdict(E(1, 0.5, 1.5), 0.02)
    yes_c, no_c = (within_verdict(E(1, 0.99, 1.01), 0.05, "r"),
                   within_verdict(E(0.5, 0.4, 0.6), 0.05, "r"))
    wide_c = within_verdict(E(1, 0.5, 1.5), 0.05, "r")
    assert identify_verdict(yes_f, yes_c, True, []).outcome is Outcome.CONFIRMED
    assert identify_verdict(yes_f, no_c, True, []).outcome is Outcome.REFUTED
    assert identify_verdict(no_f, wide_c, True, []).outcome is Outcome.REFUTED
    assert identify_verdict(yes_f, wide_c, True, []).inconclusive
    assert "learning_rate" in identify_verdict(yes_f, yes_c, True, ["learning_rate"]).label
    assert identify_verdict(no_f, no_c, False, []).outcome is Outcome.CONFIRMED
    assert identify_verdict(yes_f, yes_c, False, []).outcome is Outcome.REFUTED


# ------------------------------------------------------------------------------ the study
TINY: dict[str, Any] = {
    "seed": 0, "learners_per_task": 2, "teacher_episodes": 50, "cut": 0.5,
    "train_seeds": [0, 1], "threads": 1, "env": ROOM,
    "teacher": {"name": "qlearning", "kwargs": Q_TEACHER},
    "tasks": {"seed": 0, "n_train": 6, "n_test": 3},
    "student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 1, "d_model": 16,
                                        "d_ff": 32},
                "context_len": 40, "train_steps": 10, "batch_size": 8, "warmup_steps": 2},
    "eval": {"episodes": 50, "seeds": [0]},
    "fit": {"family": "qlearning",
            "params": {"learning_rate": [0.05, 1.0], "initial_value": [0.0, 3.0],
                       "eps_end": [0.0, 0.5], "discount": 0.9, "eps_start": 1.0,
                       "eps_decay_steps": 200},
            "variants": {"eps_schedule": ["linear", "constant"], "initial": "value"},
            "grid": 300, "refine_points": 200, "profile_points": 12},
}


def _cfg(**over: Any):
    from outlearn.studies.identify import IdentifyConfig

    d = copy.deepcopy(TINY)
    for k, v in over.items():
        d[k] = v
    return IdentifyConfig.model_validate(d)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from outlearn.studies.base import RunContext
    from outlearn.studies.identify import run

    cfg = _cfg()
    return cfg, run(cfg, RunContext(tmp_path_factory.mktemp("identify"), quiet=True))


def test_identify_study_recovers_and_judges_in_family(tiny_run):
    from studies_tiny import check_cells

    cfg, (fit_sec, claim) = tiny_run
    assert fit_sec.outcome is Outcome.YES, fit_sec.verdict
    assert [r["recovered"] for r in fit_sec.rows[:3]] == ["yes"] * 3
    for s in (fit_sec, claim):
        check_cells(s)
    member = claim.rows[1]
    assert member["held-out KL"].high < cfg.kl_tol  # the family contains the teacher
    assert claim.outcome in (Outcome.CONFIRMED, Outcome.REFUTED, Outcome.INCONCLUSIVE)
    assert "KL" in claim.verdict_reason and claim.figures[0].exists()
    labels = [r["learner"] for r in claim.rows]
    assert "AD trained on the cut" in labels and "fitted member run fresh" in labels


@pytest.mark.slow
def test_identify_study_out_of_family_keeps_kl_above_the_bar(tmp_path):
    """UCB1's pulls, fitted by the epsilon-greedy family: no member predicts them."""
    from outlearn.studies.base import RunContext
    from outlearn.studies.identify import run

    cfg = _cfg(env=BANDIT, teacher={"name": "ucb1", "kwargs": {}}, teacher_episodes=120,
               eval={"episodes": 120, "seeds": [0]}, cut=0.6, smoothing=10,
               tasks={"seed": 0, "n_train": 4, "n_test": 3},
               student={"kind": "ad", "model": {"n_layers": 1, "n_heads": 1, "d_model": 16,
                                                "d_ff": 32},
                        "context_len": 40, "train_steps": 5, "batch_size": 8,
                        "warmup_steps": 1},
               fit={"family": "egreedy", "params": {"eps_start": [0.0, 1.0]},
                    "variants": {"eps_schedule": "constant"}, "grid": 40,
                    "refine_points": 50, "profile_points": 8})
    fit_sec, claim = run(cfg, RunContext(tmp_path, quiet=True))
    kl = claim.rows[1]["held-out KL"]
    assert kl.low > cfg.kl_tol, kl
    assert claim.outcome is Outcome.CONFIRMED, claim.verdict


@pytest.mark.badinput
def test_identify_config_refuses_what_it_cannot_fit():
    with pytest.raises(ConfigError, match="unknown family 'nope'.*known families"):
        _cfg(fit={"family": "nope"})
    with pytest.raises(ConfigError, match="bandit learner.*fit it with family 'qlearning'"):
        _cfg(fit={"family": "egreedy"})
    with pytest.raises(ConfigError, match="frame observations"):
        _cfg(env={"name": "gymnax", "kwargs": {"name": "Breakout-MinAtar", "episode_len": 20}},
             teacher={"name": "random", "kwargs": {}})
    with pytest.raises(ConfigError, match="no parameter 'alpha'"):
        _cfg(fit={"family": "qlearning", "params": {"alpha": [0, 1]}})
    with pytest.raises(ConfigError, match="learning_rate = \\[0.0, 1.0\\]"):
        _cfg(fit={"family": "qlearning", "params": {"learning_rate": [0.0, 1.0]}})


@pytest.mark.badinput
def test_a_history_without_next_obs_is_refused_with_the_fix(tmp_path):
    import h5py

    path = _collect(tmp_path, ROOM, "qlearning", Q_TEACHER, 5)
    with h5py.File(path, "a") as f:
        del f["next_obs"]
    with History(path) as h, pytest.raises(ConfigError, match="Collect it again"):
        Steps.from_history(h, h.learners())


def test_ucb1_member_with_a_lapse_is_not_a_teacher():
    fam = make_learner_family("ucb1")
    with pytest.raises(ConfigError, match="lapse"):
        fam.teacher_kwargs({"c": 1.0, "lapse": 0.1}, {})
    assert fam.teacher_kwargs({"c": 1.0, "lapse": 0.0}, {}) == {"c": 1.0}
