"""Cuts by history length ("episodes:F", the first F of the teacher's episodes) beside cuts
by performance in the cut-off study: what they keep, their ceiling, their rows, the
headline, and the refusals."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from studies_tiny import check_cells, tiny
from test_cutoff_study import synthetic_run

import outlearn.studies.cutoff as cutoff
import outlearn.studies.cutoff_students as cutoff_students
from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.evaluation import metrics as M
from outlearn.histories import History
from outlearn.report.results import markdown, read_results
from outlearn.report.section import Outcome
from outlearn.studies.base import RunContext
from outlearn.studies.cutoff_text import headline
from outlearn.studies.cutspec import cut_kind, cut_name, kept_episodes
from outlearn.studies.runner import run_study
from outlearn.studies.store import read_result
from outlearn.studies.verdicts import GATE

#: 8 teacher episodes of 5 steps: "episodes:0.5" keeps the first 4 (20 steps)
LENGTH = tiny(cuts=[0.5, "episodes:0.5", "uncut"], eval={"episodes": 24, "seeds": [0]})
ROW = "student, cut at the first 50% of the teacher's episodes (4 episodes seen)"


def _run_dir(out: Path, data: dict) -> Path:
    return out / f"cutoff-{parse_config(cutoff.CutoffConfig, data).content_hash()}"


@pytest.fixture(scope="module")
def length_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("length")
    run_study("cutoff", LENGTH, out, quiet=True)
    return _run_dir(out, LENGTH)


def _cuts(run_dir: Path) -> dict[str, cutoff.CutInfo]:
    return {(c := read_result(p.parent, run_dir)).name: c
            for p in (run_dir / "stages").glob("cut-*/result.json")}


def test_a_length_cut_keeps_the_first_episodes_and_its_ceiling_is_the_held_out_tasks_there(
        length_run):
    cuts = _cuts(length_run)
    assert set(cuts) == {"0.5", "episodes_0.5", "uncut"}
    cut, full = cuts["episodes_0.5"], cuts["uncut"]
    assert (cut.episodes, cut.steps) == (4, 20)
    with History(cut.path) as h, History(full.path) as f:
        assert h.num_steps == 20 and h.num_episodes == 4
        np.testing.assert_array_equal(h.episode_lengths, 5)  # every learner, 4 whole episodes
        np.testing.assert_array_equal(h.dataset("actions")[()], f.dataset("actions")[:, :20])
        # the ceiling: the teacher's histories on the held-out tasks, cut at the same place
        ids = cutoff.held_out_tasks(cutoff.make_family(parse_config(
            cutoff.CutoffConfig, LENGTH).env), parse_config(cutoff.CutoffConfig, LENGTH).tasks)
        test = f.learners("test")
        want = M.data_ceiling(f.episode_returns[test, :4], 3, f.task_ids[test], ids)
        assert set(f.task_ids[test]) == set(ids)
    assert cut.ceiling.best == want.best
    np.testing.assert_array_equal(cut.ceiling.per_task, want.per_task)


def test_a_length_cut_has_its_row_its_panel_and_the_performance_cut_heads_the_verdict(
        length_run, monkeypatch):
    panels = []
    real = cutoff.cutoff_figure
    monkeypatch.setattr(cutoff, "cutoff_figure",
                        lambda path, teacher, ps, *a, **k: panels.extend(ps) or real(
                            path, teacher, ps, *a, **k))
    cfg = parse_config(cutoff.CutoffConfig, LENGTH)
    (claim1,) = cutoff.run(cfg, RunContext(length_run, quiet=True))  # from its cached stages
    check_cells(claim1)
    labels = [r["learner"] for r in claim1.rows]
    assert ROW in labels and labels[0].startswith("student, cut at 0.5 of optimal (")
    assert "student, uncut (8 episodes seen)" in labels
    assert [p.title for p in panels][1] == "first 50% of episodes: 4 ep. seen"
    assert len(panels) == 3 and panels[1].seen_episodes == 4
    assert claim1.verdict.startswith(("cut 0.5: ", GATE))
    md = markdown(read_results(length_run / "results.json"))
    assert ROW in md


def test_with_only_length_cuts_the_headline_is_the_one_whose_ceiling_is_nearest_40_percent(
        tmp_path):
    cfg, family, ids, cuts, curves = synthetic_run(tiny(cuts=["episodes:0.5", "uncut"],
                                                        eval={"episodes": 24, "seeds": [0]}))
    cuts = {"episodes_0.5": cuts["0.5"], "uncut": cuts["uncut"]}
    res = cutoff.Results(cfg, family, ids, cuts,
                         {"episodes_0.5": curves(2.0, 4), "uncut": curves(4.5, 4)},
                         {"teacher": curves(4.6, 2), "random": curves(0.6, 2),
                          "optimum": curves(4.7, 2)})
    section = cutoff.claim1_section(res, res.figure(tmp_path / "fig.png"))
    assert section.verdict == ("cut at the first 50% of the teacher's episodes: plateaus at "
                               "its data; falls short of the teacher's continuation (sceptic "
                               "confirmed)")
    assert section.outcome is Outcome.CONFIRMED
    assert section.verdict_reason.startswith("No cut by performance, so the headline is the "
                                             "cut by history length whose data ceiling")
    names = ["episodes_0.25", "episodes_0.75", "uncut", "early"]
    assert headline([*names, "0.7", "0.2"]) == "0.2"  # a performance cut when there is one
    assert headline(names, {"episodes_0.25": 0.1, "episodes_0.75": 0.45}) == "episodes_0.75"
    assert headline(names) == "episodes_0.25"
    assert headline(["uncut", "early"]) is None


def test_several_students_compare_on_a_length_cut(tmp_path):
    """[[students]] with a cut by length only: its row in the side-by-side table, and the
    headline verdict names it (each student's claim 1 section as alone)."""
    data = {k: v for k, v in tiny(cuts=["episodes:0.5", "uncut"],
                                  eval={"episodes": 24, "seeds": [0]}).items() if k != "student"}
    data["students"] = [{"name": "ad", **tiny()["student"]},
                        {"name": "adq", **tiny()["student"], "kind": "adq"}]
    cfg, family, ids, cuts, curves = synthetic_run(data)
    cuts = {"episodes_0.5": cuts["0.5"], "uncut": cuts["uncut"]}  # the pretend cut: 6 episodes
    base = {"teacher": curves(4.6, 2), "random": curves(0.6, 2), "optimum": curves(4.7, 2)}
    per = {who: cutoff.Results(cfg, family, ids, cuts,
                               {"episodes_0.5": curves(cut, 4), "uncut": curves(4.6, 4)},
                               base, st)
           for (who, st), cut in zip(cfg.student_sections().items(), (2.0, 3.5), strict=True)}
    sections = cutoff_students.students_sections(cfg, per, tmp_path)
    side = sections[0]
    assert side.rows[0]["cut"] == "cut at the first 50% of the teacher's episodes (6 episodes seen)"
    assert side.verdict == ("cut at the first 50% of the teacher's episodes: adq exceeds its "
                            "data where ad does not")
    assert [s.key for s in sections] == ["students", "cutoff-ad", "cutoff-adq"]
    assert sections[1].rows[0]["learner"].startswith("student, cut at the first 50% of the ")


def test_cut_names_are_stable_and_filename_safe_and_spellings_are_one():
    cfg = parse_config(cutoff.CutoffConfig, tiny(cuts=[0.4, "episodes:0.330", "uncut", "early"],
                                                 eval={"episodes": 24, "seeds": [0]}))
    assert cfg.cuts == [0.4, "episodes:0.33", "uncut", "early"]
    assert [cut_name(c) for c in cfg.cuts] == ["0.4", "episodes_0.33", "uncut", "early"]
    assert [cut_kind(cut_name(c)) for c in cfg.cuts] == ["performance", "length", "uncut",
                                                         "early"]
    for c in [*cfg.cuts, "episodes:1e-05", 0.125]:
        assert re.fullmatch(r"[A-Za-z0-9._-]+", cut_name(c)), c
    same = parse_config(cutoff.CutoffConfig, tiny(cuts=[0.4, "episodes:0.33", "uncut", "early"],
                                                  eval={"episodes": 24, "seeds": [0]}))
    assert same.content_hash() == cfg.content_hash()
    assert (kept_episodes(0.33, 120), kept_episodes(0.33, 40), kept_episodes(0.5, 9)) == (40, 13, 5)


@pytest.mark.badinput
@pytest.mark.parametrize("cut, message", [
    ("episodes:1.5", r"'episodes:1.5': the fraction of the teacher's episodes must be in "
                     r"\(0, 1\).*\"uncut\""),
    ("episodes:0", r"must be in \(0, 1\)"),
    ("episodes:-0.2", r"must be in \(0, 1\)"),
    ("episodes:nan", r"must be in \(0, 1\)"),
    ("episodes:a third", r"'a third' after \"episodes:\" is not a number.*\"episodes:0.33\""),
    ("episode:0.3", r"'episode:0.3' is not a cut: give a fraction of optimal as a number"),
    ("0.4", r"'0.4' is a string: write 0.4 without quotes.*\"episodes:0.4\""),
    ("episodes:0.05", r"rounds to 0: less than one complete episode\. Raise the fraction to "
                      r"at least 0.125"),
    ("episodes:0.95", r"rounds to all 8: that is the whole history\. Use \"uncut\""),
])
def test_impossible_length_cuts_are_refused_before_any_work(tmp_path, cut, message):
    with pytest.raises(ConfigError, match=message):
        run_study("cutoff", tiny(cuts=[cut, "uncut"], eval={"episodes": 24, "seeds": [0]}),
                  tmp_path, quiet=True)
    assert not list(tmp_path.glob("*/stages"))


@pytest.mark.badinput
def test_two_length_cuts_keeping_the_same_episodes_and_a_short_eval_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"'episodes:0.5' and 'episodes:0.55' both keep the "
                                          r"first 4 of 8 teacher episodes: remove one"):
        run_study("cutoff", tiny(cuts=["episodes:0.5", "episodes:0.55"],
                                 eval={"episodes": 24, "seeds": [0]}), tmp_path, quiet=True)
    with pytest.raises(ConfigError, match=r"cut \"episodes:0.75\" keeps 6 teacher episodes, so "
                                          r"the student must run for at least 3 x 6 = 18 .*"
                                          r"raise eval.episodes to 18"):
        run_study("cutoff", tiny(cuts=["episodes:0.75"], eval={"episodes": 10, "seeds": [0]}),
                  tmp_path, quiet=True)
    assert not list(tmp_path.glob("*/stages"))


@pytest.mark.badinput
def test_a_length_cut_of_episodes_that_vary_in_length_is_refused_before_training(tmp_path):
    """Key-to-Door ends an episode at the door, so the learners' 4th episodes end at
    different steps: no one step cuts them all at an episode boundary."""
    data = tiny(env={"name": "keydoor", "kwargs": {"size": 3, "episode_len": 6}},
                cuts=["episodes:0.5", "uncut"], eval={"episodes": 24, "seeds": [0]})
    with pytest.raises(ConfigError, match=r"cut episodes_0.5 cuts every learner after its "
                                          r"first 4 episodes, but this family's episodes vary "
                                          r"in length.*Cut by performance"):
        run_study("cutoff", data, tmp_path, quiet=True)
    assert not list(tmp_path.glob("*/stages/train-*"))
