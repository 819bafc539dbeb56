"""The gap-g study (claim 6): its speed metrics, its verdict, its config, a tiny run."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from studies_tiny import check_cells, tiny

from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.evaluation.metrics import episodes_to_threshold_ci, speedup_ci
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext
from outlearn.studies.gap import GapConfig, run
from outlearn.studies.verdicts import Outcome, Verdict, gap_verdict

TINY = tiny(gaps=[1, 2])
GREEDY_ROW = "teacher at the end of its history, greedy (replayed, frozen)"


def _cfg(**over) -> dict:
    d = copy.deepcopy(TINY)
    d.update(over)
    return d


def test_episodes_to_threshold_ci_and_speedup_by_hand():
    # mean curve 0.25, 0.5, 0.75, 1 reaches 0.5 at episode 2
    c = np.array([[[0, 0, 1, 1], [0, 1, 1, 1]], [[0, 0, 0, 1], [1, 1, 1, 1]]], float)
    e = episodes_to_threshold_ci(c, 0.5)
    assert e.value == 2 and e.low <= 2 <= e.high
    assert math.isinf(episodes_to_threshold_ci(np.zeros((1, 3, 4)), 0.5).value)
    slow = np.tile([0, 0, 0, 1, 1, 1, 1, 1.0], (1, 6, 1))  # episode 4
    fast = np.tile([0, 1, 1, 1, 1, 1, 1, 1.0], (1, 6, 1))  # episode 2
    assert speedup_ci(slow, fast, 0.5).value == 2 and speedup_ci(fast, slow, 0.5).value == 0.5
    assert speedup_ci(slow, np.zeros((1, 6, 8)), 0.5).value == 0  # never: infinitely slow
    assert np.isnan(speedup_ci(np.zeros((1, 6, 8)), np.zeros((1, 6, 8)), 0.5).value)


def test_gap_verdict():
    plateau, exceeds = Verdict("plateaus at its data", "", Outcome.NO), Verdict(
        "exceeds its data", "", Outcome.YES)
    wide = Verdict("inconclusive (exceedance)", "", Outcome.INCONCLUSIVE)
    one, fast = Estimate(1.0, 1.0, 1.0), Estimate(5, 3, 8)
    assert gap_verdict({1: one, 8: fast}, {1: plateau, 8: plateau}).label == "confirmed"
    assert gap_verdict({1: one, 8: fast}, {1: plateau, 8: exceeds}).label.startswith("refuted")
    assert gap_verdict({1: one, 8: Estimate(0.9, 0.5, 1.0)}, {1: plateau, 8: plateau}
                       ).label.startswith("refuted")
    # "roughly g times as fast" (claim 6) is g inside the CI, as claim 5's k
    slow = gap_verdict({1: one, 8: Estimate(2, 1.2, 3)}, {1: plateau, 8: plateau})
    assert slow.outcome is Outcome.REFUTED and "8" in slow.label
    fast_2 = gap_verdict({1: one, 2: Estimate(6, 4, 9)}, {1: plateau, 2: plateau})
    assert fast_2.outcome is Outcome.REFUTED
    # ... unless gap 1 reaches the level in fewer than g episodes: g-fold is unattainable
    short = gap_verdict({1: one, 8: Estimate(2, 1.2, 3)}, {1: plateau, 8: plateau}, 6)
    assert short.inconclusive and "too few for 8-fold" in short.label
    # a CI that reaches infinity says nothing about g (some resamples never reach the level)
    open_ci = gap_verdict({1: one, 2: Estimate(2.1, 0.97, math.inf),
                           8: Estimate(6.4, 2.5, math.inf)},
                          {1: plateau, 2: plateau, 8: plateau}, 100)
    assert open_ci.inconclusive
    assert gap_verdict({1: one, 2: Estimate(2.1, 1.5, 3), 8: Estimate(7, 4, 11)},
                       {1: plateau, 2: plateau, 8: plateau}, 100).label == "confirmed"
    assert gap_verdict({1: one, 8: Estimate(2, 0.8, 9)}, {1: plateau, 8: plateau}).inconclusive
    assert gap_verdict({1: one, 8: Estimate(5, 3, 8)}, {1: plateau, 8: wide}).inconclusive


@pytest.mark.parametrize("over, match", [
    ({"gaps": [2, 4]}, "including 1"),
    ({"gaps": [1, 1]}, "distinct"),
    ({"gaps": [1, 8]}, "teacher_episodes"),
    ({"student": {**TINY["student"], "labels": "actions"}}, "gap-g labels"),
])
def test_config_refuses_impossible_settings(over, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(GapConfig, _cfg(**over))


def test_tiny_run_trains_gap_students_and_reports_with_cis(tmp_path):
    cfg = parse_config(GapConfig, _cfg())
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    learners = [r["learner"] for r in section.rows]
    assert learners[:2] == ["student, gap 1", "student, gap 2"]
    assert learners[2].startswith("best in data") and learners[3:] == [
        GREEDY_ROW, "teacher run fresh", "random"]
    check_cells(section)
    # the greedy teacher: the one the history leaves, on the same held-out tasks; each
    # student's difference from it task for task
    from outlearn.envs import make_family
    from outlearn.evaluation import metrics as M
    from outlearn.studies.common import held_out_tasks
    from outlearn.studies.greedy_teacher import greedy_teacher_of_history

    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    (h5,) = (tmp_path / "stages").glob("collect-*/full.h5")
    last_n = M.last_episodes(cfg.eval.episodes, cfg.eval.last_n)
    ret = greedy_teacher_of_history(cfg.teacher, family, h5, ids, last_n, cfg.seed)["returns"]
    assert ret.shape == (cfg.learners_per_task, ids.size, last_n)
    assert section.rows[3]["asymptote"].value == pytest.approx(ret.mean())
    assert "student - greedy teacher" in section.columns
    for row in section.rows[:2]:
        diff = row["student - greedy teacher"]
        assert diff.value == pytest.approx(row["asymptote"].value - ret.mean(), abs=1e-9)
    own = section.rows[0]["speed-up vs gap 1"].value  # gap 1 against itself
    assert own == 1.0 or np.isnan(own)
    # the students really trained on gap labels, with their own g
    from outlearn.students import load_student

    data = [load_student(p)[1].data for p in (tmp_path / "stages").glob("train-*/student")]
    assert sorted(d.gap_episodes for d in data) == [1, 1, 2, 2]
    assert {d.labels for d in data} == {"gap"}


def test_judged_on_the_training_tasks(tmp_path):
    """judge_on = "train": students, the fresh teacher and the best in data all on the
    training tasks (the teacher's own histories there), not the held-out ones."""
    from outlearn.envs import make_family
    from outlearn.evaluation import metrics as M
    from outlearn.histories import History
    from outlearn.studies.common import training_tasks

    tasks = {**TINY["tasks"], "n_test": 0}  # none held out: the run needs none
    cfg = parse_config(GapConfig, _cfg(judge_on="train", tasks=tasks))
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    check_cells(section)
    ids = training_tasks(make_family(cfg.env), cfg.tasks)
    (h5,) = (tmp_path / "stages").glob("collect-*/full.h5")
    with History(h5) as h:
        want = M.data_ceiling_from_history(h, ids, "train", window=cfg.smoothing)
    best = section.rows[2]
    assert best["learner"].startswith("best in data")
    assert best["asymptote"].value == pytest.approx(want.best.value)
    # the greedy teacher too: the training tasks' learners, rebuilt from their histories
    from outlearn.studies.greedy_teacher import greedy_teacher_of_history

    last_n = M.last_episodes(cfg.eval.episodes, cfg.eval.last_n)
    ret = greedy_teacher_of_history(cfg.teacher, make_family(cfg.env), h5, ids, last_n,
                                    cfg.seed, "train")["returns"]
    assert ret.shape == (cfg.learners_per_task, cfg.tasks.n_train, last_n)
    assert section.rows[3]["learner"] == GREEDY_ROW
    assert section.rows[3]["asymptote"].value == pytest.approx(ret.mean())
    assert want.per_task is not None and want.per_task.size == cfg.tasks.n_train
    assert "training tasks" in section.notes[0]
    from outlearn.studies.store import read_result

    runs = [read_result(d, tmp_path) for d in (tmp_path / "stages").glob("evaluate-*")]
    assert runs and all(r.shape[2] == cfg.tasks.n_train for r in runs)  # (S, seeds, tasks, E)
    with pytest.raises(ConfigError, match="judge_on"):
        parse_config(GapConfig, _cfg(judge_on="test"))
    with pytest.raises(ConfigError, match="n_test must both be >= 1"):
        parse_config(GapConfig, _cfg(tasks=tasks))  # judged on held-out tasks: none


def _section(tmp_path, students: dict[int, float | np.ndarray], greedy: dict | None):
    """gap_section on made-up curves: each g's students level at ``students[g]`` (one value,
    or one per task; a little noise), the data's best 2 on every task, the greedy teacher's
    returns ``greedy``."""
    from outlearn.envs import make_family
    from outlearn.evaluation.metrics import DataCeiling
    from outlearn.studies.common import held_out_tasks
    from outlearn.studies.gap import gap_section

    cfg = parse_config(GapConfig, _cfg(eval={"episodes": 12, "seeds": [0]}))
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    rng = np.random.default_rng(0)
    shape = (4, 1, ids.size, 12)
    ramp = np.minimum(np.arange(12) / 4, 1.0)
    curves = {g: np.broadcast_to(v, ids.shape)[None, None, :, None] * ramp
              + 0.01 * rng.standard_normal(shape) for g, v in students.items()}
    ceiling = DataCeiling(curve=np.full(8, 2.0), best_episode=7, units=np.full(6, 2.0),
                          best=Estimate(2.0, 1.99, 2.01), tasks=ids,
                          per_task=np.full(ids.size, 2.0))
    base = {"teacher": np.full((1, ids.size, 12), 2.0), "random": np.zeros((1, ids.size, 12))}
    return gap_section(cfg, family, ids, ceiling, curves, base, tmp_path / "gap.png", greedy)


def test_a_student_above_its_data_is_set_against_the_greedy_teacher(tmp_path):
    """Gap 2 ends at 3 against a best in data of 2: it exceeds its data. Whether it also
    beats the teacher as its history leaves it, acting greedily, is its ceiling cell's
    second reading: not above a greedy teacher at 3.5 (it may only drop the exploration),
    above one at 2.5. Without the reference the column is left out; a teacher that could not
    be rebuilt is named in the notes."""
    n = 3  # held-out tasks of the tiny config
    at = {"returns": np.full((2, n, 3), 3.5)}
    sec = _section(tmp_path, {1: 2.0, 2: 3.0}, at)
    g2 = sec.rows[1]
    assert g2["exceedance"].low > 0
    assert g2["student - greedy teacher"].value == pytest.approx(-0.5, abs=0.02)
    assert g2["ceiling"].startswith("exceeds its data; not above the teacher's greedy policy "
                                    "at the end of its history")
    assert "plateaus at its data" == sec.rows[0]["ceiling"]  # gap 1: no second reading
    assert sec.rows[3]["learner"] == GREEDY_ROW
    assert sec.rows[3]["exceedance"].value == pytest.approx(1.5)
    above = _section(tmp_path, {1: 2.0, 2: 3.0}, {"returns": np.full((2, n, 3), 2.5)})
    assert above.rows[1]["ceiling"].startswith(
        "exceeds its data; above the teacher's greedy policy at the end of its history (0.4")
    assert above.outcome is Outcome.REFUTED  # the claim is about the data: refuted either way
    none = _section(tmp_path, {1: 2.0, 2: 3.0}, None)
    assert "student - greedy teacher" not in none.columns
    assert GREEDY_ROW not in [r["learner"] for r in none.rows]
    why = _section(tmp_path, {1: 2.0, 2: 3.0}, {"returns": None, "why": "no policy recorded"})
    assert "student - greedy teacher" not in why.columns
    assert "not measured: no policy recorded" in why.notes[-1]
    # a gap-1 student below its data fails the competence gate: no second reading then
    gated = _section(tmp_path, {1: 0.5, 2: 3.0}, at)
    assert gated.outcome is Outcome.INCONCLUSIVE and gated.rows[1]["ceiling"] == (
        "exceeds its data")


def test_the_greedy_teacher_is_compared_task_for_task(tmp_path):
    """Greedy teachers at 2.5, 3 and 4 on the three tasks, gap-2 students 0.3 above each:
    'student - greedy teacher' is 0.3 with a CI of the noise's width. Set against the
    greedy teacher's tasks in another order, or against its mean, the difference would
    vary by task and the interval would be wide."""
    per_task = np.array([2.5, 3.0, 4.0])
    greedy = {"returns": np.broadcast_to(per_task[None, :, None], (2, 3, 3)).copy()}
    sec = _section(tmp_path, {1: 2.0, 2: per_task + 0.3}, greedy)
    diff = sec.rows[1]["student - greedy teacher"]
    assert diff.value == pytest.approx(0.3, abs=0.02)
    assert diff.high - diff.low < 0.1
    shuffled = {"returns": greedy["returns"][:, ::-1].copy()}
    wide = _section(tmp_path, {1: 2.0, 2: per_task + 0.3}, shuffled).rows[1][
        "student - greedy teacher"]
    assert wide.high - wide.low > 1.0


GAP_TOML = """study = "gap"
gaps = [1, 2]
learners_per_task = 2
teacher_episodes = 8
train_seeds = [0, 1]
[env]
name = "darkroom"
kwargs = { size = 3, episode_len = 5 }
[teacher]
name = "qlearning"
[tasks]
seed = 0
n_train = 5
n_test = 3
[student]
kind = "ad"
context_len = 15
[eval]
episodes = 10
seeds = [0]
"""


def test_the_greedy_teacher_is_read_without_training_a_student(tmp_path, capsys):
    """benchmarks/greedy_end.py: the gap study's greedy-teacher row from the collection
    alone (the study's own collect stage, in the run directory a later run reuses)."""
    import importlib.util
    from pathlib import Path

    from outlearn.envs import make_family
    from outlearn.evaluation import metrics as M
    from outlearn.studies.common import held_out_tasks
    from outlearn.studies.greedy_teacher import greedy_teacher_of_history

    path = Path(__file__).parents[1] / "benchmarks" / "greedy_end.py"
    spec = importlib.util.spec_from_file_location("greedy_end", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "g.toml").write_text(GAP_TOML)
    mod.main(tmp_path / "g.toml", tmp_path / "runs")
    out = capsys.readouterr().out
    (h5,) = (tmp_path / "runs").glob("gap-*/stages/collect-*/full.h5")
    from outlearn.studies.runner import read_study_toml

    cfg = parse_config(GapConfig, read_study_toml(tmp_path / "g.toml")[1])
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    n = M.last_episodes(cfg.eval.episodes, cfg.eval.last_n)
    ret = greedy_teacher_of_history(cfg.teacher, family, h5, ids, n, cfg.seed)["returns"]
    line = next(ln for ln in out.splitlines() if ln.startswith("teacher at the end"))
    assert line.split(": ")[1].startswith(f"{ret.mean():.3g} [")
    (tmp_path / "c.toml").write_text('study = "cutoff"\n')
    with pytest.raises(SystemExit, match="a 'cutoff' study; this reads a gap study"):
        mod.main(tmp_path / "c.toml", tmp_path / "runs")
