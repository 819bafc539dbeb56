"""The command line: thin wrappers over the Python API (``outlearn --help``)."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command()
def version() -> None:
    """Print the outlearn version."""
    from outlearn import __version__

    typer.echo(__version__)


def main() -> None:  # pragma: no cover
    app()
