"""The Typer app. Each command group lives in its own ``*_cmd`` module with a ``register(app)`` function."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from cleanset.cli.conventions import ConventionalGroup
from cleanset.errors import CleansetError

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped with Ctrl-C
INTERRUPTED_MESSAGE = "interrupted; re-run the same command to resume"

app = typer.Typer(
    name="cleanset",
    help="Screen image datasets against hotline hash lists, clean them, and prove what was checked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=ConventionalGroup,
)

COMMAND_MODULES = (
    "hash_cmd",
    "bank_cmd",
    "terms_cmd",
    "match_cmd",
    "scan_cmd",
    "clean_cmd",
    "query_cmd",
    "report_cmd",
    "rematch_cmd",
    "attest_cmd",
    "bench_cmd",
    "demo_cmd",
    "serve_cmd",
    "keys_cmd",
)


def _print_version(value: bool) -> None:
    if value:
        from cleanset import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print cleanset's version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """Screen image datasets against hotline hash lists, clean them, and prove what was checked."""


@app.command("version")
def version() -> None:
    """Print cleanset's version."""
    _print_version(True)


for _mod in COMMAND_MODULES:
    importlib.import_module(f"cleanset.cli.{_mod}").register(app)


class Interrupted(BaseException):
    """Ctrl-C. Not a KeyboardInterrupt: Click would catch that and exit 1 with "Aborted!", which a script cannot
    tell from a failure; like KeyboardInterrupt it passes every ``except Exception`` on its way out."""


_MAIN_PID: int | None = None


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _MAIN_PID:
        # A forked scan worker (it inherits this handler): leave at once, quietly. The parent reports the
        # interruption; whatever the worker had not committed is redone when the command is run again.
        os._exit(INTERRUPTED)
    raise Interrupted


PIPED_HELP_WIDTH = 160


def _wide_help_when_piped() -> None:
    """Help read through a pipe or from a file is wrapped at 80 columns by default, which cuts examples such as
    ``--columns md5=...,category=...``; it gets a width that holds them (a user's TERMINAL_WIDTH still wins)."""
    import typer.rich_utils

    if typer.rich_utils.MAX_WIDTH is None and not sys.stdout.isatty():
        typer.rich_utils.MAX_WIDTH = PIPED_HELP_WIDTH


def main() -> None:
    """Entry point: Click handles usage errors (exit 2); cleanset's own errors become one line and their code;
    Ctrl-C is one line and 130, never a traceback (a scan, clean or rematch resumes or restarts cleanly)."""
    global _MAIN_PID
    from cleanset.threads import limit_blas_threads

    limit_blas_threads()
    _wide_help_when_piped()
    _MAIN_PID = os.getpid()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        app()
    except CleansetError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(int(e.exit_code))
    except (Interrupted, KeyboardInterrupt):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the goodbye
        print(INTERRUPTED_MESSAGE, file=sys.stderr, flush=True)
        sys.exit(INTERRUPTED)
