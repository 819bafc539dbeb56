"""`outlearn map`: the ceiling map of finished runs, from their results.json: one row per
(task family, teacher, student, cut) with exceedance and continuation gap, gated rows
marked, one line per claim, the figure; bad input refused with a message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cutoff_study import _cfg, _synthetic_results
from typer.testing import CliRunner

from outlearn.cli import app
from outlearn.config import parse_config
from outlearn.report.ceiling_map import GATE, GREEDY_TEACHER, _setting, markdown, read_map
from outlearn.report.results import write_results
from outlearn.report.section import Outcome, Section
from outlearn.stats import Estimate
from outlearn.studies import cutoff
from outlearn.studies.verdicts import GATE as VERDICTS_GATE

DOCS = sorted((Path(__file__).parents[1] / "docs" / "results").glob("*/results.json"))
run_cli = lambda *args: CliRunner().invoke(app, [str(a) for a in args],  # noqa: E731
                                           env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path, list[Section], list[Section]]:
    """Two finished cut-off runs: A passes the competence gate and records its config; B is
    gated and has no config (an older results.json: its setting line says it), plus a
    section without an exceedance (a claim line only)."""
    root = tmp_path_factory.mktemp("map")
    fig = root / "unused.png"  # the sections only name their figure
    a = [cutoff.claim1_section(_synthetic_results(2.0), fig)]
    b = [cutoff.claim1_section(_synthetic_results(2.0, uncut_level=1.5), fig),
         Section(key="horizon", title="Claim 3: horizon extrapolation", claim="c", setting="s",
                 columns=["learner", "drop"], rows=[{"learner": "student",
                                                     "drop": Estimate(0.1, 0.0, 0.2)}],
                 verdict="per-step regret stops falling after T", verdict_reason="why",
                 outcome=Outcome.NO)]
    config = {"study": "cutoff", **parse_config(cutoff.CutoffConfig, _cfg()).model_dump(
        mode="json")}
    (root / "a").mkdir()
    write_results(root / "a" / "results.json", "cutoff", "aaaa", "outlearn run a.toml", a, {},
                  date="2025-01-01T00:00:00+00:00", config=config)
    pb = write_results(root / "b.json", "cutoff", "bbbb", "outlearn run b.toml", b, {},
                       date="2025-01-02T00:00:00+00:00")
    return root / "a", pb, a, b


def test_the_map_has_a_row_per_student_and_cut_with_its_cis_and_gate(two_runs):
    a, b, sa, sb = two_runs
    assert sb[0].verdict.startswith(GATE) and not sa[0].verdict.startswith(GATE)
    runs, rows, claims = read_map([a, b])
    assert [r.name for r in runs] == ["a", b.parent.name]
    assert [(r.cut, r.run.name, r.gated) for r in rows] == [
        ("0.5", "a", False), ("0.5", b.parent.name, True),
        ("uncut", "a", False), ("uncut", b.parent.name, True)]
    for r in rows:  # from the config (A) and from the setting line (B) alike
        assert (r.family, r.teacher, r.student) == (
            "darkroom (size=3, episode_len=5)", "qlearning", "ad")
    cut_a = next(row for row in sa[0].rows if "cut at 0.5" in str(row["learner"]))
    ex = rows[0].exceedance
    assert (ex["value"], ex["low"], ex["high"]) == pytest.approx(
        (cut_a["exceedance"].value, cut_a["exceedance"].low, cut_a["exceedance"].high))
    assert rows[0].continuation_gap["value"] == pytest.approx(cut_a["continuation gap"].value)
    assert [(c.title, c.outcome, c.run.name) for c in claims] == [
        ("Claim 1: truncated imitation plateaus", sa[0].outcome.value, "a"),
        ("Claim 1: truncated imitation plateaus", "inconclusive", b.parent.name),
        ("Claim 3: horizon extrapolation", "no", b.parent.name)]
    assert claims[1].verdict.startswith(GATE)


def test_the_map_command_writes_the_table_the_claims_and_the_figure(two_runs, tmp_path):
    a, b, _, _ = two_runs
    r = run_cli("map", a, b, "--out", tmp_path / "map")
    assert r.exit_code == 0, r.output
    md = (tmp_path / "map" / "map.md").read_text()
    lines = [ln for ln in md.splitlines() if ln.startswith("| darkroom")]
    assert len(lines) == 4 and sum("**gated**" in ln for ln in lines) == 2
    assert "| b.json |" not in md and "| Claim 3: horizon extrapolation | no |" in md
    assert f"outlearn map {a} {b} --out {tmp_path / 'map'}" in md
    assert "`outlearn run a.toml`" in md and "2025-01-02T00:00:00+00:00" in md
    data = json.loads((tmp_path / "map" / "map.json").read_text())
    assert len(data["rows"]) == 4 and len(data["claims"]) == 3 and len(data["runs"]) == 2
    assert data["runs"][0]["results"] == str(a / "results.json")
    assert (tmp_path / "map" / "map.png").stat().st_size > 20_000
    assert "wrote" in r.output and "| task family |" in r.output


def test_the_teacher_at_the_cut_acting_greedily_is_one_reference_row_per_cut(tmp_path):
    """A run that measured the greedy teacher gets, per cut, one row of it (once, though
    each student's section repeats it): its exceedance as stored, no continuation gap,
    never gated; the figure leaves out the gap it does not have."""
    from dataclasses import replace

    res = _synthetic_results(2.0)
    rng = np.random.default_rng(1)
    tasks = res.students["0.5"].shape[-2]
    res.greedy = {"0.5": {"returns": 2.8 + 0.1 * rng.standard_normal((2, tasks, 4))},
                  "uncut": {"returns": None, "why": "no policy recorded"}}
    section = cutoff.claim1_section(res, tmp_path / "unused.png")
    twice = [section, replace(section, key="cutoff-other")]
    write_results(tmp_path / "results.json", "cutoff", "cccc", "outlearn run c.toml", twice,
                  {}, date="2025-01-03T00:00:00+00:00")
    runs, rows, claims = read_map([tmp_path / "results.json"])
    greedy = [r for r in rows if r.student == GREEDY_TEACHER]
    stored = next(r for r in section.rows if str(r["learner"]).startswith("teacher, cut"))
    assert [(r.cut, r.gated, r.continuation_gap) for r in greedy] == [("0.5", False, None)]
    assert greedy[0].exceedance["value"] == pytest.approx(stored["exceedance"].value)
    assert stored["exceedance"].value > 0.5  # 2.8 against the cut's data ceiling of 2.0
    assert len(rows) == 2 * 2 + 1  # two students' sections x (cut, uncut) + the teacher once
    line = next(ln for ln in markdown(runs, rows, claims, "m").splitlines()
                if f"| {GREEDY_TEACHER} |" in ln)
    assert "| 0.5 |" in line and "| — |" in line and "**gated**" not in line
    r = run_cli("map", tmp_path / "results.json", "--out", tmp_path / "map")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "map" / "map.json").read_text())["rows"][-1][
        "continuation_gap"] is None


def test_the_gate_label_is_the_verdicts_own():
    assert GATE == VERDICTS_GATE


def test_a_student_of_several_is_named_from_the_config():
    cfg = {"env": {"name": "keydoor", "kwargs": {}}, "teacher": {"name": "ppo"},
           "students": [{"name": "ad", "kind": "ad"}, {"name": "b2", "kind": "adq"}]}
    s = _setting({"key": "cutoff-b2", "setting": "no setting line"}, cfg)
    assert s == {"family": "keydoor", "teacher": "ppo", "teacher_settings": "",
                 "student": "adq (b2)"}
    # a student that acts on its argmax says so: by [eval] mode, or its own eval_mode
    greedy = {**cfg, "eval": {"mode": "greedy"}}
    assert _setting({"key": "cutoff-b2", "setting": ""}, greedy)["student"] == "adq (b2), greedy"
    cfg["students"][0]["eval_mode"] = "greedy"
    assert _setting({"key": "cutoff-ad", "setting": ""}, cfg)["student"] == "ad, greedy"
    assert _setting({"key": "cutoff-b2", "setting": ""}, cfg)["student"] == "adq (b2)"


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{]", "is not a results.json"),
    ('{"schema": 99, "sections": []}', "is not a results.json of schema 1"),
    ('{"schema": 1, "sections": [{"key": "k"}]}', "section 1 lacks one of"),
])
def test_bad_input_exits_2_naming_the_problem_and_the_fix(tmp_path, content, message):
    p = tmp_path / "results.json"
    if content is not None:
        p.write_text(content)
    r = run_cli("map", p if content is not None else tmp_path / "nope", "--out", tmp_path / "m")
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and message in msg and ("re-run the study" in msg
                                                    or "give a results.json" in msg)
    assert not (tmp_path / "m").exists()


def test_an_out_that_is_a_file_is_refused(two_runs, tmp_path):
    (tmp_path / "f").write_text("x")
    r = run_cli("map", two_runs[0], "--out", tmp_path / "f")
    assert r.exit_code == 2 and "is a file, not a directory" in " ".join(r.output.split())


def test_every_committed_result_maps():
    assert len(DOCS) >= 8
    runs, rows, claims = read_map(DOCS)
    assert len(runs) == len(DOCS)
    assert len(claims) == sum(len(json.loads(p.read_text())["sections"]) for p in DOCS)
    assert rows and all("?" not in (r.family, r.teacher, r.student) for r in rows)
    gpu = [r for r in rows if r.run.name == "cutoff-full-gpu"]
    assert [r.cut for r in gpu] == ["0.2", "0.4", "0.7", "uncut"]
    assert gpu[1].exceedance["value"] == pytest.approx(-0.368, abs=5e-4)
    assert gpu[1].family == "darkroom (size=9, episode_len=20)" and not gpu[1].gated
    assert {r.student for r in rows if r.run.name == "cutoff-adq-demo"} == {"ad", "adq"}
    assert {r.student for r in rows if r.run.name == "cutoff-adq-darkroom-full-greedy"} == {
        "ad, greedy", "adq, greedy", GREEDY_TEACHER}
    greedy = {r.cut: r for r in rows if r.run.name == "cutoff-adq-darkroom-full"
              and r.student == GREEDY_TEACHER}
    assert sorted(greedy) == ["0.2", "0.4", "0.7", "uncut"]  # one per cut, though two sections
    assert greedy["0.4"].exceedance["value"] == pytest.approx(0.871, abs=5e-4)
    # claim 2's sections give the early-only students their rows
    early = {r.student: r for r in rows if r.run.name == "cutoff-adq-darkroom-full"
             and r.cut == "early"}
    assert sorted(early) == ["ad", "adq"]
    assert early["adq"].exceedance["value"] == pytest.approx(1.91, abs=5e-3)
    # a cut by history length reads as its config spells it
    length = [r.cut for r in rows if r.run.name == "cutoff-length"]
    assert sorted(length) == ["0.4", "episodes:0.33", "uncut"]
