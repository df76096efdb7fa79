"""What makes the CLI scriptable and conventional, in one place: Unix-style help, remote paths refused before
they are mangled, JSON documents on stdout, tables that never cut a bank name or key short.

Kept import-light (no Rich at import time): the app imports this before any command runs.

Help: Typer labels every parameter with its Python annotation (``<list[Path]>``, ``<bool>``) and writes required
arguments as ``{sources}``. :class:`ConventionalGroup`, the app's group class, relabels every command's parameters
once, when the app is built, the way Unix tools write them: ``SOURCES...``, ``--out PATH``, flags bare. It walks
every sub-command, so command modules need not pass a metavar each.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from cleanset.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

REMOTE = re.compile(r"^(s3|gs|gcs|hf|az|abfss?|https?)://", re.IGNORECASE)
REMOTE_MESSAGE = (
    "this command needs a local path: copy the run or the cleaned data here first (scan, clean and rematch take "
    "s3://, gs://, hf:// and file:// URLs)"
)

# Wide enough that no table a command prints is cut or wrapped when its output goes to a file or a pipe.
PIPE_WIDTH = 10_000

_TYPE_LABELS = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "path": "PATH", "Path": "PATH", "datetime": "DATE"}


def local_path(raw: str | Path) -> Path:
    """A path argument as a local :class:`Path`; a URL is refused on the raw text, because ``Path("s3://b/k")``
    is ``s3:/b/k``, which would then be looked for (or, for an output, created) as a local folder named ``s3:``.

    Used as the ``parser`` of every path parameter, so the check happens before Typer converts anything (a
    default is already a Path, and local)."""
    if isinstance(raw, Path):
        return raw
    if REMOTE.match(raw):
        raise UserError(f"{raw}: {REMOTE_MESSAGE}")
    return Path(raw)


def echo_json(doc: Any) -> None:
    """One JSON document on stdout, the only thing there when ``--json`` is given (human text goes to stderr)."""
    typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))


def stdout_console() -> Console:
    """A Rich console for results on stdout: in a terminal it fits the terminal; into a pipe or a file it is as
    wide as the widest row, so ``| grep`` or ``> file`` sees every bank name and key whole."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=PIPE_WIDTH, soft_wrap=True)


def _type_label(raw: str) -> str | None:
    label = raw.strip("<>")
    label = re.sub(r"^list\[(.*)\]$", r"\1", label)
    label = re.sub(r" range$", "", label)
    if label == "bool":
        return None
    return _TYPE_LABELS.get(label, label if "|" not in label else f"[{label}]")


class _Argument(TyperArgument):
    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        if self.metavar is not None:  # written out whole, as the command wants it read
            return self.metavar
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        return _type_label(self.display_type(ctx))


def _relabel(param: Any) -> None:
    if type(param) is TyperArgument:
        param.__class__ = _Argument
    elif type(param) is TyperOption:
        param.__class__ = _Option


def _relabelled(opt: Any) -> Any:
    if opt is not None:
        _relabel(opt)
    return opt


# The ``--help`` option is made on first use, after the app is built: it is relabelled then.
class _Command(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return _relabelled(super().get_help_option(ctx))


class _Group(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return _relabelled(super().get_help_option(ctx))


def _conventional(command: Any) -> None:
    for p in command.params:
        _relabel(p)
    if type(command) is TyperCommand:
        command.__class__ = _Command
    elif type(command) is TyperGroup:
        command.__class__ = _Group
    for sub in getattr(command, "commands", {}).values():
        _conventional(sub)


class ConventionalGroup(_Group):
    """The app's group: relabels its own and every sub-command's parameters as it is built (see the module
    docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for p in self.params:
            _relabel(p)
        for sub in self.commands.values():
            _conventional(sub)
