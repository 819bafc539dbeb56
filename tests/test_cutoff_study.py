"""The cut-off study end to end on a TINY run: report, verdicts, resume, refusals."""

from __future__ import annotations

import copy
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import outlearn.studies.cutoff as cutoff
import outlearn.studies.horizon as horizon_module
from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.report.results import read_results
from outlearn.report.section import Outcome, Section
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext
from outlearn.studies.runner import run_study
from outlearn.studies.store import read_result
from outlearn.studies.verdicts import GATE, position

TINY = {
    "env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
    "teacher": {"name": "qlearning", "kwargs": {}},
    "tasks": {"seed": 0, "n_train": 5, "n_test": 3},
    "learners_per_task": 2,
    "teacher_episodes": 8,
    "cuts": [0.5, "uncut", "early"],
    "student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 1, "d_model": 16, "d_ff": 32},
                "context_len": 15, "train_steps": 20, "batch_size": 8, "warmup_steps": 5,
                "checkpoint_every": 5},
    "eval": {"episodes": 24, "seeds": [0]},
    "train_seeds": [0, 1],
    "threads": 1,
    "horizon_extrapolation": {"T": 8, "factor": 3, "n_train": 4, "n_test": 3,
                              "env": {"name": "bernoulli-bandit", "kwargs": {"num_arms": 3}}},
}


def _cfg(**over) -> dict:
    d = copy.deepcopy(TINY)
    d.update(over)
    return d


def _run_dir(out: Path, data: dict) -> Path:
    return out / f"cutoff-{parse_config(cutoff.CutoffConfig, data).content_hash()}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("cutoff")
    report = run_study("cutoff", _cfg(), out, quiet=True)
    return out, report


def _sections(out: Path) -> list[Section]:
    """The sections of the finished tiny run, from its cached stages."""
    cfg = parse_config(cutoff.CutoffConfig, _cfg())
    return cutoff.run(cfg, RunContext(_run_dir(out, _cfg()), quiet=True))


def test_report_has_figures_cis_and_consistent_verdicts(tiny):
    out, report = tiny
    page = report.read_text()
    assert page.count("src='data:image/png;base64,") == 2  # cut-off panels + horizon
    for title in ("Claim 1", "Claim 2", "Claim 3"):
        assert title in page
    sections = _sections(out)
    assert [s.key for s in sections] == ["cutoff", "early", "horizon"]
    config = read_results(_run_dir(out, _cfg()))["config"]  # the run's config, as data
    assert config["study"] == "cutoff" and config["env"] == TINY["env"]
    for s in sections:
        for row in s.rows:
            for col, v in row.items():
                assert not isinstance(v, float | int), f"{s.key}/{col}: a number without CI"
                if isinstance(v, Estimate):
                    assert v.low <= v.value <= v.high
                    cell = f"{v.value:.3g} <span class='ci'>[{v.low:.3g}, {v.high:.3g}]</span>"
                    assert cell in page
    claim1 = sections[0]
    tol = float(re.search(r"Resolution [^:]*: ([\d.]+)", claim1.notes[0]).group(1))
    assert 0 < tol < 1
    students = [r for r in claim1.rows if str(r["learner"]).startswith("student")]
    assert len(students) == 2
    uncut = next(r for r in students if "uncut" in str(r["learner"]))
    # the competence gate: the uncut student must reach its own data ceiling
    learns = uncut["exceedance"].high >= -tol
    assert claim1.verdict.startswith("cut 0.5: ") == learns
    assert claim1.verdict.startswith(GATE) != learns
    assert (claim1.outcome is Outcome.INCONCLUSIVE) >= (not learns)
    for r in students:
        ex, gap, label = r["exceedance"], r["continuation gap"], r["verdict"]
        assert ex.value == pytest.approx(r["asymptote"].value - r["data ceiling"].value)
        if not learns:
            assert label.startswith(GATE)
        elif label == "inconclusive":
            assert position(ex, tol) == "wide" or position(gap, tol) == "wide"
        else:
            assert ("exceeds its data" in label) == (ex.low > 0)
            assert ("plateaus" in label) == (ex.low <= 0 and ex.high <= tol)
            assert ("falls short" in label) == (gap.low > 0)
            assert ("sceptic confirmed" in label) == (ex.low <= 0 and gap.low > 0)
    early = sections[1].rows[0]
    d = early["student - random"]
    # the early-only row carries claim 1's columns too (the ceiling map's early rows)
    assert early["exceedance"].value == pytest.approx(
        early["asymptote"].value - early["data ceiling"].value)
    fresh = next(r for r in claim1.rows if str(r["learner"]).startswith("teacher run fresh"))
    assert early["continuation gap"].value == pytest.approx(
        fresh["asymptote"].value - early["asymptote"].value)
    if learns:
        assert ("no better than random" == early["verdict"]) == (position(d, tol) == "zero")
    else:
        assert sections[1].verdict == claim1.verdict
    horizon = sections[2]
    assert horizon.rows[0]["ratio to ucb1"].low > 0
    assert ("tracks ucb1" in horizon.verdict) == (horizon.rows[0]["ratio to ucb1"].high <= 1.2)



def test_horizon_figure_shows_per_pull_regret_with_the_verdicts_windows(tiny, monkeypatch):
    """Claim 3's verdict is about per-pull regret before T and at the end: its figure has a
    per-pull panel with those two windows shaded, beside the cumulative regret."""
    out, _ = tiny
    calls = []
    real = horizon_module.panels_figure
    monkeypatch.setattr(horizon_module, "panels_figure",
                        lambda path, panels, *a, **k: calls.append(panels) or real(path, panels,
                                                                                   *a, **k))
    _sections(out)
    (panels,) = calls
    assert [p.ylabel for p in panels] == ["cumulative regret", "regret per pull"]
    T, factor = TINY["horizon_extrapolation"]["T"], TINY["horizon_extrapolation"]["factor"]
    assert panels[1].spans == {"before T": (T // 2 + 0.5, T + 0.5),
                               "at the end": (factor * T - T // 2 + 0.5, factor * T + 0.5)}
    for p in panels:
        assert set(p.curves) == {"student", "ucb1"}
        assert all(c.mean.size == factor * T for c in p.curves.values())
    cum, per = panels[0].curves["student"].mean, panels[1].curves["student"].mean
    np.testing.assert_allclose(np.cumsum(per), cum, rtol=1e-9, atol=1e-12)

def test_a_run_killed_in_training_resumes_to_the_same_results(tiny, monkeypatch):
    out, _ = tiny
    run_dir = _run_dir(out, _cfg())
    stages = run_dir / "stages"
    before = {p.parent.name: read_result(p.parent, run_dir)
              for p in stages.glob("evaluate-*/result.json")}
    assert len(before) == len(_cfg()["cuts"]) * len(_cfg()["train_seeds"])  # one per student
    for d in [*stages.glob("train-*"), *stages.glob("evaluate-*")]:
        shutil.rmtree(d)

    train_mod = sys.modules["outlearn.students.train"]  # the module, not the function
    real_step, calls = train_mod._Run.train_step, {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 33:  # the 2nd student of the 1st cut, at its 13th step
            raise KeyboardInterrupt("killed")
        return real_step(self)

    monkeypatch.setattr(train_mod._Run, "train_step", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_study("cutoff", _cfg(), out, quiet=True)
    assert not list(stages.glob("evaluate-*/result.json"))
    assert len(list(stages.glob("train-*/result.json"))) == 1
    monkeypatch.setattr(train_mod._Run, "train_step", real_step)
    run_study("cutoff", _cfg(), out, quiet=True)
    after = {p.parent.name: read_result(p.parent, run_dir)
             for p in stages.glob("evaluate-*/result.json")}
    assert after.keys() == before.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def _seed_collect(out: Path, data: dict) -> Path:
    """Reuse the tiny run's collection (same collect inputs, same stage hash)."""
    src = next((_run_dir(out, _cfg()) / "stages").glob("collect-*"))
    dst = _run_dir(out, data) / "stages" / src.name
    if not dst.exists():
        shutil.copytree(src, dst)
    return _run_dir(out, data) / "stages"


def test_eval_shorter_than_3x_the_cut_is_refused_before_training(tiny):
    out, _ = tiny
    data = _cfg(cuts=[0.5], eval={"episodes": 8, "seeds": [0]}, horizon_extrapolation=None)
    stages = _seed_collect(out, data)
    with pytest.raises(ConfigError, match=r"at least 3 x \d+ = \d+ episodes.*raise eval.episodes"):
        run_study("cutoff", data, out, quiet=True)
    assert not list(stages.glob("train-*"))


def test_a_cut_past_the_history_end_is_refused_before_training(tiny):
    out, _ = tiny
    data = _cfg(cuts=[0.99], horizon_extrapolation=None)
    stages = _seed_collect(out, data)
    with pytest.raises(ConfigError, match="never reached.*Lower the fraction"):
        run_study("cutoff", data, out, quiet=True)
    assert not list(stages.glob("train-*"))


@pytest.mark.badinput
@pytest.mark.parametrize("over, message", [
    ({"train_seeds": [3]}, "train_seeds=.*at least 2 distinct seeds"),
    ({"eval": {"episodes": 5}}, "shorter than the teacher's horizon.*raise eval.episodes"),
    ({"cuts": [1.5]}, "cut 1.5 must be a fraction of optimal"),
    ({"teacher": {"name": "qlearnin"}}, "unknown teacher 'qlearnin'; known teachers:"),
    ({"env": {"name": "dark"}}, "unknown env 'dark'; known envs:"),
    ({"teacher": {"name": "qlearning", "kwargs": {"lr": 1}}}, "unknown key 'lr'"),
    ({"horizon_extrapolation": {"env": {"name": "darkroom"}}}, "is not a bandit"),
    ({"student": {"kind": "transformer"}}, "unknown student 'transformer'"),
    ({"cutz": [0.4]}, "unknown key 'cutz'"),
    ({"train_seeds": [0, -1]}, "train_seeds"),
    ({"eval": {"episodes": 24, "seeds": [2**63]}}, "seeds"),
    ({"seed": -3}, "seed"),
    ({"eval": {"episodes": 10**9, "seeds": [0]}}, "eval.episodes"),
])
def test_impossible_configs_are_refused_before_any_work(tmp_path, over, message):
    with pytest.raises(ConfigError, match=message):
        run_study("cutoff", _cfg(**over), tmp_path, quiet=True)
    assert not list(tmp_path.glob("*/stages"))


def synthetic_run(data: dict) -> tuple:
    """The parts of a pretend run of config ``data``: (cfg, family, held-out ids, cuts, a
    curve maker). Cut 0.5's data ceiling is 2.0 and the whole history's 4.6 (two teacher
    learners per held-out task); ``curves(level, units)`` rises to ``level`` over 24
    episodes, with noise drawn from one generator in the order the caller asks."""
    from outlearn.evaluation.metrics import data_ceiling

    cfg = parse_config(cutoff.CutoffConfig, data)
    family = cutoff.make_family(cfg.env)
    ids = cutoff.held_out_tasks(family, cfg.tasks)
    rng = np.random.default_rng(0)
    e = np.arange(24.0)

    def curves(level: float, units: int) -> np.ndarray:
        c = np.minimum(level, 0.5 + e / 3)[None, None, :]
        return c + 0.1 * rng.standard_normal((units, ids.size, 24))

    n, tid = 2 * ids.size, np.repeat(ids, 2)
    teacher_cut = 2.0 + 0.1 * rng.standard_normal((n, 6))
    teacher_all = np.minimum(4.6, 0.5 + np.arange(12.0) / 2) + 0.1 * rng.standard_normal((n, 12))
    cuts = {"0.5": cutoff.CutInfo("0.5", Path("cut.h5"), 30, 6, 15,
                                  data_ceiling(teacher_cut, 1, tid, ids)),
            "uncut": cutoff.CutInfo("uncut", Path("full.h5"), 60, 12, 15,
                                    data_ceiling(teacher_all, 1, tid, ids))}
    return cfg, family, ids, cuts, curves


def _synthetic_results(cut_level: float, uncut_level: float = 4.5) -> cutoff.Results:
    """Results of a pretend run: the uncut student learns to ``uncut_level`` (its data
    ceiling is 4.6); the 0.5-cut student levels off at ``cut_level``; its data ceiling is
    2.0; the teacher reaches 4.6."""
    cfg, family, ids, cuts, curves = synthetic_run(_cfg())
    students = {"0.5": curves(cut_level, 4), "uncut": curves(uncut_level, 4)}
    base = {"teacher": curves(4.6, 2), "random": curves(0.6, 2), "optimum": curves(4.7, 2)}
    return cutoff.Results(cfg, family, ids, cuts, students, base)


@pytest.mark.parametrize("level, verdict", [
    (4.6, "cut 0.5: exceeds its data; reaches the teacher's continuation (sceptic refuted)"),
    (2.0, "cut 0.5: plateaus at its data; falls short of the teacher's continuation "
          "(sceptic confirmed)"),
])
def test_the_claim1_verdict_follows_synthetic_curves_either_way(tmp_path, level, verdict):
    res = _synthetic_results(level)
    section = cutoff.claim1_section(res, res.figure(tmp_path / "fig.png"))
    assert section.verdict == verdict
    assert (tmp_path / "fig.png").stat().st_size > 10_000


@pytest.mark.parametrize("greedy_level, says", [
    (2.8, "above the teacher's greedy policy at the cut"),
    (4.6, "not above the teacher's greedy policy at the cut"),
])
def test_a_student_above_its_data_is_read_against_the_greedy_teacher(tmp_path, greedy_level,
                                                                       says):
    """A cut student above its data ceiling (4.6 against 2.0): its row says whether it is
    also above the teacher at the cut acting greedily, by the column 'student - greedy
    teacher' (its asymptote minus the frozen teacher's mean over all its episodes, task for
    task); the claim's outcome stays the exceedance's."""
    res = _synthetic_results(4.6)
    rng = np.random.default_rng(2)
    tasks = res.students["0.5"].shape[-2]
    res.greedy = {"0.5": {"returns": greedy_level
                          + 0.05 * rng.standard_normal((2, tasks, 5))}}
    section = cutoff.claim1_section(res, tmp_path / "fig.png")
    row = next(r for r in section.rows if str(r["learner"]).startswith("student, cut at 0.5"))
    diff = row["student - greedy teacher"]
    assert "student - greedy teacher" in section.columns
    assert diff.value == pytest.approx(row["asymptote"].value - greedy_level, abs=0.1)
    assert says in row["verdict"] and row["verdict"].startswith("exceeds its data")
    assert section.outcome is cutoff.claim1_section(
        _synthetic_results(4.6), tmp_path / "fig.png").outcome
    uncut = next(r for r in section.rows if str(r["learner"]).startswith("student, uncut"))
    assert uncut["student - greedy teacher"] is None and "greedy" not in uncut["verdict"]


def test_without_a_greedy_teacher_the_column_is_left_out(tmp_path):
    section = cutoff.claim1_section(_synthetic_results(2.0), tmp_path / "fig.png")
    assert "student - greedy teacher" not in section.columns
    assert all("student - greedy teacher" not in r for r in section.rows)


def test_an_uncut_student_below_its_data_makes_every_cut_verdict_inconclusive(tmp_path):
    """The competence gate: the cut student plateaus at its data, but the uncut one does not
    reach its own (1.5 against 4.6), so the plateau says nothing about the cut."""
    res = _synthetic_results(2.0, uncut_level=1.5)
    section = cutoff.claim1_section(res, res.figure(tmp_path / "fig.png"))
    assert section.verdict.startswith(GATE) and section.outcome is Outcome.INCONCLUSIVE
    assert re.search(r"\(reaches 1\.5\d of 4\.6\d\)", section.verdict)
    assert all(r["verdict"].startswith(GATE) for r in section.rows if "verdict" in r)


@pytest.mark.parametrize("env, teacher, episodes", [
    # PPO's study run is the slowest (its teacher is tested in the default suite)
    pytest.param({"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
                 {"name": "ppo", "kwargs": {"n_steps": 10, "num_minibatches": 2}}, 8,
                 marks=pytest.mark.slow),
    ({"name": "keydoor", "kwargs": {"size": 3, "episode_len": 6}},
     {"name": "qlearning", "kwargs": {}}, 8),
    ({"name": "bernoulli-bandit", "kwargs": {"num_arms": 3}}, {"name": "thompson"}, 30),
], ids=["ppo-darkroom", "qlearning-keydoor", "thompson-bandit"])
def test_the_study_runs_with_every_named_teacher(tmp_path, env, teacher, episodes):
    """The issue's teachers (PPO on Dark Room, Q-learning on Key-to-Door, Thompson on a
    bandit) go through the same study: collect, cut, train, evaluate, report."""
    data = _cfg(env=env, teacher=teacher, teacher_episodes=episodes, cuts=["uncut"],
                train_seeds=[0, 1], eval={"episodes": 3 * episodes, "seeds": [0]},
                horizon_extrapolation=None)
    report = run_study("cutoff", data, tmp_path, quiet=True)
    page = report.read_text()
    assert "Claim 1" in page and "Verdict" in page
    assert page.count("src='data:image/png;base64,") == 1


@pytest.mark.slow  # 36 s; the local-processes backend's test below runs by default
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # Ray starts its processes
def test_parallel_workers_give_the_same_results_as_one(tiny, tmp_path):
    """`outlearn run --workers 2` runs the students and their evaluations as Ray tasks of a
    local Ray; every number in the summary is the same as the serial run's."""
    out, _ = tiny
    serial = (_run_dir(out, _cfg()) / "summary.txt").read_text()
    report = run_study("cutoff", _cfg(), tmp_path, quiet=True, workers=2)
    assert (report.parent / "summary.txt").read_text() == serial
    assert "&quot;workers&quot;: 2" in report.read_text()
    with pytest.raises(ConfigError, match="--workers 0"):
        run_study("cutoff", _cfg(), tmp_path, quiet=True, workers=0)


def test_local_processes_give_the_same_results_as_one(tiny, tmp_path):
    """`outlearn run --workers 2 --backend processes` (no Ray: spawned local processes) gives
    every number of the serial run; a Ray address with it, or an unknown backend, is refused."""
    out, _ = tiny
    serial = (_run_dir(out, _cfg()) / "summary.txt").read_text()
    report = run_study("cutoff", _cfg(), tmp_path, quiet=True, workers=2, backend="processes")
    assert (report.parent / "summary.txt").read_text() == serial
    assert "&quot;backend&quot;: &quot;processes&quot;" in report.read_text()
    with pytest.raises(ConfigError, match="leave it out with --backend processes"):
        run_study("cutoff", _cfg(), tmp_path / "b", quiet=True, workers=2, address="auto",
                  backend="processes")
    with pytest.raises(ConfigError, match="--backend 'dask': use one of ray, processes"):
        run_study("cutoff", _cfg(), tmp_path / "c", quiet=True, workers=2, backend="dask")
