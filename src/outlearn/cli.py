"""The command line: thin wrappers over the Python API (``outlearn --help``).

Each command loads a TOML config and calls the same function a notebook would.
"""

from __future__ import annotations

from pathlib import Path

import typer

from outlearn.errors import OutlearnError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def collect(config: Path) -> None:
    """Run teachers on tasks and write their learning histories to one HDF5 file."""
    from outlearn.collect import collect_from_toml

    try:
        path = collect_from_toml(config)
    except OutlearnError as err:
        _fail(err)
    typer.echo(f"wrote {path}")


@app.command()
def train(config: Path) -> None:
    """Train a student on a history file (resumes from its last checkpoint)."""
    from outlearn.students.train import train_from_toml

    try:
        path = train_from_toml(config)
    except OutlearnError as err:
        _fail(err)
    typer.echo(f"wrote {path}")


@app.command("eval")
def evaluate(config: Path) -> None:
    """Run a student and baselines in context on tasks; write a results table and figure."""
    from outlearn.evaluation.evaluate import evaluate_from_toml

    try:
        path = evaluate_from_toml(config)
    except OutlearnError as err:
        _fail(err)
    typer.echo(f"wrote {path}")


@app.command()
def run(
    config: Path,
    out: Path = typer.Option(Path("runs"), help="parent of run dirs"),
    workers: int = typer.Option(1, help="independent stages at once (local Ray when > 1)"),
    address: str = typer.Option(None, help="a Ray cluster (HOST:PORT or auto) to run them on"),
) -> None:
    """Run a study end to end (collect, train, evaluate, report), resuming cached stages."""
    from outlearn.studies.runner import run_from_toml

    try:
        path = run_from_toml(config, out, workers=workers, address=address)
    except OutlearnError as err:
        _fail(err)
    typer.echo(f"report: {path}")


@app.command()
def results(paths: list[Path]) -> None:
    """Print the verdicts and tables of finished runs (results.json files or run dirs) as
    Markdown: the README's result tables come from this command."""
    from outlearn.report.results import markdown, read_results

    try:
        docs = [(p, read_results(p)) for p in paths]
    except OutlearnError as err:
        _fail(err)
    typer.echo("\n\n".join(markdown(d, str(p)) for p, d in docs))


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
