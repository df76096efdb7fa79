"""`cleanset rematch`: bring a run's verdicts up to date with new bank versions from its stored hashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cleanset.cli import options
from cleanset.cli.conventions import echo_json


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("rematch")
    def rematch(
        run: Annotated[
            Path,
            typer.Argument(help="Run directory or URL written by `cleanset scan`.", parser=options.location),
        ],
        bank: Annotated[
            list[str],
            typer.Option("--bank", "-b", help="Bank with a new version (NAME or NAME@VERSION); repeat for several."),
        ],
        show: Annotated[int, typer.Option("--show", help="How many changed items to list.")] = 20,
        full: Annotated[
            bool, typer.Option("--full", help="Match every probe against every list, not only the changed entries.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
        executor: Annotated[str, typer.Option(help="Where shards are re-matched: local | ray.")] = "local",
        address: Annotated[
            str | None, typer.Option("--address", help="With --executor ray: the cluster to join (default: local).")
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(help="With --executor ray and no --address: local Ray CPUs.", callback=options.workers),
        ] = None,
    ) -> None:
        """Match the run's stored probes against the banks' current versions and write RUN/revisions/<n>/.

        No image is read. Failed items stay failed. Other banks of the run keep the version the run used.
        """
        from cleanset.results.changes import CHANGE_KINDS
        from cleanset.results.rematch import rematch as do_rematch

        options.ray_address(executor, address)
        options.check_banks(bank)
        res = do_rematch(run, bank, max_examples=show, full=full, executor=executor, workers=workers)
        s = res.summary
        stale = _stale_clean(res.path.parents[1], res.revision)  # the run's (working copy's) clean record
        if stale:
            typer.echo(stale, err=True)
        if as_json:
            echo_json(
                {
                    "revision": res.revision,
                    "base_revision": res.base_revision,
                    "path": str(res.path),
                    "mode": res.mode,
                    "items": res.items,
                    "matched_items": res.matched_items,
                    "seconds": round(res.seconds, 3),
                    "entries_added": res.entries_added,
                    "entries_removed": res.entries_removed,
                    "banks": [{"name": b["name"], "version": b["version"]} for b in s.get("banks") or []],
                    "changes": {k: res.changes.get(k, 0) for k in CHANGE_KINDS},
                    "transitions": [
                        {"from": old, "to": new, "items": n}
                        for (old, new), n in sorted(res.transitions.items(), key=lambda kv: -kv[1])
                    ],
                    "now": {k: s[k] for k in ("kept", "removed", "review", "failed")},
                    "examples": res.examples,
                    "stale_clean": stale,
                }
            )
            return
        typer.echo(
            f"revision {res.revision} (from {res.base_revision}): {res.items:,} items, "
            f"{res.matched_items:,} re-matched in {res.seconds:.2f}s ({res.items_per_s:,.0f} items/s)"
        )
        typer.echo("banks: " + ", ".join(f"{b['name']}@{b['version']}" for b in s.get("banks") or []))
        if res.mode == "incremental":
            typer.echo(
                f"incremental: {res.entries_added:,} list entries added, {res.entries_removed:,} removed since the "
                "run's versions; only those were matched"
            )
        else:
            typer.echo("full: every probe matched against every list (--full, or an allow list changed)")
        typer.echo("changes: " + ", ".join(f"{k.replace('_', ' ')} {res.changes.get(k, 0):,}" for k in CHANGE_KINDS))
        for (old, new), n in sorted(res.transitions.items(), key=lambda kv: -kv[1]):
            typer.echo(f"  {old} -> {new}: {n:,} items")
        typer.echo(f"now: kept {s['kept']:,}, removed {s['removed']:,}, review {s['review']:,}, failed {s['failed']:,}")
        for c in res.examples:
            where = f" {c['bank']}:{c['entry_id']}" if c["bank"] else f" {c['old_verdict']} -> {c['new_verdict']}"
            typer.echo(f"  {c['change']}: {c['key']!r} (shard {c['shard']}){where}")
        typer.echo(f"wrote {res.path}")


def _stale_clean(run: Path, revision: int) -> str | None:
    """The warning for a cleaned copy made before this revision: it may hold items the run now drops, and
    `cleanset attest` refuses it until it is cleaned again."""
    from cleanset.actions.clean import CLEAN_JSON

    try:
        record = json.loads((run / CLEAN_JSON).read_text())
    except (OSError, ValueError):
        return None
    cleaned_at = record.get("revision") if isinstance(record, dict) else None
    if not isinstance(cleaned_at, int) or cleaned_at >= revision:
        return None
    where = record.get("out") or "the --out of `cleanset clean`"
    return (
        f"warning: the cleaned copy {where} was made at revision {cleaned_at} and is now stale (revision "
        f"{revision}): it may hold items this revision drops. Run `cleanset clean` again (to a new --out) before "
        "`cleanset attest`"
    )
