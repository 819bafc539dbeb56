
from types import SimpleNamespace

import pytest

from outlearn.atomic import atomic_path, atomic_write_text
from outlearn.config import Config
from outlearn.errors import ConfigError
from outlearn.registry import STUDIES, Registry
from outlearn.report.html import format_cell, render_report, summary_text
from outlearn.report.results import markdown, read_results, write_results
from outlearn.report.section import Outcome, Section
from outlearn.stats import Estimate
from outlearn.studies import base
from outlearn.studies.base import RunContext, inputs_hash, total_seconds
from outlearn.studies.runner import read_study_toml


def test_registry_names_known_entries_on_typo():
    reg = Registry("widget")
    reg.register("alpha")(lambda: 1)
    with pytest.raises(ConfigError, match=r"unknown widget 'alpah'; known widgets: alpha"):
        reg.get("alpah")


def test_study_toml_needs_study_key(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="missing key 'study'"):
        read_study_toml(p)
    with pytest.raises(ConfigError, match="unknown study"):
        STUDIES.get("no-such-study")


def test_atomic_write_leaves_nothing_on_interrupt(tmp_path):
    dst = tmp_path / "f.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(dst) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    atomic_write_text(dst, "whole")
    assert dst.read_text() == "whole" and list(tmp_path.iterdir()) == [dst]


def test_stage_cache_runs_once(tmp_path):
    class C(Config):
        a: int = 1

    ctx = RunContext(tmp_path, quiet=True)
    calls = []
    fn = lambda d: calls.append(d) or 42
    assert ctx.stage("s", {"cfg": C()}, fn) == 42
    assert ctx.stage("s", {"cfg": C()}, fn) == 42
    assert len(calls) == 1
    assert ctx.stage("s", {"cfg": C(a=2)}, fn) == 42 and len(calls) == 2
    assert inputs_hash({"cfg": C()}) != inputs_hash({"cfg": C(a=2)})


def test_stage_time_is_kept_across_an_interruption(tmp_path, monkeypatch):
    """A stage's seconds are summed over the invocations that ran it (an interrupted one
    included) and reported for cached stages too: the run time of a resumed run is whole.
    The stages' clock is a fake one that only the stages advance, so machine load cannot
    change the seconds recorded."""
    now = [100.0]
    monkeypatch.setattr(base, "time", SimpleNamespace(perf_counter=lambda: now[0]))

    def slow_then_fail(d):
        now[0] += 0.2
        raise KeyboardInterrupt

    ctx = RunContext(tmp_path, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        ctx.stage("s", [1], slow_then_fail)

    def slow(d):
        now[0] += 0.1
        return 7

    assert ctx.stage("s", [1], slow) == 7
    d = ctx.stage_dir("s", [1])  # stages/s-<key of its inputs and code version>
    first = ctx.stage_seconds[d.name]
    assert first == pytest.approx(0.3)
    again = RunContext(tmp_path, quiet=True)
    assert again.stage("s", [1], slow) == 7
    assert again.stage_seconds == ctx.stage_seconds  # cached: recorded time, not re-run
    assert total_seconds(again.stage_seconds) == f"{first:.1f} over 1 stages"
    (d / "seconds.txt").unlink()  # an old run
    assert again.stage("s", [1], slow) == 7
    want = "0.0 over 0 stages (1 more ran without a time record)"
    assert total_seconds(again.stage_seconds) == want


def test_report_renders_every_estimate_with_its_ci(tmp_path):
    s = Section(key="k", title="T", claim="c", setting="s", columns=["what", "value"],
                rows=[{"what": "x", "value": Estimate(1.0, 0.5, 1.5)}], verdict="v",
                verdict_reason="because", outcome=Outcome.CONFIRMED)
    out = render_report(tmp_path / "r.html", "t", [s], "outlearn run x", {"a": 1}, {})
    text = out.read_text()
    assert "1 <span class='ci'>[0.5, 1.5]</span>" in text and "Verdict: v" in text
    assert format_cell(Estimate(2.0, 1.0, 3.0)) == "2 [1, 3]"
    assert "verdict: v" in summary_text([s])


def test_results_json_round_trip_and_markdown(tmp_path):
    s = Section(key="k", title="Claim X", claim="c", setting="s", columns=["what", "value"],
                rows=[{"what": "x", "value": Estimate(1.0, 0.5, float("inf"))},
                      {"what": "y", "value": 2.5}], verdict="plateaus", verdict_reason="why",
                outcome="refuted")
    p = write_results(tmp_path / "results.json", "cutoff", "abc", "outlearn run x", [s], {})
    doc = read_results(tmp_path)  # a run directory holding one
    sec = doc["sections"][0]
    assert sec["verdict"] == {"label": "plateaus", "reason": "why", "outcome": "refuted"}
    assert sec["rows"][0]["value"] == {"value": 1.0, "low": 0.5, "high": "inf",
                                       "confidence": 0.95}
    assert doc["config_hash"] == "abc" and len(doc["code"]) == 16 and doc["date"]
    md = markdown(doc, str(p))
    assert "**Claim X** (refuted): plateaus" in md and "| x | 1 [0.5, inf] |" in md
    assert "| y | 2.5 |" in md
    with pytest.raises(ValueError, match="outcome"):
        Section(key="k", title="T", claim="c", setting="s", columns=[], rows=[], verdict="v",
                verdict_reason="r")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{]")
    with pytest.raises(ConfigError, match="not a results.json"):
        read_results(tmp_path / "bad")
