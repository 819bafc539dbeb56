"""The command line as a user meets it: eval's table, train's loss figure, Ctrl-C, errors
naming the command that makes what is missing, a config for another command, paths
relative to the config file, and `outlearn runs` / `outlearn compare`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outlearn.cli import app
from outlearn.config import config_command, load_toml
from outlearn.errors import ConfigError
from outlearn.report.results import write_results
from outlearn.report.section import Outcome, Section
from outlearn.stats import Estimate

run_cli = lambda *args: CliRunner().invoke(app, [str(a) for a in args],  # noqa: E731
                                           env={"COLUMNS": "200"})

TRAIN = """history = "{history}"
env = "toy"
seed = 3
out = "{out}"
checkpoint_every = 5
val_every = 5
threads = 1
[student]
kind = "ad"
model = {{ n_layers = 1, n_heads = 2, d_model = 16, d_ff = 32 }}
[data]
context_len = 12
batch_size = 4
val_fraction = 0.2
val_batches = 1
[optim]
lr = 3e-3
warmup_steps = 3
total_steps = 12
"""

EVAL = """num_episodes = 20
seeds = [0, 1]
out_dir = "{out}"
[env]
name = "bernoulli-bandit"
kwargs = {{ num_arms = 3 }}
[tasks]
n_train = 4
n_test = 3
[[learners]]
name = "ucb"
kind = "teacher"
teacher = "ucb1"
[[learners]]
name = "rand"
kind = "baseline"
baseline = "random"
"""


@pytest.fixture
def train_dir(tmp_path, monkeypatch):
    """configs/train.toml naming its history and out dir relative to its own folder; the
    working directory is elsewhere."""
    from test_train import synthetic_history

    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    synthetic_history(cfg_dir / "h.h5")
    (cfg_dir / "train.toml").write_text(TRAIN.format(history="h.h5", out="run"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return cfg_dir


def test_eval_prints_its_summary_table_with_cis(tmp_path):
    (tmp_path / "e.toml").write_text(EVAL.format(out=tmp_path))
    r = run_cli("eval", tmp_path / "e.toml")
    assert r.exit_code == 0, r.output
    summary = json.loads(next(tmp_path.glob("eval-*/summary.json")).read_text())
    for name in ("ucb", "rand"):
        a, g = summary[name]["asymptote"], summary[name]["total_regret"]
        line = next(ln for ln in r.output.splitlines() if f"│ {name} " in ln)
        assert f"{a['value']:.3g} [{a['low']:.3g}, {a['high']:.3g}]" in line
        assert f"{g['value']:.3g} [{g['low']:.3g}, {g['high']:.3g}]" in line
    assert f"last {summary['ucb']['last_n']} episodes" in r.output and "wrote " in r.output


def test_train_resolves_paths_from_its_folder_and_draws_the_loss(train_dir):
    r = run_cli("train", train_dir / "train.toml")
    assert r.exit_code == 0, r.output
    out = train_dir / "run"  # beside the config, not in the working directory
    assert (out / "metrics.jsonl").is_file() and not Path("run").exists()
    png = (out / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_loss_figure_shows_training_and_validation_loss(tmp_path):
    from outlearn.report.figures import loss_fig, loss_figure, read_metrics

    m = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": i, "loss": 2.0 / i, **({"val_loss": 2.2 / i} if i % 10 == 0
                                                        else {})}) for i in range(1, 101)]
    m.write_text("\n".join(lines) + '\n{"step": 101, "lo')  # a torn last line
    recs = read_metrics(m)
    assert len(recs) == 100
    fig = loss_fig(recs)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["training loss (batch)", "training loss (mean of the last 2 steps)",
                      "validation loss (held-out learners)"]
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"  # the loss falls 100-fold
    val = ax.get_lines()[2]
    assert list(val.get_xdata()) == list(range(10, 101, 10))
    assert loss_figure(tmp_path / "none.jsonl", tmp_path / "x.png") is None
    assert loss_figure(m, tmp_path / "loss.png").stat().st_size > 5000


def test_ctrl_c_in_training_says_where_it_stopped_and_how_to_resume(train_dir, monkeypatch):
    T = sys.modules["outlearn.students.train"]  # the module (the package exports train())

    real, calls = T._Run.train_step, {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(T._Run, "train_step", interrupted)
    r = run_cli("train", train_dir / "train.toml")
    assert r.exit_code == 130
    assert "stopped at step 7; last checkpoint at 5; rerun the same command to resume" in \
        r.output
    assert (train_dir / "run" / "loss.png").is_file()  # drawn from what ran
    monkeypatch.setattr(T._Run, "train_step", real)
    r = run_cli("train", train_dir / "train.toml")
    assert r.exit_code == 0 and "step-00000012" in r.output


def test_ctrl_c_before_the_first_checkpoint(train_dir, monkeypatch):
    T = sys.modules["outlearn.students.train"]  # the module (the package exports train())

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(T._Run, "train_step", interrupted)
    r = run_cli("train", train_dir / "train.toml")
    assert r.exit_code == 130 and "stopped at step 0; no checkpoint yet" in r.output


def test_ctrl_c_in_a_study_run_says_its_stages_are_kept(tmp_path, monkeypatch):
    import outlearn.studies.runner as runner

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.RunContext, "stage", interrupted)
    p = tmp_path / "s.toml"
    p.write_text('study = "selfdistill-categorical"\n')
    r = run_cli("run", p, "--out", tmp_path / "runs")
    assert r.exit_code == 130
    assert re.search(r"stopped; the stages finished so far are kept in .*runs/"
                     r"selfdistill-categorical-\w+/stages: rerun the same command to resume",
                     r.output.replace("\n", ""))


@pytest.mark.parametrize("given,command,named", [
    ("train", "run", "train"), ("study", "train", "run"), ("collect", "eval", "collect"),
    ("eval", "collect", "eval"), ("study", "eval", "run"),
])
def test_a_config_for_another_command_is_named(tmp_path, given, command, named):
    text = {"train": TRAIN.format(history="h.h5", out="o"), "eval": EVAL.format(out="o"),
            "study": 'study = "cutoff"\n',
            "collect": 'out = "h.h5"\nnum_steps = 10\n[env]\nname = "darkroom"\n[teacher]\n'
                       'name = "qlearning"\n[tasks]\nn_train = 2\n'}[given]
    p = tmp_path / "c.toml"
    p.write_text(text)
    r = run_cli(command, p)
    assert r.exit_code == 2
    msg = " ".join(r.output.split())
    assert f"is a config for `outlearn {named}`" in msg and f"run `outlearn {named} {p}`" in msg
    assert f"not for `outlearn {command}`" in msg


def test_config_command_needs_every_key_of_a_kind():
    assert config_command({"study": "x"}) == "run"
    assert config_command({"history": "h"}) == "train"
    assert config_command({"learners": []}) is None  # eval needs num_episodes too
    assert config_command({"teacher": {}, "tasks": {}}) is None


def test_a_path_that_meant_the_working_directory_is_refused_with_the_fix(tmp_path,
                                                                         monkeypatch):
    from test_train import synthetic_history

    from outlearn.students import TrainConfig

    monkeypatch.chdir(tmp_path)
    synthetic_history(tmp_path / "h.h5")  # where the old resolution found it
    sub = tmp_path / "configs"
    sub.mkdir()
    (sub / "t.toml").write_text(TRAIN.format(history="h.h5", out="run"))
    rel = Path("configs/t.toml")  # as a user types it
    with pytest.raises(ConfigError) as err:
        load_toml(TrainConfig, rel)
    msg = str(err.value)
    assert "history = 'h.h5' resolves from the config file's folder" in msg
    assert "configs/h.h5, which does not exist; h.h5 (from the working directory" in msg
    assert "Write history = '../h.h5' to keep that meaning" in msg
    (sub / "t.toml").write_text(TRAIN.format(history="../h.h5", out="run"))
    cfg = load_toml(TrainConfig, rel)
    assert cfg.history == Path("h.h5") and cfg.out == Path("configs/run")
    absolute = tmp_path / "h.h5"
    (sub / "t.toml").write_text(TRAIN.format(history=absolute, out="run"))
    assert load_toml(TrainConfig, rel).history == absolute


def test_shipped_chain_resolves_from_the_repository_root():
    from outlearn.collect import CollectConfig
    from outlearn.evaluation.evaluate import EvalConfig
    from outlearn.students import TrainConfig

    root = Path(__file__).resolve().parents[1]
    for collect, train, ev in [("collect-bandit-ucb", "train-ad-bandit", "eval-bandit"),
                               ("collect-darkroom-q", "train-ad-darkroom", "eval-darkroom"),
                               ("collect-bandit-mixture", "train-dpt-bandit",
                                "eval-dpt-bandit"),
                               ("collect-dpt-gaussian", "train-dpt-gaussian",
                                "eval-dpt-gaussian")]:
        c = load_toml(CollectConfig, root / "configs" / f"{collect}.toml")
        t = load_toml(TrainConfig, root / "configs" / f"{train}.toml")
        e = load_toml(EvalConfig, root / "configs" / f"{ev}.toml")
        assert c.out == t.history and c.out.parent == root / "data" / "histories"
        student = next(lr for lr in e.learners if lr.kind == "student")
        assert student.checkpoint == t.out and t.out.parent == root / "runs"
        assert e.out_dir == root / "runs"


def test_missing_inputs_name_the_command_that_makes_them(tmp_path, train_dir):
    r = run_cli("train", train_dir / "train.toml")  # fine: sets up a checkpoint dir
    assert r.exit_code == 0
    (train_dir / "h.h5").unlink()
    (train_dir / "run" / "checkpoints").rename(train_dir / "gone")
    r = run_cli("train", train_dir / "train.toml")
    assert r.exit_code == 2 and "`outlearn collect <collect config>`" in r.output
    text = EVAL.format(out=tmp_path) + ('[[learners]]\nname = "ad"\nkind = "student"\n'
                                        'checkpoint = "nowhere"\n')
    (tmp_path / "e.toml").write_text(text)
    r = run_cli("eval", tmp_path / "e.toml")
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "checkpoint" in msg and "does not exist" in msg
    assert "run `outlearn train <train config>` first" in msg
    assert not list(tmp_path.glob("eval-*"))  # refused before any learner ran
    r = run_cli("results", tmp_path / "nope")
    assert r.exit_code == 2 and "`outlearn run <config.toml>` writes it" in r.output
    r = run_cli("runs", tmp_path / "nope")
    assert r.exit_code == 2 and "`outlearn run <config.toml>` creates it" in r.output


# ---------------------------------------------------------------- runs and compare
def _run(root: Path, name: str, asym: Estimate, outcome: Outcome, config: dict,
         seconds: str = "65.0 over 3 stages", date: str = "2025-01-02T03:04:05+00:00") -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"study": "cutoff", **config}))
    (d / "report.html").write_text("<!doctype html><title>r</title>")
    s = Section(key="cutoff", title="Claim 1", claim="c", setting="s",
                columns=["learner", "asymptote", "verdict"],
                rows=[{"learner": "student, cut at 0.4", "asymptote": asym,
                       "verdict": outcome.value},
                      {"learner": "random", "asymptote": Estimate(0.1, 0.05, 0.15)}],
                verdict=f"{outcome.value} label", verdict_reason="why", outcome=outcome)
    write_results(d / "results.json", "cutoff", name[-4:], f"outlearn run {name}", [s],
                  {"seconds (all stages, every invocation)": seconds}, date=date)
    return d


def test_runs_lists_every_run_and_writes_an_index(tmp_path):
    root = tmp_path / "runs"
    _run(root, "cutoff-aaaa", Estimate(0.4, 0.3, 0.5), Outcome.CONFIRMED, {"seed": 0})
    _run(root, "cutoff-bbbb", Estimate(0.6, 0.5, 0.7), Outcome.REFUTED, {"seed": 1},
         "7300.0 over 9 stages", "2025-02-01T00:00:00+00:00")
    (root / "gap-cccc").mkdir()
    (root / "gap-cccc" / "config.json").write_text('{"study": "gap"}')
    (root / "train-ad").mkdir()  # not a study run
    r = CliRunner().invoke(app, ["runs", str(root)], terminal_width=200)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    b = next(ln for ln in lines if "cutoff-bbbb" in ln)
    a = next(ln for ln in lines if "cutoff-aaaa" in ln)
    assert lines.index(b) < lines.index(a)  # newest first
    assert "2025-02-01 00:00" in b and "cutoff refuted" in b and "2 h 01 min" in b
    assert "2025-01-02 03:04" in a and "cutoff confirmed" in a and "1 min 05 s" in a
    assert "unfinished" in next(ln for ln in lines if "gap-cccc" in ln)
    assert "train-ad" not in r.output
    page = (root / "index.html").read_text()
    assert "<a href='cutoff-aaaa/report.html'>cutoff-aaaa</a>" in page
    assert "<a href='cutoff-bbbb/report.html'>cutoff-bbbb</a>" in page
    assert "gap-cccc" in page and "gap-cccc/report.html" not in page
    assert "<meta name='viewport'" in page


def test_compare_sets_estimates_side_by_side_without_inventing_a_difference_ci(tmp_path):
    a = _run(tmp_path, "cutoff-aaaa", Estimate(0.4, 0.3, 0.5), Outcome.CONFIRMED,
             {"seed": 0, "student": {"lr": 0.001}})
    b = _run(tmp_path, "cutoff-bbbb", Estimate(0.6, 0.5, 0.7), Outcome.REFUTED,
             {"seed": 0, "student": {"lr": 0.003}})
    r = CliRunner().invoke(app, ["compare", str(a), str(b / "results.json")],
                           terminal_width=200)
    assert r.exit_code == 0, r.output
    out = r.output
    assert "Claim 1: verdict A confirmed, B refuted" in out
    row = next(ln for ln in out.splitlines() if "asymptote" in ln and "cut at 0.4" in ln)
    assert "0.4 [0.3, 0.5]" in row and "0.6 [0.5, 0.7]" in row
    assert re.search(r"student\.lr\s*│\s*0\.001\s*│\s*0\.003", out)
    assert "seed" not in out.split("config: what differs")[1].split("Claim 1")[0]
    assert "No CI of the difference" in " ".join(out.split())
    r = run_cli("compare", a, tmp_path / "missing")
    assert r.exit_code == 2 and "`outlearn run <config.toml>` creates run directories" in \
        " ".join(r.output.split())


def test_compare_reads_the_config_a_results_json_keeps(tmp_path):
    """A copied results.json (docs/results/<run>/) has no config.json beside it: the
    configs come from the results.json itself, and a run with neither says so instead of
    reading as "the same"."""
    runs = []
    for name, lr in (("cutoff-aaaa", 0.001), ("cutoff-bbbb", 0.003)):
        d = _run(tmp_path / "runs", name, Estimate(0.4, 0.3, 0.5), Outcome.CONFIRMED, {})
        doc = json.loads((d / "results.json").read_text())
        doc["config"] = {"seed": 0, "student": {"lr": lr}}
        copy = tmp_path / "docs" / name
        copy.mkdir(parents=True)
        (copy / "results.json").write_text(json.dumps(doc))
        runs.append(copy)
    r = CliRunner().invoke(app, ["compare", *map(str, runs)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert re.search(r"student\.lr\s*│\s*0\.001\s*│\s*0\.003", r.output)
    assert "config: the same" not in r.output
    doc = json.loads((runs[1] / "results.json").read_text())
    del doc["config"]
    (runs[1] / "results.json").write_text(json.dumps(doc))
    r = CliRunner().invoke(app, ["compare", *map(str, runs)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "config: not recorded for B" in r.output and "config: the same" not in r.output


def test_list_prints_plain_sentences():
    r = run_cli("list")
    assert r.exit_code == 0
    assert "``" not in r.output and ":class:" not in r.output and "forward(" not in r.output
    lines = dict(ln.split(None, 1) for ln in r.output.splitlines() if ln.startswith("  "))
    assert lines["ad"] == "Causal transformer student."
    assert lines["qlearning"].endswith("kwargs are QLearningConfig fields.")


def test_recorded_command_leaves_out_where_this_machine_keeps_runs():
    from outlearn.studies.runner import portable_args

    args = ["c.toml", "--out", "/tmp/r", "--workers", "2", "--reuse", "/tmp/r/x-1",
            "--reuse=/tmp/r/x-2", "--out=/tmp/s", "--backend", "processes"]
    assert portable_args(args) == ["c.toml", "--workers", "2", "--backend", "processes"]
    assert portable_args(["c.toml"]) == ["c.toml"]


def test_results_json_records_a_command_that_reruns_anywhere(tmp_path, monkeypatch):
    p = tmp_path / "s.toml"
    p.write_text('study = "selfdistill-categorical"\nvocab = 8\nrepeats = 20\n'
                 'generations = 3\nideal_generations = 5\nfixation_samples = 2\n'
                 'fixation_generations = 20\nn_samples = 10\n')
    first = ["outlearn", "run", str(p), "--out", str(tmp_path / "a")]
    monkeypatch.setattr(sys, "argv", first)
    assert run_cli(*first[1:]).exit_code == 0
    (run_dir,) = (tmp_path / "a").iterdir()
    again = ["outlearn", "run", str(p), "--out", str(tmp_path / "b"), "--reuse", str(run_dir)]
    monkeypatch.setattr(sys, "argv", again)
    assert run_cli(*again[1:]).exit_code == 0
    (rerun,) = (tmp_path / "b").iterdir()
    for d in (run_dir, rerun):
        assert json.loads((d / "results.json").read_text())["command"] == f"outlearn run {p}"
