"""`cleanset clean`: the dataset in its own format minus removed (and failed, and review) items."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("clean")
    def clean(
        paths: Annotated[list[Path], typer.Argument(help="The scanned dataset's paths, then the RUN directory.")],
        out: Annotated[Path, typer.Option("--out", help="New or empty folder for the cleaned dataset.")],
        keep_review: Annotated[bool, typer.Option("--keep-review", help="Keep items the scan sent to review.")] = False,
        keep_failed: Annotated[
            bool, typer.Option("--keep-failed", help="Keep items that could not be read or hashed.")
        ] = False,
        format: Annotated[str | None, typer.Option("--format", help="Force the source kind.")] = None,
    ) -> None:
        """Write SOURCE... minus what RUN says must go, in the same format and layout, with DIR/removed.parquet."""
        from cleanset.actions.clean import REMOVED_FILE
        from cleanset.actions.clean import clean as do_clean
        from cleanset.errors import UserError

        if len(paths) < 2:
            raise UserError("usage: cleanset clean SOURCE... RUN --out DIR")
        *sources, run = paths
        report = do_clean(sources, run, out, keep_review=keep_review, keep_failed=keep_failed, format=format)
        review = f"review kept {report.review_kept}" if keep_review else f"review dropped {report.review_dropped}"
        failed = f"failed kept {report.failed_kept}" if keep_failed else f"failed dropped {report.failed_dropped}"
        typer.echo(
            f"cleaned {report.format} dataset: {report.items} items in {report.shards} shards; "
            f"kept {report.kept}, removed {report.removed}, {review}, {failed}"
        )
        typer.echo(f"written to {report.out} (list of left-out items: {Path(report.out) / REMOVED_FILE})")
