"""The Typer app. Each command group lives in its own ``*_cmd`` module with a ``register(app)`` function."""

from __future__ import annotations

import importlib
import sys

import typer

from cleanset.errors import CleansetError

app = typer.Typer(
    name="cleanset",
    help="Screen image datasets against hotline hash lists, clean them, and prove what was checked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (
    "hash_cmd",
    "bank_cmd",
    "match_cmd",
    "scan_cmd",
    "clean_cmd",
    "query_cmd",
    "report_cmd",
    "rematch_cmd",
    "attest_cmd",
    "bench_cmd",
    "demo_cmd",
)


@app.callback()
def _root() -> None:
    """Screen image datasets against hotline hash lists, clean them, and prove what was checked."""


@app.command("version")
def version() -> None:
    """Print cleanset's version."""
    from cleanset import __version__

    typer.echo(__version__)


for _mod in COMMAND_MODULES:
    importlib.import_module(f"cleanset.cli.{_mod}").register(app)


def main() -> None:
    """Entry point: Click handles usage errors (exit 2); cleanset's own errors become one line and their code."""
    from cleanset.threads import limit_blas_threads

    limit_blas_threads()
    try:
        app()
    except CleansetError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(int(e.exit_code))
