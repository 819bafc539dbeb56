
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


def _drawn(fig):
    import matplotlib.text

    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text()]
    return r, texts


def _check_figure(fig, n_axes):
    """Full report width, no text under MIN_FONT_PT, one legend, outside every axes."""
    from outlearn.report.figures import FIG_WIDTH, MIN_FONT_PT

    r, texts = _drawn(fig)
    assert fig.get_figwidth() == FIG_WIDTH
    assert min(t.get_fontsize() for t in texts) >= MIN_FONT_PT
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(axes) == n_axes and all(ax.get_legend() is None for ax in axes)
    assert len(fig.legends) == 1
    box = fig.legends[0].get_window_extent(r)
    for ax in axes:
        assert not box.overlaps(ax.get_window_extent(r))
    import matplotlib.pyplot as plt

    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    return labels


def test_figures_keep_the_legend_off_the_data_and_the_text_readable():
    import numpy as np

    from outlearn.evaluation.metrics import CurveCI
    from outlearn.report.figures import CurvesPanel, CutPanel, cutoff_fig, panels_fig

    y = np.linspace(0, 1, 30)
    c = CurveCI(y, y - 0.1, y + 0.1, 0.95)
    fig = cutoff_fig(y, [CutPanel("uncut", c, 30, None), CutPanel("cut", c, 10, 0.5),
                         CutPanel("early", c, 3, 0.1), CutPanel("more", c, 5, 0.2)],
                     {"random": 0.1, "optimum": 1.0}, suptitle="title")
    labels = _check_figure(fig, 4)
    # every label once, whichever panel drew it (the uncut panel has no unseen part)
    assert sorted(labels) == sorted(["teacher (seen)", "teacher (unseen)", "student (95% CI)",
                                     "random", "optimum", "data ceiling"])
    fig = panels_fig([CurvesPanel("cumulative", "regret", {"student": c, "ucb": c}),
                      CurvesPanel("per pull", "regret/pull", {"ucb": c, "student": c},
                                  {"before T": (5.5, 10.5)})], "pull", {"T": 10}, "t")
    assert sorted(_check_figure(fig, 2)) == ["T", "student", "ucb"]


def test_titles_of_many_panels_side_by_side_do_not_run_into_each_other():
    """Six cut panels across the figure's width (the cut-off study with every cut): each
    title wrapped to its panel, no two titles overlapping once drawn, none past the edge."""
    import numpy as np

    from outlearn.evaluation.metrics import CurveCI
    from outlearn.report.figures import CurvesPanel, panel_title, panels_fig

    y = np.linspace(0, 1, 30)
    c = CurveCI(y, y - 0.1, y + 0.1, 0.95)
    titles = [f"cut at 0.{i} of optimal ({10 * i} episodes seen)" for i in range(2, 6)]
    titles += ["uncut (120 episodes seen)", "early only (4 episodes seen)"]
    assert panel_title(titles[0], 1) == titles[0]  # one panel: one line
    fig = panels_fig([CurvesPanel(t, "return", {"ad": c}) for t in titles], "episode")
    fig.canvas.draw()
    boxes = [ax.title.get_window_extent() for ax in fig.axes]
    for a, b in zip(boxes[:-1], boxes[1:], strict=True):
        assert a.x1 < b.x0, (a, b)
    width = fig.get_figwidth() * fig.dpi  # and none past the figure's edges
    assert boxes[0].x0 >= 0 and boxes[-1].x1 <= width, (boxes[0], boxes[-1], width)
    assert [ax.get_title().replace("\n", " ") for ax in fig.axes] == titles


def test_report_reads_on_any_screen_and_loads_nothing(tmp_path):
    """The markup the browser test measures: a viewport tag, tables in scroll boxes,
    estimates kept whole, a setting table without Python dicts, config and run details
    collapsed, the date and release at the top; every src a data: URI, every href an
    anchor (the page is one self-contained file)."""
    import re

    from report_sample import sample_report

    page = sample_report(tmp_path).read_text()
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page
    tables = page.count("<table")
    assert tables == 3 and page.count("<div class='scroll'") == tables
    assert "<span class='est'>0.123 <span class='ci'>[-0.0457, 0.988]</span></span>" in page
    assert "darkroom (size 5, episode_len 20), teacher qlearning {}" in page
    assert "{'size'" not in page and "date 2025-01-01" in page and "v0.1.0-5-gabcdef0" in page
    assert re.search(r"<details><summary>Resolved config</summary><pre>\{", page)
    assert "<details><summary>Run (machine, times)</summary>" in page
    srcs = re.findall(r"\bsrc='([^']*)'", page)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert all(h.startswith("#") for h in re.findall(r"\bhref='([^']*)'", page))
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_setting_table_lists_what_the_config_file_set():
    from outlearn.report.html import readable, setting_rows

    class Inner(Config):
        a: int = 1
        b: dict = {}

    class Outer(Config):
        env: str = "darkroom"
        inner: Inner = Inner()
        seeds: list[int] = [0]

    cfg = Outer.model_validate({"inner": {"b": {"size": 5}}, "seeds": [0, 1]})
    assert setting_rows(cfg) == {"inner": "b size 5", "seeds": "[0, 1]"}
    assert setting_rows({"x": {"y": 1.5, "z": None}}) == {"x": "y 1.5, z unset"}
    assert readable("bandit {'num_arms': 5}, {} {not python}") == \
        "bandit (num_arms 5), {} {not python}"
