"""The command line: thin wrappers over the Python API (``outlearn --help``).

Each command loads a TOML config and calls the same function a notebook would. Relative
paths written in a config resolve from the config file's folder. Ctrl-C stops a command
with a line saying what was kept and how to resume (exit status 130).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from outlearn.errors import OutlearnError, Stopped

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _call(fn: Callable[[], Any], on_stop: str) -> Any:
    """``fn()``; an OutlearnError exits 2 with its message; Ctrl-C exits 130 with the
    message of the :class:`~outlearn.errors.Stopped` it became, else ``on_stop``."""
    try:
        return fn()
    except OutlearnError as err:
        _fail(err)
    except KeyboardInterrupt as err:
        msg = str(err) if isinstance(err, Stopped) and str(err) else on_stop
        typer.secho(msg, fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(130) from None


@app.command()
def collect(config: Path) -> None:
    """Run teachers on tasks and write their learning histories to one HDF5 file."""
    from outlearn.collect import collect_from_toml

    path = _call(lambda: collect_from_toml(config),
                 "stopped; nothing was written (a collection does not resume): rerun the "
                 "same command to start it again")
    typer.echo(f"wrote {path}")


@app.command()
def train(config: Path) -> None:
    """Train a student on a history file (resumes from its last checkpoint); writes
    metrics.jsonl and loss.png (training and validation loss) in its out dir."""
    from outlearn.students.train import train_from_toml

    path = _call(lambda: train_from_toml(config),
                 "stopped; rerun the same command to resume from the last checkpoint")
    typer.echo(f"wrote {path}")


@app.command("eval")
def evaluate(config: Path) -> None:
    """Run a student and baselines in context on tasks; print the summary table (every
    estimate with its 95% CI) and write it with the curves and a figure."""
    from rich.console import Console

    from outlearn.evaluation.evaluate import evaluate_from_toml, summary_table

    path = _call(lambda: evaluate_from_toml(config),
                 "stopped; nothing was written (an evaluation does not resume): rerun the "
                 "same command to start it again")
    Console().print(summary_table(path))
    typer.echo(f"wrote {path} (summary.json, results.csv, curves.png)")


@app.command()
def run(
    config: Path,
    out: Path = typer.Option(Path("runs"), help="parent of run dirs"),
    workers: int = typer.Option(1, help="independent stages at once (local Ray when > 1)"),
    address: str = typer.Option(None, help="a Ray cluster (HOST:PORT or auto) to run them on"),
    backend: str = typer.Option("ray", help="'ray', or 'processes' (local processes, no Ray)"),
    reuse: list[Path] = typer.Option(
        [], help="another run's directory (repeatable): its finished stages with the same "
        "inputs and code are copied, not computed (an ablation reuses trained students)"),
) -> None:
    """Run a study end to end (collect, train, evaluate, report), resuming cached stages.
    Students train and act on $OUTLEARN_DEVICE (cpu, cuda, auto; the CPU when unset)."""
    from outlearn.studies.parallel import stop_on_sigterm
    from outlearn.studies.runner import run_from_toml

    old = stop_on_sigterm()  # `kill PID` stops the run as Ctrl-C does, workers included
    try:
        path = _call(lambda: run_from_toml(config, out, workers=workers, address=address,
                                           backend=backend, reuse=reuse),
                     "stopped; finished stages are kept: rerun the same command to resume")
    finally:
        signal.signal(signal.SIGTERM, old)  # a caller's own handler (a test runner's) back
    typer.echo(f"report: {path}")


@app.command()
def results(paths: list[Path]) -> None:
    """Print the verdicts and tables of finished runs (results.json files or run dirs) as
    Markdown: the README's result tables come from this command."""
    from outlearn.report.results import markdown, read_results

    docs = _call(lambda: [(p, read_results(p)) for p in paths], "stopped")
    typer.echo("\n\n".join(markdown(d, str(p)) for p, d in docs))


@app.command("map")
def map_(
    paths: list[Path] = typer.Argument(..., help="results.json files or run dirs"),
    out: Path = typer.Option(..., help="the folder to write map.md, map.json, map.png in"),
) -> None:
    """The ceiling map of finished runs: one row per task family, teacher, student and cut
    (exceedance and continuation gap with their 95% CIs, gated rows marked), one line per
    claim; as map.md, map.json and map.png in OUT."""
    import shlex

    from outlearn.report.ceiling_map import write_map

    command = shlex.join(["outlearn", "map", *map(str, paths), "--out", str(out)])
    written = _call(lambda: write_map(paths, out, command), "stopped")
    typer.echo(written[0].read_text(encoding="utf-8"))
    typer.echo("wrote " + ", ".join(str(p) for p in written))


@app.command()
def runs(folder: Path = typer.Argument(Path("runs"), help="the folder of run dirs")) -> None:
    """List the study runs in a folder (study, date, verdicts, wall time), newest first,
    and write FOLDER/index.html linking every report."""
    from rich.console import Console
    from rich.table import Table

    from outlearn.report.runs import duration, find_runs, short_date, verdict_text, write_index

    found = _call(lambda: find_runs(folder), "stopped")
    t = Table(title=f"{len(found)} runs in {folder}", title_justify="left")
    for col in ("run", "study", "date (UTC)", "verdicts", "wall time"):
        t.add_column(col, no_wrap=col in ("run", "date (UTC)"))
    for r in found:
        t.add_row(r.path.name, r.study, short_date(r.date), verdict_text(r),
                  duration(r.seconds))
    Console().print(t)
    typer.echo(f"index: {_call(lambda: write_index(folder, found), 'stopped')}")


@app.command()
def compare(run_a: Path, run_b: Path) -> None:
    """Two finished runs side by side: how their configs differ, each section's verdicts
    and every estimate both have (same section, row and column)."""
    from rich.console import Console
    from rich.table import Table

    from outlearn.report.runs import compare as compare_runs
    from outlearn.report.runs import load_run, short_date

    a, b = _call(lambda: (load_run(run_a), load_run(run_b)), "stopped")
    c = compare_runs(a, b)
    con = Console()
    con.print(f"A: {a.path} ({a.study}, {short_date(a.date)})\nB: {b.path} ({b.study}, "
              f"{short_date(b.date)})")
    if a.study != b.study:
        con.print(f"[yellow]different studies ({a.study} and {b.study}): only sections "
                  "with the same key are compared[/]")
    if c.config_missing:
        con.print(f"config: not recorded for {' and '.join(c.config_missing)} (neither its "
                  "results.json nor its run directory's config.json has one): not compared")
    elif c.config_diff:
        t = Table(title="config: what differs", title_justify="left")
        for col in ("key", "A", "B"):
            t.add_column(col, overflow="fold")
        for row in c.config_diff:
            t.add_row(*row)
        con.print(t)
    else:
        con.print("config: the same")
    for s in c.sections:
        t = Table(title=f"{s.title}: verdict A {s.verdicts[0]}, B {s.verdicts[1]}",
                  title_justify="left")
        t.add_column("row", min_width=8)
        t.add_column("column", min_width=8)
        t.add_column("A", justify="right", min_width=20)  # an estimate with
        t.add_column("B", justify="right", min_width=20)  # its CI fits in 20
        for cells in s.rows:
            t.add_row(*cells)
        con.print(t)
        for line in s.only:
            con.print(f"  {line}")
    for line in c.only:
        con.print(line)
    con.print(c.note)


@app.command()
def explain(
    section: str = typer.Argument(None, help="a command (collect, train, eval, run), a group "
                                  "(studies, envs, teachers, students) or one entry, e.g. "
                                  "teachers/qlearning; omitted: list the sections"),
    markdown: bool = typer.Option(False, "--markdown", help="print Markdown; with no section, "
                                  "the whole reference (docs/config.md)"),
) -> None:
    """Explain a config: every key with its type, default, bounds and meaning, read from the
    config models (the settings of each env, teacher and student included)."""
    from rich.console import Console

    from outlearn import explain as ex

    if markdown:
        typer.echo(_call(lambda: ex.markdown(section), "stopped"), nl=False)
        return
    con = Console()
    for part in _call(lambda: ex.render(section), "stopped"):
        con.print(part)


@app.command("list")
def list_() -> None:
    """List the studies, environments, teachers and students available."""
    from outlearn.studies.runner import list_components

    typer.echo(list_components())


@app.command()
def version() -> None:
    """Print the outlearn version."""
    from outlearn import __version__

    typer.echo(__version__)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
