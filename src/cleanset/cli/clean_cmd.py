"""`cleanset clean`: the dataset in its own format minus removed (and failed, and review) items.

``cleanset clean RUN --out DIR`` cleans the dataset the run scanned, at the paths the scan recorded;
``cleanset clean SOURCE... RUN --out DIR`` names them (a dataset moved since the scan). ``--dry-run`` says what
would go, by the same decisions, and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from cleanset.cli.conventions import echo_json
from cleanset.cli.options import location
from cleanset.errors import UserError

USAGE = "usage: cleanset clean [SOURCE...] RUN --out DIR (or --dry-run)"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("clean")
    def clean(
        paths: Annotated[
            list[Path],
            typer.Argument(
                help="The RUN directory, after the scanned dataset's paths when they moved since the scan.",
                metavar="[SOURCE]... RUN",
                parser=location,
            ),
        ],
        out: Annotated[
            Path | None,
            typer.Option("--out", help="New or empty folder or URL for the cleaned dataset.", parser=location),
        ] = None,
        keep_review: Annotated[bool, typer.Option("--keep-review", help="Keep items the scan sent to review.")] = False,
        keep_failed: Annotated[
            bool, typer.Option("--keep-failed", help="Keep items that could not be read or hashed.")
        ] = False,
        format: Annotated[str | None, typer.Option("--format", help="Force the source kind.")] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Say what would be left out (counts and keys); write nothing.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    ) -> None:
        """Write the scanned dataset minus what RUN says must go, in the same format and layout, with
        DIR/removed.parquet naming what was left out."""
        from cleanset import api
        from cleanset.actions.clean import REMOVED_FILE, preview
        from cleanset.cli.options import run_sources

        if not paths:
            raise UserError(USAGE)
        *sources, run = paths
        if not sources:
            sources = run_sources(run)
        if dry_run:
            report, dropped = preview(sources, run, keep_review=keep_review, keep_failed=keep_failed, format=format)
            rows = dropped.select(["key", "shard", "dropped_as", "banks"]).to_pylist()
            _show_preview(report.to_json(), rows, as_json)
            return
        if out is None:
            raise UserError(f"--out DIR is required (or --dry-run); {USAGE}")
        report = api.clean(sources, run, out, keep_review=keep_review, keep_failed=keep_failed, format=format)
        if as_json:
            echo_json({**report.to_json(), "removed_list": f"{report.out}/{REMOVED_FILE}"})
            return
        review = f"review kept {report.review_kept}" if keep_review else f"review dropped {report.review_dropped}"
        failed = f"failed kept {report.failed_kept}" if keep_failed else f"failed dropped {report.failed_dropped}"
        typer.echo(
            f"cleaned {report.format} dataset: {report.items} items in {report.shards} shards; "
            f"kept {report.kept}, removed {report.removed}, {review}, {failed}"
        )
        typer.echo(f"written to {report.out} (list of left-out items: {report.out}/{REMOVED_FILE})")


def _show_preview(report: dict[str, Any], dropped: list[dict[str, Any]], as_json: bool) -> None:
    """Counts by why each item would go, then one line per item: key, reason, shard and the banks that matched
    (never a hash: a removed item's own hash is a list value)."""
    by = Counter(str(d["dropped_as"]) for d in dropped)
    if as_json:
        unknown = ("out", "created", "written", "files_root")  # known only by writing
        shown = {k: v for k, v in report.items() if k not in unknown}
        echo_json({"dry_run": True, **shown, "dropped_as": dict(by), "dropped": dropped})
        return
    typer.echo(
        f"dry run, nothing written: of {report['items']:,} items in {report['shards']} shard(s), "
        f"{report['kept']:,} would be kept and {len(dropped):,} left out ("
        + ", ".join(f"{k} {by.get(k, 0):,}" for k in ("removed", "review", "failed"))
        + ")"
    )
    if dropped:
        typer.echo("\t".join(["left_out_as", "key", "shard", "banks", "reason"]))
    for d in dropped:  # tab-separated, for cut and awk; the reason last, as it may hold anything but a tab
        reason = str(d.get("reason") or "").replace("\t", " ").replace("\n", " ")
        typer.echo("\t".join([d["dropped_as"], d["key"], d["shard"], ",".join(d["banks"] or []), reason]))
