"""The cut-off study with several students (``[[students]]``): AD and the RL student on the
same cuts, seeds and held-out tasks, side by side, with a verdict on the difference of their
exceedances; and a config of one ``[student]`` unchanged."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from studies_tiny import TINY, check_cells, tiny
from test_cutoff_study import synthetic_run

import outlearn.studies.base as base
import outlearn.studies.cutoff as cutoff
import outlearn.studies.cutoff_students as cutoff_students
from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.evaluation import metrics as M
from outlearn.report.results import markdown, read_results
from outlearn.report.section import Outcome, Section
from outlearn.stats import Estimate, crossed_mean_ci
from outlearn.studies.base import RunContext
from outlearn.studies.runner import load_components, read_study_toml, run_study
from outlearn.studies.store import read_result
from outlearn.studies.verdicts import (
    GATE,
    GREEDY_TEACHER_BAR,
    competence_gate,
    exceeds_where_baseline_does_not_verdict,
)

CUTS = [0.5, "uncut", "early"]
#: one student, as every cut-off config before [[students]]
SINGLE = tiny(cuts=CUTS, eval={"episodes": 24, "seeds": [0]})
#: the same student, and the RL student with the same settings, on the same cuts and seeds
TWO = {k: v for k, v in SINGLE.items() if k != "student"}
TWO["students"] = [{"name": "ad", **copy.deepcopy(TINY["student"])},
                   {"name": "adq", **copy.deepcopy(TINY["student"]), "kind": "adq"}]


def _run_dir(out: Path, data: dict) -> Path:
    return out / f"cutoff-{parse_config(cutoff.CutoffConfig, data).content_hash()}"


def _sections(out: Path, data: dict) -> list[Section]:
    """The sections of a finished run, from its cached stages."""
    cfg = parse_config(cutoff.CutoffConfig, data)
    return cutoff.run(cfg, RunContext(_run_dir(out, data), quiet=True))


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """The one-student run, with every stage's code version held fixed (so its stage
    directories are named by their inputs alone)."""
    out = tmp_path_factory.mktemp("single")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(base, "code_version", lambda modules: "fixed")
        run_study("cutoff", SINGLE, out, quiet=True)
    return out


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two")
    run_study("cutoff", TWO, out, quiet=True)
    return out


# ------------------------------------------------------------------ one student: unchanged
#: recorded at commit abad1a2 (main before [[students]]: one evaluation stage per student)
#: with the same config and code versions held fixed: the run directory and every stage
#: directory of a config of one student
SINGLE_RUN = "cutoff-ae79955cca81"
SINGLE_STAGES = [
    "baselines-b130c139af8f2571", "collect-59b7b247483516b1", "cut-724e7252e1b861bb",
    "cut-890a73fb704f9fb8", "cut-a1ccc70253f17b0c", "evaluate-518c1081d51f2fe9",
    "evaluate-8543d89bcd2808bb", "evaluate-93426b0e34d0c053", "evaluate-9519a9dfd0fd6616",
    "evaluate-ae174a8874b96937", "evaluate-d311c8338c76f0ed", "train-3c4afc7446d0b41e",
    "train-5620ed080f8877b7", "train-afe04a0f7e2206e1", "train-b183a726358a53d2",
    "train-cc0b4e6b95aa3cd7", "train-df31f08fdd20d07a"]
#: the run directories of the shipped configs of one student, at the same commit
#: (cutoff-bandit.toml's since its train_seeds went from 3 to 5: it was 146fbffe24ed)
SHIPPED = {"demo.toml": "c5699f1fc5e0", "cutoff-full.toml": "0c81c1e27138",
           "cutoff-bandit.toml": "57ca536bb3ac"}


def test_a_config_of_one_student_keeps_its_run_directory_and_stage_keys(single):
    run_dir = single / SINGLE_RUN
    assert run_dir.is_dir()
    names = sorted(p.name for p in (run_dir / "stages").iterdir())
    # the stages it had, and one greedy-teacher reference per cut (not early) added since
    assert [n for n in names if not n.startswith("teacher-greedy-")] == SINGLE_STAGES
    assert sum(n.startswith("teacher-greedy-") for n in names) == len(CUTS) - 1
    load_components()
    root = Path(__file__).resolve().parents[1] / "configs"
    for name, digest in SHIPPED.items():
        study, data = read_study_toml(root / name)
        assert parse_config(cutoff.CutoffConfig, data).content_hash() == digest, name


# ------------------------------------------------------------------ two students, end to end
def test_each_student_has_its_own_train_and_evaluate_stages_on_shared_cuts(two):
    from outlearn.students import load_student

    stages = _run_dir(two, TWO) / "stages"
    n_seeds = len(TWO["train_seeds"])
    # the cuts, the teacher's histories and the references are shared
    for name, n in {"collect": 1, "cut": len(CUTS), "baselines": 1}.items():
        assert len(list(stages.glob(f"{name}-*"))) == n, name
    trains = sorted(stages.glob("train-*"))
    assert len(trains) == 2 * len(CUTS) * n_seeds  # one per (student, cut, seed)
    kinds, per_history = [], {}
    for d in trains:
        model, tc = load_student(d / "student")
        kinds.append(tc.student.kind)
        per_history.setdefault((str(tc.history), tc.seed), []).append(tc.student.kind)
    assert sorted(kinds) == ["ad"] * (len(CUTS) * n_seeds) + ["adq"] * (len(CUTS) * n_seeds)
    # every (cut, seed) trained both students: the same data and seed for each pair
    assert len(per_history) == len(CUTS) * n_seeds
    assert all(sorted(v) == ["ad", "adq"] for v in per_history.values())
    evals = sorted(stages.glob("evaluate-*"))
    assert len(evals) == 2 * len(CUTS) * n_seeds  # one per student
    for d in evals:
        curves = read_result(d, _run_dir(two, TWO))
        assert curves.shape == (1, 1, TWO["tasks"]["n_test"], 24)


def test_the_students_are_side_by_side_one_row_per_cut(two, single, monkeypatch):
    sections = _sections(two, TWO)
    assert [s.key for s in sections] == ["students", "cutoff-ad", "cutoff-adq", "early-ad",
                                         "early-adq"]
    side = sections[0]
    for s in sections:
        check_cells(s)
    assert side.columns == [
        "cut", "data ceiling", "greedy teacher", "ad: asymptote", "ad: exceedance",
        "ad: continuation gap", "ad: - greedy teacher", "adq: asymptote", "adq: exceedance",
        "adq: continuation gap", "adq: - greedy teacher", "exceedance adq - ad", "verdict",
        "verdict against the greedy teacher"]
    assert [r["cut"].split(" (")[0] for r in side.rows] == ["cut at 0.5 of optimal", "uncut",
                                                            "early only"]
    # each student's columns are its own claim 1 numbers (the same functions, same values)
    for who in ("ad", "adq"):
        own = next(s for s in sections if s.key == f"cutoff-{who}")
        assert own.title.endswith(f"({who})")
        for cut_row, own_row in zip(side.rows[:2], own.rows[:2], strict=True):
            assert own_row["exceedance"] == cut_row[f"{who}: exceedance"]
            assert own_row["continuation gap"] == cut_row[f"{who}: continuation gap"]
            assert own_row["asymptote"] == cut_row[f"{who}: asymptote"]
            assert own_row["data ceiling"] == cut_row["data ceiling"]
            assert own_row["student - greedy teacher"] == cut_row[f"{who}: - greedy teacher"]
            greedy = next(r for r in own.rows if r["learner"].startswith(
                f"teacher, {cut_row['cut'].split(' (')[0]}"))
            assert greedy["asymptote"] == cut_row["greedy teacher"]
    for r in side.rows:
        d = r["exceedance adq - ad"]
        assert d.value == pytest.approx(r["adq: exceedance"].value - r["ad: exceedance"].value)
        assert d.low < d.value < d.high
    # the stricter verdict (its rule: the synthetic test below) wherever the run measured
    # the greedy teacher: every cut but early-only
    for r in side.rows:
        assert (r.get(cutoff_students.GREEDY_VERDICT) is None) == (r["greedy teacher"] is None)
    assert side.rows[-1]["greedy teacher"] is None  # early only
    # AD's sections are those of a study of AD alone: bit for bit the same numbers
    monkeypatch.setattr(base, "code_version", lambda modules: "fixed")  # as it ran
    alone = _sections(single, SINGLE)
    assert [s.key for s in alone] == ["cutoff", "early"]
    for mine, its in zip(sections[1::2][:2], alone, strict=True):
        assert mine.rows == its.rows and mine.verdict == its.verdict
    # the verdict of the section is the headline cut's row
    head = side.rows[0]
    assert side.verdict == f"cut 0.5: {head['verdict']}"


def test_the_report_and_results_json_carry_every_estimate(two):
    run_dir = _run_dir(two, TWO)
    page = (run_dir / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") == 3  # side by side + one per student
    for col in ("ad: exceedance", "adq: exceedance", "exceedance adq - ad"):
        assert f"<th>{col}</th>" in page
    doc = read_results(run_dir)
    sections = _sections(two, TWO)
    assert [s["key"] for s in doc["sections"]] == [s.key for s in sections]
    for js, s in zip(doc["sections"], sections, strict=True):
        assert js["columns"] == s.columns
        assert js["verdict"] == {"label": s.verdict, "reason": s.verdict_reason,
                                 "outcome": s.outcome.value}
        assert len(js["rows"]) == len(s.rows)
        for jr, r in zip(js["rows"], s.rows, strict=True):
            for col, v in r.items():
                if isinstance(v, Estimate):
                    assert jr[col] == {"value": v.value, "low": v.low, "high": v.high,
                                       "confidence": v.confidence}, col
                else:
                    assert jr[col] == v, col
    table = markdown(doc)
    assert "| cut | data ceiling | greedy teacher | ad: asymptote |" in table
    d = sections[0].rows[0]["exceedance adq - ad"]
    assert f"{d.value:.3g} [{d.low:.3g}, {d.high:.3g}]" in table


def test_a_student_can_act_its_own_way_and_shares_its_training(two, monkeypatch):
    """eval_mode on one of [[students]]: AD greedy beside adq sampling. Its training stages
    are the run without it (only its evaluations run, as the argmax of its policy); unset,
    the key is not written, so configs without it keep their hashes."""
    from outlearn.studies.common import eval_students, held_out_tasks

    greedy_ad = copy.deepcopy(TWO)
    greedy_ad["students"][0]["eval_mode"] = "greedy"
    cfg = parse_config(cutoff.CutoffConfig, greedy_ad)
    assert "eval_mode" not in parse_config(cutoff.CutoffConfig, TWO).model_dump()["students"][0]
    assert cfg.content_hash() != parse_config(cutoff.CutoffConfig, TWO).content_hash()
    ran = []
    real = base.run_stage
    monkeypatch.setattr(base, "run_stage", lambda d, *a, **k: ran.append(d) or real(d, *a, **k))
    out = two / "greedy-ad"
    out.mkdir()
    run_study("cutoff", greedy_ad, out, quiet=True, reuse=[_run_dir(two, TWO)])
    assert [d.name.split("-")[0] for d in ran] == ["evaluate"] * (
        len(CUTS) * len(TWO["train_seeds"]))  # AD's evaluations, nothing else
    mine = _run_dir(out, greedy_ad) / "stages"
    theirs = _run_dir(two, TWO) / "stages"
    assert {p.name for p in mine.glob("train-*")} == {p.name for p in theirs.glob("train-*")}
    from outlearn.students import load_student

    ad_dir = next(t for t in sorted(mine.glob("train-*"))
                  if load_student(t / "student")[1].student.kind == "ad")
    ckpt = read_result(ad_dir, mine.parent)  # its final checkpoint
    fam = cutoff.make_family(cfg.env)
    ids = held_out_tasks(fam, cfg.tasks)
    greedy = [read_result(e, mine.parent) for e in ran]
    as_ = {m: cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"mode": m})})
           for m in ("sample", "greedy")}
    assert any(np.array_equal(eval_students(as_["greedy"], fam, ids, [ckpt]), g)
               for g in greedy)
    assert not any(np.array_equal(eval_students(as_["sample"], fam, ids, [ckpt]), g)
                   for g in greedy)
    side = _sections(out, greedy_ad)[0]
    assert "ad: ad (small), context 15 steps, 20 training steps, acting by greedy" in side.setting
    assert "adq: adq (small), context 15 steps, 20 training steps, acting by sample" in (
        side.setting)


# ------------------------------------------------------------------ the paired difference
def test_the_difference_is_paired_by_seed_and_task():
    """Both students ran on the same tasks: a task effect shared by both cancels in the
    paired difference, which the difference of two separate intervals would count twice."""
    rng = np.random.default_rng(0)
    S, T, E = 5, 8, 10
    task = rng.normal(0, 3.0, T)[None, None, :, None]  # some goals are hard for everyone
    a = 2.0 + task + 0.2 * rng.standard_normal((S, 1, T, E))
    b = 1.0 + task + 0.2 * rng.standard_normal((S, 1, T, E))
    # the teacher's data: 1.5 on every task (two learners each)
    ceiling = M.data_ceiling(np.full((2 * T, 1), 1.5), 1, np.repeat(np.arange(T), 2),
                             np.arange(T))
    d = M.exceedance_difference(a, b, ceiling, 4)
    ea, eb = M.exceedance(a, ceiling, 4), M.exceedance(b, ceiling, 4)
    assert d.value == pytest.approx(ea.value - eb.value)
    paired = crossed_mean_ci(M.asymptote_cells(a, 4) - M.asymptote_cells(b, 4))
    assert (d.value, d.low, d.high) == pytest.approx((paired.value, paired.low, paired.high))
    assert d.low > 0.5 and d.high - d.low < 0.5  # the task effect cancels
    separate = np.hypot(ea.high - ea.value, eb.high - eb.value)
    assert separate > 5 * (d.high - d.value)
    with pytest.raises(ValueError, match="same training seeds and tasks"):
        M.exceedance_difference(a, b[:3], ceiling, 4)


# ------------------------------------------------------------------ the verdict, both ways
def E(value: float, low: float, high: float) -> Estimate:
    return Estimate(value, low, high)


TOL = 0.5
PASS = {"adq": None, "ad": None}


def test_the_rl_student_exceeding_its_data_where_ad_does_not_is_confirmed():
    v = exceeds_where_baseline_does_not_verdict(
        E(1.5, 0.8, 2.2), E(1.2, 0.6, 1.8), E(-0.3, -0.7, 0.1), TOL, PASS)
    assert v.outcome is Outcome.CONFIRMED
    assert v.label == "adq exceeds its data where ad does not"
    assert "exceedance adq - ad 1.5 [0.8, 2.2]" in v.reason


@pytest.mark.parametrize("diff, rl, ad, why", [
    # adq plateaus at its data, AD too: no advantage
    (E(0.1, -0.2, 0.4), E(0.0, -0.3, 0.3), E(-0.1, -0.4, 0.2),
     ["adq plateaus at its data", "adq's exceedance is not above ad's by more than 0.5"]),
    # adq below its data
    (E(0.5, 0.1, 0.9), E(-1.0, -1.5, -0.5), E(-1.5, -2.0, -1.0),
     ["adq plateaus below its data"]),
    # both exceed their data: "where AD does not" fails
    (E(0.9, 0.4, 1.4), E(2.0, 1.5, 2.5), E(1.1, 0.6, 1.6), ["ad exceeds its data too"]),
    # adq exceeds its data but the difference with AD is ruled out past the resolution
    (E(0.1, -0.3, 0.45), E(0.6, 0.2, 1.0), E(0.5, -0.1, 0.4),
     ["adq's exceedance is not above ad's by more than 0.5"]),
])
def test_the_rl_student_not_exceeding_where_ad_does_not_is_refuted(diff, rl, ad, why):
    v = exceeds_where_baseline_does_not_verdict(diff, rl, ad, TOL, PASS)
    assert v.outcome is Outcome.REFUTED
    assert v.label == "refuted: " + "; ".join(why)


def test_a_wide_difference_or_a_failed_gate_is_inconclusive():
    # the difference's CI reaches past the resolution on both sides, nothing refutes
    v = exceeds_where_baseline_does_not_verdict(
        E(0.5, -0.8, 1.8), E(1.0, 0.2, 1.8), E(0.5, -0.5, 1.5), TOL, PASS)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.label == "inconclusive (ad's exceedance, the difference too wide to tell)"
    # the numbers would confirm, but AD's uncut reference does not imitate its data
    gate = competence_gate(E(-3.0, -4.0, -2.0), E(1.0, 0.5, 1.5), E(4.0, 3.5, 4.5), TOL)
    assert gate is not None
    v = exceeds_where_baseline_does_not_verdict(
        E(1.5, 0.8, 2.2), E(1.2, 0.6, 1.8), E(-0.3, -0.7, 0.1), TOL, {"adq": None, "ad": gate})
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.label == "inconclusive: ad does not imitate the full data"
    assert v.reason.startswith(f"ad: {GATE} (reaches 1 of 4)")
    v = exceeds_where_baseline_does_not_verdict(
        E(1.5, 0.8, 2.2), E(1.2, 0.6, 1.8), E(-0.3, -0.7, 0.1), TOL, {"adq": gate, "ad": gate})
    assert v.label == "inconclusive: adq and ad do not imitate the full data"


def _synthetic(levels: dict[str, tuple[float, float]]) -> dict[str, cutoff.Results]:
    """Results of a pretend run of two students: each (cut 0.5 level, uncut level). The
    0.5 cut's data ceiling is 2.0, the uncut one's 4.6 (test_cutoff_study's pretend run)."""
    cfg, family, ids, cuts, curves = synthetic_run(TWO)
    base_curves = {"teacher": curves(4.6, 2), "random": curves(0.6, 2),
                   "optimum": curves(4.7, 2)}
    sts = cfg.student_sections()
    return {who: cutoff.Results(cfg, family, ids, cuts, {"0.5": curves(cut, 4)[:, None],
                                                         "uncut": curves(uncut, 4)[:, None]},
                                base_curves, sts[who])
            for who, (cut, uncut) in levels.items()}


@pytest.mark.parametrize("levels, outcome, label", [
    ({"ad": (2.0, 4.6), "adq": (3.5, 4.6)}, Outcome.CONFIRMED,
     "cut 0.5: adq exceeds its data where ad does not"),
    ({"ad": (3.5, 4.6), "adq": (2.0, 4.6)}, Outcome.REFUTED,
     "cut 0.5: refuted: adq plateaus at its data; ad exceeds its data too; adq's exceedance "
     "is not above ad's by more than 0.433"),
    ({"ad": (2.0, 1.5), "adq": (3.5, 4.6)}, Outcome.INCONCLUSIVE,
     "cut 0.5: inconclusive: ad does not imitate the full data"),
])
def test_the_side_by_side_verdict_follows_synthetic_curves(tmp_path, levels, outcome, label):
    cfg = parse_config(cutoff.CutoffConfig, TWO)
    section = cutoff_students.comparison_section(cfg, _synthetic(levels), tmp_path / "fig.png")
    assert section.outcome is outcome and section.verdict == label
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    check_cells(section)


@pytest.mark.parametrize("greedy_level, outcome, label", [
    # adq (3.5) above the greedy teacher (2.8), AD (2.0) not: the stricter claim holds too
    (2.8, Outcome.CONFIRMED,
     "adq exceeds the teacher's greedy policy at the cut where ad does not"),
    # the greedy teacher plays 3.5: adq above its data (2.0) but level with that policy
    (3.5, Outcome.REFUTED,
     "refuted: adq plateaus at the teacher's greedy policy at the cut"),
    # the greedy teacher plays 1.0: AD above it too
    (1.0, Outcome.REFUTED, "refuted: ad exceeds the teacher's greedy policy at the cut too"),
])
def test_the_side_by_side_verdict_against_the_greedy_teacher(tmp_path, greedy_level, outcome,
                                                              label):
    """Where the run measured the teacher at the cut acting greedily, each cut's row also
    judges "adq exceeds that policy where AD does not" by the same rule on each student's
    return minus it; the section's verdict stays the one on the data ceiling."""
    per = _synthetic({"ad": (2.0, 4.6), "adq": (3.5, 4.6)})
    rng = np.random.default_rng(3)
    tasks = per["ad"].students["0.5"].shape[-2]
    greedy = {"0.5": {"returns": greedy_level + 0.05 * rng.standard_normal((2, tasks, 5))}}
    for res in per.values():
        res.greedy = greedy
    cfg = parse_config(cutoff.CutoffConfig, TWO)
    section = cutoff_students.comparison_section(cfg, per, tmp_path / "fig.png")
    assert section.verdict == "cut 0.5: adq exceeds its data where ad does not"
    col = cutoff_students.GREEDY_VERDICT
    assert section.columns[-1] == col
    row, uncut = section.rows
    assert row[col] == label
    v = exceeds_where_baseline_does_not_verdict(
        row["exceedance adq - ad"], row["adq: - greedy teacher"], row["ad: - greedy teacher"],
        per["ad"].tol, PASS, ("adq", "ad"), GREEDY_TEACHER_BAR)
    assert v.outcome is outcome and v.label == label
    assert "adq: student - greedy teacher " in v.reason
    assert uncut.get(col) is None  # no greedy teacher measured there
    check_cells(section)


def test_without_a_greedy_teacher_there_is_no_stricter_verdict(tmp_path):
    section = cutoff_students.comparison_section(
        parse_config(cutoff.CutoffConfig, TWO), _synthetic({"ad": (2.0, 4.6), "adq": (3.5, 4.6)}),
        tmp_path / "fig.png")
    assert cutoff_students.GREEDY_VERDICT not in section.columns
    assert all(cutoff_students.GREEDY_VERDICT not in r for r in section.rows)


# ------------------------------------------------------------------ configs
def _two(**over) -> dict:
    d = copy.deepcopy(TWO)
    d.update(over)
    return d


def test_compare_defaults_to_the_rl_student_against_ad_and_can_be_set():
    assert parse_config(cutoff.CutoffConfig, TWO).compared() == ("adq", "ad")
    cfg = parse_config(cutoff.CutoffConfig, _two(compare=["ad", "adq"]))
    assert cfg.compared() == ("ad", "adq")
    # a config of one student says nothing of students or compare in its resolved form
    dumped = parse_config(cutoff.CutoffConfig, SINGLE).model_dump()
    assert "students" not in dumped and "compare" not in dumped and "student" in dumped
    dumped = parse_config(cutoff.CutoffConfig, TWO).model_dump()
    assert "student" not in dumped and [s["name"] for s in dumped["students"]] == ["ad", "adq"]


@pytest.mark.badinput
@pytest.mark.parametrize("over, message", [
    ({"student": TINY["student"]}, r"either \[student\].*or \[\[students\]\].*not both"),
    ({"students": [TWO["students"][0]] * 2}, r"names \['ad', 'ad'\]: give each"),
    ({"students": TWO["students"][:1]}, "students"),
    ({"compare": ["adq", "dpt"]}, r"compare = \['adq', 'dpt'\]: give two different names"),
    ({"compare": ["ad", "ad"]}, "give two different names"),
    ({"students": [*TWO["students"], {**TWO["students"][1], "name": "adq2"}]},
     r"2 of kind 'adq'.*set compare"),
    ({"students": [{**TWO["students"][0], "name": "9lives"}, TWO["students"][1]]},
     "students.0.name"),
    ({"students": [{**TWO["students"][0], "kind": "transformer"}, TWO["students"][1]]},
     "unknown student 'transformer'"),
    ({"horizon_extrapolation": {"T": 8}}, r"horizon_extrapolation needs its own student"),
])
def test_impossible_student_lists_are_refused_before_any_work(tmp_path, over, message):
    with pytest.raises(ConfigError, match=message):
        run_study("cutoff", _two(**over), tmp_path, quiet=True)
    assert not list(tmp_path.glob("*/stages"))


@pytest.mark.badinput
def test_compare_without_a_list_of_students_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="compare names two of"):
        run_study("cutoff", {**SINGLE, "compare": ["adq", "ad"]}, tmp_path, quiet=True)
