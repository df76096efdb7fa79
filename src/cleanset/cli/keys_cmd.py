"""`cleanset keys`: API keys for `cleanset serve`. A key is printed once, at creation; the store keeps its digest."""

from __future__ import annotations

import json
from typing import Annotated

import typer

keys_app = typer.Typer(name="keys", help="Create, list and revoke API keys for `cleanset serve`.", no_args_is_help=True)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key.")],
    scope: Annotated[
        str, typer.Option("--scope", help="check (check endpoints) or admin (also reload, looser thresholds).")
    ] = "check",
) -> None:
    """Make a key and print it once (stdout); only its SHA-256 is stored."""
    from cleanset.service.keys import KeyStore

    key, rec = KeyStore().create(name, scope)
    typer.echo(f"created key {rec.id} ({rec.name}, scope {rec.scope}); it is shown once, store it now:", err=True)
    typer.echo(key)


@keys_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Ids, names, scopes and dates; never a key."""
    from cleanset.service.keys import KeyStore

    recs = [r.public() for r in KeyStore().records()]
    if as_json:
        typer.echo(json.dumps(recs, indent=2))
        return
    for r in recs:
        state = f"revoked {r['revoked']}" if r["revoked"] else "live"
        typer.echo(f"{r['id']}  {r['scope']:<5}  {r['created']}  {state:<30}  {r['name']}")


@keys_app.command("revoke")
def revoke(ident: Annotated[str, typer.Argument(help="Key id (or its name).")]) -> None:
    """Revoke a key; a running service refuses it within a second."""
    from cleanset.service.keys import KeyStore

    rec = KeyStore().revoke(ident)
    typer.echo(f"revoked key {rec.id} ({rec.name})", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(keys_app, name="keys")
