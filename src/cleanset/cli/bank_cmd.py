"""`cleanset bank`: import, list, inspect and remove hash lists.

Every command here shows counts, digests, thresholds and history, never a value: a terminal, a CI log or a ticket
is where lists leak.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cleanset.cli.conventions import local_path, stdout_console
from cleanset.cli.options import check_banks, where_banks
from cleanset.errors import UserError

bank_app = typer.Typer(
    name="bank",
    help="Manage hash-list banks (import, list, info, remove). Values are never printed.",
    no_args_is_help=True,
)


def _store() -> Any:
    """The default store; a version it imports gets its Hamming indexes stored with it (``matching.stored``), so
    whoever opens the version maps them instead of building them."""
    from cleanset.banks.store import BankStore
    from cleanset.matching.stored import write_indexes

    return BankStore.default(prepare=write_indexes)


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{s} {n:,}" for s, n in sorted(counts.items())) or "-"


def _format_help() -> str:
    from cleanset.banks.formats import FORMATS, format_names

    return "; ".join(f"{n}: {FORMATS.get(n).description}" for n in format_names())


@bank_app.command("import")
def import_cmd(
    name: Annotated[str, typer.Argument(help="Bank name (letters, digits, '_', '.', '-').")],
    file: Annotated[Path, typer.Argument(help="The list file.", parser=local_path)],
    format: Annotated[
        str | None, typer.Option("--format", "-f", help="List format (detected from the file when omitted).")
    ] = None,
    signal: Annotated[
        str | None, typer.Option("--signal", "-s", help="Signal of a list that does not name one (plain lists).")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Which column (or JSON key) holds what, e.g. md5=MD5,pdq=PDQ,id=Ref,category=Grade; roles: "
            "md5, sha1, sha256, pdq, phash, id, category, photodna (counted, not read). Implies --format wide "
            "for a table.",
        ),
    ] = None,
    value_encoding: Annotated[
        str,
        typer.Option("--value-encoding", help="How the list writes hash values: hex (default) or base64."),
    ] = "hex",
    allow: Annotated[
        bool | None,
        typer.Option(
            "--allow/--no-allow",
            help="Mark the bank as an allow bank (known false positives: its values suppress matches). "
            "Kept from the previous version when omitted.",
        ),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip malformed lines (and report how many) instead of stopping.")
    ] = False,
    note: Annotated[str, typer.Option("--note", help="Why this version was imported (kept in its history).")] = "",
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", "-t", help="Match threshold per signal, e.g. pdq=24 (kept across versions)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the import report as JSON.")] = False,
) -> None:
    """Import a list file as the bank's next version (none is written when it is identical to the latest)."""
    from cleanset.banks.formats import resolve
    from cleanset.banks.formats._options import parse_columns
    from cleanset.banks.store import parse_thresholds

    column_map = parse_columns(columns)
    chosen: Any = format
    if column_map or value_encoding != "hex":
        if not file.is_file():
            from cleanset.errors import UserError

            raise UserError(f"{file}: no such file")
        chosen = resolve(file, format, column_map, value_encoding)
    report = _store().import_file(
        name,
        file,
        format=chosen,
        signal=signal,
        allow=allow,
        skip_invalid=skip_invalid,
        note=note,
        thresholds=parse_thresholds(threshold or []),
    )
    if as_json:
        _echo_json(report.to_json())
        return
    if report.unchanged:
        typer.echo(
            f"bank {report.name}: the list is identical to version {report.version} "
            f"({report.entry_count:,} entries, {report.digest}); no new version written"
        )
        for line in report.notes:
            typer.echo(f"left out: {line}")
        return
    table = Table(title=f"bank {escape(report.name)} version {report.version}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("format", escape(report.format))
    table.add_row("kind", "allow" if report.allow else "block")
    table.add_row("entries", f"{report.entry_count:,} ({_counts(report.counts)})")
    table.add_row("added / removed", f"{report.added:,} / {report.removed:,}")
    table.add_row("skipped invalid lines", f"{report.skipped:,}")
    table.add_row("repeated lines dropped", f"{report.duplicates:,}")
    table.add_row("thresholds", _counts(report.thresholds))
    table.add_row("content digest", report.digest)
    table.add_row("source sha256", report.source_sha256 or "-")
    table.add_row("time", f"{report.elapsed_s:.2f} s")
    stdout_console().print(table)
    for line in report.notes:  # plain lines, unwrapped: scripts grep them
        typer.echo(f"left out: {line}")


@bank_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List banks with their latest version."""
    manifests = _store().list()
    if as_json:
        _echo_json(
            [
                {
                    "name": m.name,
                    "version": m.version,
                    "allow": m.allow,
                    "entry_count": m.entry_count,
                    "counts": m.counts,
                    "digest": m.digest,
                    "created": m.created,
                }
                for m in manifests
            ]
        )
        return
    if not manifests:
        typer.echo(f"no banks in {where_banks()} (import one with `cleanset bank import NAME FILE`)")
        return
    table = Table(title="banks")
    for col in ("name", "version", "kind", "entries", "signals", "imported", "digest"):
        table.add_column(col, no_wrap=col in ("name", "digest"))
    for m in manifests:
        table.add_row(
            escape(m.name),
            str(m.version),
            "allow" if m.allow else "block",
            f"{m.entry_count:,}",
            _counts(m.counts),
            escape(str(m.created)),
            m.digest.removeprefix("sha256:")[:16],
        )
    stdout_console().print(table)


@bank_app.command("info")
def info_cmd(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a bank's versions, counts, digest and thresholds."""
    check_banks([name])  # an unknown name is refused naming CLEANSET_HOME and the banks there
    info = _store().info(name)
    if as_json:
        _echo_json(info)
        return
    latest = info["latest"]
    console = stdout_console()
    head = Table(title=f"bank {escape(name)}", show_header=False)
    head.add_column("field", style="bold")
    head.add_column("value")
    head.add_row("latest version", str(latest["version"]))
    head.add_row("kind", "allow" if latest["allow"] else "block")
    head.add_row("entries", f"{latest['entry_count']:,} ({_counts(latest['counts'])})")
    head.add_row("thresholds", _counts(info["thresholds"]))
    head.add_row("content digest", latest["digest"])
    head.add_row("size on disk", f"{info['size_bytes']:,} bytes")
    console.print(head)
    hist = Table(title="versions")
    for col in ("version", "created", "format", "entries", "added", "removed", "skipped", "source", "note"):
        hist.add_column(col)
    for v in info["versions"]:
        src = v["source"]
        hist.add_row(
            str(v["version"]),
            escape(str(v["created"])),
            escape(str(v["format"])),
            f"{v['entry_count']:,}",
            f"{v['added']:,}",
            f"{v['removed']:,}",
            f"{v['skipped']:,}",
            escape(f"{src['file']} {(src['sha256'] or '').removeprefix('sha256:')[:12]}".strip()),
            escape(str(v["note"] or "")),
        )
    console.print(hist)


@bank_app.command("remove")
def remove_cmd(
    name: Annotated[str, typer.Argument(help="Bank name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete a bank and all its versions (asks first in a terminal; elsewhere needs --yes)."""
    check_banks([name])
    store = _store()
    n = len(store.info(name)["versions"])
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"removing bank {name!r} ({n} version(s)) needs --yes when not run in a terminal")
        typer.confirm(f"remove bank {name!r} and its {n} version(s)?", abort=True)
    store.remove(name)
    if as_json:
        _echo_json({"removed": name, "versions": n})
    else:
        typer.echo(f"removed bank {name} ({n} version(s))")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(bank_app, name="bank")
