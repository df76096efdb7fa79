"""`cleanset terms`: import and list the term lists that screen captions and prompts.

Like ``cleanset bank``, nothing here prints a term: listings show the name, version, category, count and digest. A
hotline's keyword list is shared with members in confidence, and a terminal, a CI log or a ticket is where lists
leak.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cleanset.cli.conventions import echo_json, local_path, stdout_console

terms_app = typer.Typer(
    name="terms",
    help="Manage caption and prompt term lists (import, list). Terms are never printed.",
    no_args_is_help=True,
)


@terms_app.command("import")
def import_cmd(
    name: Annotated[str, typer.Argument(help="List name (letters, digits, '_', '.', '-').")],
    file: Annotated[
        Path, typer.Argument(help="UTF-8 text, one term per line, '#' starts a comment.", parser=local_path)
    ],
    category: Annotated[
        str,
        typer.Option(
            "--category",
            "-c",
            help="What the terms indicate: minor or sexual (flagged when both occur), or a category of your own.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the new version's record as JSON.")] = False,
) -> None:
    """Import FILE as a new version of term list NAME (owner-only, never changed afterwards)."""
    from cleanset.screening.terms import TermStore

    info = TermStore.default().import_file(name, file, category)
    if as_json:
        echo_json(asdict(info))
        return
    typer.echo(
        f"term list {info.name} v{info.version}: {info.count:,} {info.category} terms (sha256 {info.sha256[:16]})"
    )


@terms_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the lists as JSON.")] = False,
) -> None:
    """The shipped lists and the latest version of every imported list: name, version, category and count."""
    from cleanset.screening.terms import TermStore
    from cleanset.screening.text import default_lists

    rows = [
        {"name": tl.name, "version": tl.version, "category": tl.category, "count": len(tl.terms), "source": "shipped"}
        for tl in default_lists()
    ]
    rows += [
        {"name": i.name, "version": i.version, "category": i.category, "count": i.count, "source": i.imported}
        for i in TermStore.default().list()
    ]
    if as_json:
        echo_json(rows)
        return
    table = Table("name", "version", "category", "terms", "imported")
    for r in rows:
        table.add_row(str(r["name"]), str(r["version"]), str(r["category"]), f"{r['count']:,}", str(r["source"]))
    stdout_console().print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(terms_app, name="terms")
