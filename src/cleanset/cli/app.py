"""The Typer app. Each command group lives in its own ``*_cmd`` module with a ``register(app)`` function."""

from __future__ import annotations

import importlib
import sys

import typer

from cleanset.errors import CleansetError, ExitCode

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



@app.command("version")
def version() -> None:
    """Print cleanset's version."""
    from cleanset import __version__

    typer.echo(__version__)


for _mod in COMMAND_MODULES:
    importlib.import_module(f"cleanset.cli.{_mod}").register(app)


def main() -> None:
    """Entry point: runs the app and turns cleanset's own errors into a one-line message and an exit code."""
    try:
        app(standalone_mode=False)
    except CleansetError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(int(e.exit_code))
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(int(ExitCode.USER_ERROR))
    except Exception as e:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(int(ExitCode.USER_ERROR))
        raise
