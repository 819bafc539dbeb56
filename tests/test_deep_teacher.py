"""The deep-teacher study (issue 16, item 4): windows of return over steps, students that
continue a recorded history, frames padded to a common channel count, the three
questions' verdicts both ways, bad input, and a tiny run of the study."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import torch
from recording import Recording

from outlearn.collect import EnvSection
from outlearn.config import parse_config
from outlearn.envs import make_env, make_family
from outlearn.errors import ConfigError
from outlearn.evaluation.evaluate import rollout_units
from outlearn.evaluation.metrics import window_returns
from outlearn.report.section import Outcome
from outlearn.stats import Estimate
from outlearn.students import ADConfig, ADTransformer, step_inputs
from outlearn.studies.deep_teacher import DeepTeacherConfig, check_horizon, unit_curves
from outlearn.studies.deep_teacher_report import (
    at_cut_verdict,
    past_cut_verdict,
    scratch_verdict,
    transfer_verdict,
)

torch.set_num_threads(1)


def E(v, lo, hi):
    return Estimate(v, lo, hi, 0.95)


def test_window_returns_by_hand():
    """An episode counts in the window its last step lies in; a window that ends no
    episode is NaN; a trailing part window is dropped."""
    r = np.array([[1, 0, 2, 0, 0, 1, 0, 0, 5, 0]], float)
    term = np.array([[0, 1, 0, 0, 0, 0, 0, 1, 0, 0]], bool)
    trunc = np.array([[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]], bool)
    # episodes: steps 0-1 (return 1, ends in window 0), 2-3 (2, window 0), 4-7 (1, window 1)
    np.testing.assert_array_equal(window_returns(r, term, trunc, 4), [[1.5, 1.0]])
    out = window_returns(r, term, trunc, 2)
    np.testing.assert_array_equal(out[0, :4], [1.0, 2.0, np.nan, 1.0][:4])
    assert np.isnan(out[0, 4])  # steps 8-9: no episode ends
    with pytest.raises(ValueError, match="longer than the run"):
        window_returns(r, term, trunc, 11)


def test_unit_curves_nest_learners_with_seeds():
    """Two seeds x (2 tasks x 2 learners, task-major) -> (seeds x learners, tasks, W)."""
    from outlearn.core import Trajectory

    def traj(base):
        rew = np.zeros((4, 4))
        rew[:, 1] = base + np.arange(4)  # each row's one episode return
        done = np.zeros((4, 4), bool)
        done[:, 1] = done[:, 3] = True
        return Trajectory(None, None, rew, done, np.zeros_like(done), None, None, None)

    c = unit_curves([traj(0.0), traj(10.0)], 2, learners=2)
    assert c.shape == (4, 2, 2)
    # seed 0: task 0 learners 0, 1 -> returns 0, 1; task 1 -> 2, 3; seed 1 adds 10
    np.testing.assert_array_equal(c[:, 0, 0], [0, 1, 10, 11])
    np.testing.assert_array_equal(c[:, 1, 0], [2, 3, 12, 13])


@pytest.mark.parametrize("frames", [False, True])
def test_primed_student_continues_the_recorded_stream(frames):
    """A student primed with P recorded steps gives, at every step of its own run, the
    logits a full recompute gives on the stream (recorded steps, the last one ending an
    episode, then its own): the context holds the history it continues."""
    if frames:
        family = make_env("gymnax", name="Breakout-MinAtar", episode_len=6)
        cfg = ADConfig(n_layers=2, d_model=32, d_ff=64, context_len=12,
                       obs_shape=list(family.obs_shape))
        model = ADTransformer(cfg, 0, 3)
    else:
        family = make_env("darkroom", size=3, episode_len=4)
        model = ADTransformer(ADConfig(n_layers=2, d_model=32, d_ff=64, context_len=12), 9, 5)
    torch.manual_seed(0)
    model.eval()
    ids = np.arange(2)
    P, steps = 7, 15
    # the history to continue: random play on the same tasks
    rec = rollout_units(family, lambda n, s: Recording(model, num_envs=n, context_len=12),
                        ids, [5], P)[0]
    prime = {"obs": rec.obs, "actions": rec.actions, "rewards": rec.rewards,
             "terminated": rec.terminated, "truncated": rec.truncated}
    lr = Recording(model, num_envs=2, context_len=12, seed=0)
    traj = rollout_units(family, lambda n, s: lr, ids, [0], steps, prime=prime)[0]
    got = np.stack(lr.seen, 1)
    assert got.shape[1] == P + steps
    obs = np.concatenate([rec.obs, traj.obs], 1)
    act = np.concatenate([rec.actions, traj.actions], 1)
    rew = np.concatenate([rec.rewards, traj.rewards], 1)
    done = np.concatenate([rec.terminated | rec.truncated, traj.terminated | traj.truncated], 1)
    done[:, P - 1] = True  # the recorded stream ends an episode at the cut
    x = step_inputs(obs, act, rew, done, has_prev=False)
    with torch.no_grad():
        want = model.forward_stream(*(torch.from_numpy(x[k]) for k in (
            "obs", "prev_action", "prev_reward", "new_episode"))).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_prime_refuses_a_jax_learner():
    from outlearn.evaluation.baselines import make_baseline

    fam = make_env("darkroom", size=3, episode_len=4)
    z = np.zeros((1, 2), np.int32)
    with pytest.raises(ValueError, match="no context to prime"):
        rollout_units(fam, make_baseline("random", fam), np.arange(1), [0], 4,
                      prime={"obs": z, "actions": z, "rewards": z.astype(np.float32),
                             "terminated": z.astype(bool), "truncated": z.astype(bool)})


def test_pad_channels():
    """Breakout's 4 channels padded to Freeway's 7: the same frames, zeros after; a pad
    below the channel count, or on observations without channels, is refused."""
    plain = make_env("gymnax", name="Breakout-MinAtar")
    pad = make_env("gymnax", name="Breakout-MinAtar", pad_channels=7)
    assert plain.obs_shape == (10, 10, 4) and pad.obs_shape == (10, 10, 7)
    assert make_env("gymnax", name="Freeway-MinAtar", pad_channels=7).obs_shape == (10, 10, 7)
    p = plain.task_params(jax.numpy.arange(1))
    one = jax.tree.map(lambda x: x[0], p)
    a, _ = plain.reset(jax.random.key(3), one)
    b, _ = pad.reset(jax.random.key(3), one)
    np.testing.assert_array_equal(np.asarray(b)[..., :4], np.asarray(a))
    assert not np.asarray(b)[..., 4:].any() and np.asarray(a).any()
    with pytest.raises(ConfigError, match="pad_channels >= 4"):
        make_env("gymnax", name="Breakout-MinAtar", pad_channels=3)
    with pytest.raises(ConfigError, match="leave pad_channels unset"):
        make_env("gymnax", name="CartPole-v1", pad_channels=7)


# ------------------------------------------------------------------------------ verdicts
def test_at_cut_verdict_both_ways():
    assert at_cut_verdict(E(-0.05, -0.2, 0.1), 0.3).outcome is Outcome.YES
    assert at_cut_verdict(E(0.5, 0.2, 0.8), 0.3).outcome is Outcome.YES
    no = at_cut_verdict(E(-1.0, -1.5, -0.5), 0.3)
    assert no.outcome is Outcome.NO and "below" in no.label
    assert at_cut_verdict(E(-0.3, -0.9, 0.2), 0.3).inconclusive
    # a teacher at the cut within the resolution of random: a random student would pass
    near = at_cut_verdict(E(-0.05, -0.2, 0.1), 0.3, above_random=E(0.5, 0.2, 0.8))
    assert near.inconclusive and "not resolved above random" in near.label
    assert at_cut_verdict(E(-0.05, -0.2, 0.1), 0.3, above_random=E(1.0, 0.5, 1.5)).outcome \
        is Outcome.YES


def test_past_cut_verdict_both_ways():
    ok = at_cut_verdict(E(0.0, -0.1, 0.1), 0.3)
    rising = E(2.0, 1.5, 2.5)
    keeps = past_cut_verdict(ok, E(0.05, -0.2, 0.25), E(1.9, 1.4, 2.4), rising, 0.3)
    assert keeps.outcome is Outcome.YES and "keeps improving" in keeps.label
    flat = past_cut_verdict(ok, E(2.0, 1.6, 2.4), E(0.0, -0.2, 0.2), rising, 0.3)
    assert flat.outcome is Outcome.NO and "plateaus" in flat.label
    some = past_cut_verdict(ok, E(1.0, 0.6, 1.4), E(1.0, 0.6, 1.4), rising, 0.3)
    assert some.outcome is Outcome.NO and "improves, but falls short" in some.label
    assert past_cut_verdict(ok, E(0.5, -0.5, 1.5), E(1.0, 0.6, 1.4), rising, 0.3).inconclusive
    # gate: a student below the teacher at the cut says nothing about the rest
    below = at_cut_verdict(E(-1.0, -1.5, -0.5), 0.3)
    gated = past_cut_verdict(below, E(2.0, 1.6, 2.4), E(0.0, -0.2, 0.2), rising, 0.3)
    assert gated.inconclusive and "does not imitate" in gated.label
    unsure = past_cut_verdict(at_cut_verdict(E(-0.3, -0.9, 0.2), 0.3), E(2.0, 1.6, 2.4),
                              E(0.0, -0.2, 0.2), rising, 0.3)
    assert unsure.inconclusive and "not shown to imitate" in unsure.label
    # a teacher that does not improve past the cut leaves nothing to keep up with
    still = past_cut_verdict(ok, E(2.0, 1.6, 2.4), E(0.0, -0.2, 0.2), E(0.1, -0.2, 0.4), 0.3)
    assert still.inconclusive and "not shown to improve" in still.label


def test_scratch_and_transfer_verdicts():
    learns = scratch_verdict(E(1.0, 0.6, 1.4), E(2.0, 1.5, 2.5), 0.3, "freeway", "dqn")
    assert learns.outcome is Outcome.YES
    flat = scratch_verdict(E(0.0, -0.1, 0.1), E(2.0, 1.5, 2.5), 0.3, "freeway", "dqn")
    assert flat.outcome is Outcome.NO
    unlearnable = scratch_verdict(E(1.0, 0.6, 1.4), E(0.1, -0.1, 0.3), 0.3, "freeway", "dqn")
    assert unlearnable.inconclusive and "does not learn freeway" in unlearnable.label
    assert scratch_verdict(E(1.0, 0.6, 1.4), E(0.0, 0.0, 0.0), None, "g", "dqn").inconclusive
    assert transfer_verdict({"a": learns, "b": learns}).outcome is Outcome.YES
    assert transfer_verdict({"a": flat, "b": flat}).outcome is Outcome.NO
    assert transfer_verdict({"a": learns, "b": flat}).inconclusive
    assert transfer_verdict({}).inconclusive


# ------------------------------------------------------------------------------ bad input
DARK = {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 4}}
STUDENT = {"kind": "ad", "model": {"n_layers": 1, "d_model": 16, "d_ff": 32},
           "context_len": 12, "train_steps": 4, "batch_size": 4, "checkpoint_every": 2,
           "shards": 1}


def dark_setting(**over):
    s = {"name": "q-darkroom", "env": DARK,
         "teacher": {"name": "qlearning", "kwargs": {"eps_decay_steps": 24}},
         "tasks": {"seed": 0, "n_train": 3, "n_test": 2}, "learners_per_task": 1,
         "cut_steps": 16, "eval_steps": 48, "scratch_steps": 16, "window_steps": 8,
         "student": STUDENT,
         "transfer": [{"name": "permuted", "env": {"name": "permuted-actions", "kwargs": {
             "base": "darkroom", "size": 3, "episode_len": 4}}}]}
    s.update(over)
    return s


def config_data(**over):
    return {"train_seeds": [0, 1], "eval_seeds": [0], "episodes_factor": 2, "threads": 1,
            "settings": [dark_setting(**over)]}


def config(**over):
    return parse_config(DeepTeacherConfig, config_data(**over))


def test_bad_input_names_the_fix():
    with pytest.raises(ConfigError, match="multiple of window_steps"):
        config(cut_steps=12)
    with pytest.raises(ConfigError, match="raise window_steps to >= 6"):
        config(env={"name": "darkroom", "kwargs": {"size": 3, "episode_len": 6}},
               window_steps=4, cut_steps=16, eval_steps=48, scratch_steps=16)
    with pytest.raises(ConfigError, match="same actions"):
        config(transfer=[{"name": "asterix", "env": {"name": "gymnax", "kwargs": {
            "name": "Asterix-MinAtar", "episode_len": 8}}}])
    with pytest.raises(ConfigError, match="unique"):
        config(transfer=[{"name": "q-darkroom", "env": DARK}])
    cfg = config()
    with pytest.raises(ConfigError, match="raise eval_steps to 80"):
        check_horizon(cfg, cfg.settings[0], {"cut_episodes": 10.0, "pace": 4.0})
    check_horizon(cfg, cfg.settings[0], {"cut_episodes": 4.0, "pace": 4.0})


def test_breakout_and_freeway_share_a_frame_shape_only_when_padded():
    base = {"name": "dqn-breakout", "env": {"name": "gymnax", "kwargs": {
        "name": "Breakout-MinAtar", "episode_len": 8}},
        "teacher": {"name": "random"}, "window_steps": 8, "cut_steps": 16, "eval_steps": 16,
        "scratch_steps": 16, "student": STUDENT, "tasks": {"seed": 0, "n_train": 1,
                                                           "n_test": 1},
        "transfer": [{"name": "freeway", "env": {"name": "gymnax", "kwargs": {
            "name": "Freeway-MinAtar", "episode_len": 8}}}]}
    with pytest.raises(ConfigError, match="pad_channels"):
        parse_config(DeepTeacherConfig, {"train_seeds": [0, 1], "settings": [base]})
    for g in (base["env"], base["transfer"][0]["env"]):
        g["kwargs"]["pad_channels"] = 7
    parse_config(DeepTeacherConfig, {"train_seeds": [0, 1], "settings": [base]})


# ------------------------------------------------------------------------------ a tiny run
def test_tiny_study_runs_and_writes_its_verdicts(tmp_path):
    """The whole study on a 3x3 Dark Room: three questions and the contrast, every
    estimate finite with its CI, results.json with the four sections' outcomes."""
    from outlearn.studies.runner import run_study

    report = run_study("deep-teacher", config_data(), tmp_path, quiet=True)
    out = report.parent
    res = json.loads((out / "results.json").read_text())
    keys = [s["key"] for s in res["sections"]]
    assert keys == ["q-darkroom-at-cut", "q-darkroom-past-cut", "q-darkroom-scratch",
                    "contrast"]
    for s in res["sections"]:
        assert s["verdict"]["outcome"] in {o.value for o in Outcome}
    assert (out / "deep-teacher-q-darkroom-continuation.png").exists()
    assert (out / "report.html").exists()
    # the ceiling map takes the student past the cut as a row of its own
    from outlearn.report.ceiling_map import read_map

    _, rows, claims = read_map([out / "results.json"])
    assert [(r.teacher, r.student, r.cut, r.section) for r in rows] == [
        ("qlearning", "ad", "step 16", "q-darkroom-past-cut")]
    assert rows[0].family.startswith("darkroom") and len(claims) == 4


def test_games_of_a_setting_are_built_from_env_sections():
    fam = make_family(EnvSection(name="permuted-actions", kwargs={
        "base": "gymnax", "name": "Breakout-MinAtar", "episode_len": 8, "pad_channels": 7}))
    assert fam.obs_shape == (10, 10, 7) and fam.num_actions == 3


@pytest.mark.slow
def test_tiny_minatar_study_runs_every_game(tmp_path):
    """The study's MinAtar path end to end at a tiny size (about 2 minutes here): DQN
    histories on Breakout with frames padded to 7 channels, students continuing them and
    starting from scratch on Freeway and on permuted Breakout, DQN run fresh on each."""
    from outlearn.studies.runner import run_study

    pad = {"episode_len": 20, "pad_channels": 7}
    data = {"train_seeds": [0, 1], "eval_seeds": [0], "episodes_factor": 2, "threads": 1,
            "settings": [{
                "name": "dqn-breakout",
                "env": {"name": "gymnax", "kwargs": {"name": "Breakout-MinAtar", **pad}},
                "teacher": {"name": "dqn", "kwargs": {
                    "hidden": 16, "buffer_size": 64, "batch_size": 8, "learning_starts": 16,
                    "eps_decay_steps": 100, "target_every": 20}},
                "tasks": {"seed": 0, "n_train": 2, "n_test": 2}, "learners_per_task": 2,
                "cut_steps": 80, "eval_steps": 160, "scratch_steps": 80, "window_steps": 20,
                "student": {**STUDENT, "context_len": 24},
                "transfer": [
                    {"name": "freeway", "env": {"name": "gymnax", "kwargs": {
                        "name": "Freeway-MinAtar", **pad}}},
                    {"name": "breakout-permuted", "env": {"name": "permuted-actions", "kwargs": {
                        "base": "gymnax", "name": "Breakout-MinAtar", **pad}}}]}]}
    report = run_study("deep-teacher", data, tmp_path, quiet=True)
    res = json.loads((report.parent / "results.json").read_text())
    scratch = next(s for s in res["sections"] if s["key"] == "dqn-breakout-scratch")
    games = {row["game"] for row in scratch["rows"]}
    assert games == {"dqn-breakout (trained on)", "freeway", "breakout-permuted"}
