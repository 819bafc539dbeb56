"""The noise-distillation study (claim 4): its verdict, its data summary, a tiny run."""

from __future__ import annotations

import numpy as np
import pytest
from studies_tiny import check_cells, tiny

from outlearn.config import parse_config
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext
from outlearn.studies.common import held_out_tasks, make_family
from outlearn.studies.noise import NoiseStudyConfig, data_summary, run
from outlearn.studies.verdicts import GATE, beats_data_verdict

TINY = tiny(teacher={"name": "noise", "kwargs": {"eps_end": 0.6, "decay_steps": 20}})


def test_beats_data_verdict():
    assert beats_data_verdict(Estimate(2.0, 1.6, 2.4), 1.5).label == "confirmed"
    assert beats_data_verdict(Estimate(1.1, 0.9, 1.4), 1.5).label == "refuted"
    assert beats_data_verdict(Estimate(1.5, 1.2, 1.8), 1.5).inconclusive


def test_tiny_run_reports_the_student_against_the_best_in_its_data(tmp_path):
    cfg = parse_config(NoiseStudyConfig, TINY)
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert [r["learner"].split(" (")[0] for r in section.rows] == [
        "student", "best in data", "student, goal shown", "teacher run fresh", "random",
        "optimum"]
    check_cells(section)
    student, best, shown = section.rows[0], section.rows[1], section.rows[2]
    ratio = student["ratio to best in data"]
    assert ratio.value == pytest.approx(student["asymptote"].value / best["asymptote"].value)
    assert shown["ratio to best in data"].value == pytest.approx(
        shown["asymptote"].value / best["asymptote"].value)
    assert "goal shown" in section.notes[1]
    if section.verdict.startswith(GATE):  # the student does not reach its own data
        assert ratio.high < 1 and section.outcome == "inconclusive"
    else:
        assert section.verdict == beats_data_verdict(ratio, cfg.ratio_bar).label
    # eps falls 1 -> 0.6 over the first 20 of 40 steps: the optimal action is taken on
    # about 1/5 + 4/5 * (1 - mean eps) of the steps, mean eps = (0.8 * 20 + 0.6 * 20) / 40
    (full,) = (tmp_path / "stages").glob("collect-*/full.h5")
    ids = held_out_tasks(make_family(cfg.env), cfg.tasks)
    _, support = data_summary(full, ids, 3, 5)
    assert support.optimal_share == pytest.approx(0.2 + 0.8 * (1 - 0.7), abs=0.06)
    assert support.never_taken == () and support.outside_share == 0
    assert "in the data's support: the data takes it on" in section.notes[0]


def test_the_goal_shown_run_primes_each_teachers_last_whole_episodes(tmp_path, monkeypatch):
    """primed_returns hands the rollout the last whole episodes that fit in the student's
    context of every held-out teacher learner (one unit each, keyed by learner) and
    averages each task's learners: checked against the history, with a recording
    run_learner whose return for a unit is its learner index."""
    from outlearn.histories import History
    from outlearn.studies import noise

    cfg = parse_config(NoiseStudyConfig, TINY)  # context 15 steps = 3 episodes of 5
    run(cfg, RunContext(tmp_path, quiet=True))
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    (full,) = (tmp_path / "stages").glob("collect-*/full.h5")
    seen = {}

    def recording(fam, spec, tasks, seeds, episodes, mode="sample", on_step=None, *,
                  unit_ids=None, prime=None):
        seen.update(tasks=tasks, unit_ids=unit_ids, prime=prime, mode=mode, spec=spec)
        units = np.broadcast_to(np.asarray(unit_ids, float)[None, :, None],
                                (len(seeds), len(tasks), episodes))
        return units.copy(), np.zeros_like(units)

    monkeypatch.setattr(noise, "run_learner", recording)
    out = noise.primed_returns(cfg, family, ids, full, tmp_path / "student.pt")
    with History(full) as h:
        test = h.learners("test")
        T = h.dataset("actions").shape[1]
        np.testing.assert_array_equal(seen["unit_ids"], test)
        np.testing.assert_array_equal(seen["tasks"], h.task_ids[test])
        for k in ("obs", "actions", "rewards", "terminated", "truncated"):
            np.testing.assert_array_equal(seen["prime"][k], h.dataset(k)[test, T - 15:T])
        want = [test[h.task_ids[test] == t].mean() for t in ids]
    assert out.shape == (1, len(ids), cfg.eval.episodes)
    np.testing.assert_allclose(out[0, :, 0], want)
    assert seen["mode"] == cfg.eval.mode and seen["spec"].kind == "student"


def test_a_gated_verdict_says_when_the_goal_shown_students_clear_the_bar(tmp_path):
    """Synthetic returns: students at a fifth of their data from an empty context (the gate
    fires) but at twice it when shown the goal: the verdict stays inconclusive, and its
    reason says where the shortfall lies; shown the goal at the data's level, it does not."""
    from outlearn.evaluation import metrics as M
    from outlearn.studies.noise import Support, noise_section

    cfg = parse_config(NoiseStudyConfig, TINY)
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    rng = np.random.default_rng(0)
    T, E = len(ids), cfg.eval.episodes
    per_task = 2.0 + 0.1 * rng.standard_normal(T)
    ceiling = M.DataCeiling(curve=np.full(8, 2.0), best_episode=7, units=per_task,
                            best=Estimate(2.0, 1.9, 2.1), tasks=ids, per_task=per_task)
    shape = (2, 1, T, E)  # students, eval seeds, tasks, episodes

    def returns(level):
        return level + 0.05 * rng.standard_normal(shape)

    base = {k: returns(v)[0] for k, v in (("teacher", 2.0), ("random", 0.2),
                                            ("optimum", 4.0))}
    for shown, says in ((4.0, True), (2.0, False)):
        s = noise_section(cfg, family, ids, ceiling, Support(0.5, (), 0.0), returns(0.4),
                          base, tmp_path / f"n{shown}.png", returns(shown))
        assert s.outcome == "inconclusive" and s.verdict.startswith(GATE)
        assert ("Shown the goal" in s.verdict_reason) is says, s.verdict_reason


def test_withheld_stay_leaves_the_optimal_action_out_of_the_data(tmp_path):
    """Claim 4's second question on a tiny room: a noise teacher that never stays. The
    data never takes action 0, the optimal action lies outside its support on the steps
    where the oracle stays (on the goal), and the study adds the data's policy without
    noise: it cannot hold the goal, so it stays below the oracle; the note says so."""
    cfg = parse_config(NoiseStudyConfig, {**TINY, "teacher": {"name": "noise", "kwargs": {
        "eps_end": 0.6, "decay_steps": 20, "withheld_actions": [0]}}})
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    check_cells(section)
    rows = {r["learner"].split(" (")[0]: r for r in section.rows}
    assert "data's policy without noise" in rows
    (full,) = (tmp_path / "stages").glob("collect-*/full.h5")
    ids = held_out_tasks(make_family(cfg.env), cfg.tasks)
    _, support = data_summary(full, ids, 3, 5)
    assert support.never_taken == (0,) and 0 < support.outside_share < 1
    assert "outside the data's support on" in section.notes[0]
    # stepping off the goal and back costs reward on every goal off the walls
    assert (rows["data's policy without noise"]["asymptote"].value
            < rows["optimum"]["asymptote"].value)
