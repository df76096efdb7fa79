"""`cleanset scan`: hash and match every item of a dataset, resumably, and say what was found.

Exit code 0 when the scan finished, even with failed items: they are recorded per item (reason in RUN/items,
counts in RUN/summary.json and on screen) and the cleaned dataset leaves them out. ``--strict`` exits 1 when any
item failed, for pipelines that want to stop on them. A scan that screened nothing is never a success: no items
at all exits 2 (the paths or ``--format``/``--url-col`` are likely wrong), only failed items exits 1.
``--fail-on-match`` exits 1 when anything was removed or sent to review, for a pipeline step that must stop on a
hit (the results are written all the same). ``--json`` prints the summary as one JSON document on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cleanset.cli import options
from cleanset.cli.conventions import echo_json, local_path, stdout_console
from cleanset.errors import ExitCode


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("scan")
    def scan(
        sources: Annotated[
            list[Path],
            typer.Argument(help="Dataset paths: a folder, tar shards, Parquet files.", parser=local_path),
        ],
        bank: Annotated[list[str], typer.Option("--bank", help="Bank to match against (NAME or NAME@VERSION).")],
        out: Annotated[Path, typer.Option("--out", help="Run directory for results (resumable).", parser=local_path)],
        workers: Annotated[
            int | None, typer.Option(help="Worker processes (default: all cores).", callback=options.workers)
        ] = None,
        format: Annotated[str | None, typer.Option("--format", help="Force the source kind.")] = None,
        images: Annotated[
            Path | None,
            typer.Option(help="img2dataset's download of URL metadata, joined back by URL.", parser=local_path),
        ] = None,
        url_col: Annotated[
            str | None, typer.Option("--url-col", help="URL column of Parquet rows (default: url, any case).")
        ] = None,
        caption_col: Annotated[
            str | None,
            typer.Option("--caption-col", help="Caption column of Parquet rows (default: caption, text or txt)."),
        ] = None,
        signals: Annotated[
            list[str] | None, typer.Option("--signals", help="Signals to compute (comma-separated).")
        ] = None,
        no_probes: Annotated[bool, typer.Option("--no-probes", help="No rotation/flip or region probes.")] = False,
        review_above: Annotated[
            int | None,
            typer.Option(
                help="Perceptual matches farther than N bits go to review, not removal.", callback=options.review_above
            ),
        ] = None,
        review_bank: Annotated[
            list[str] | None, typer.Option("--review-bank", help="Matches of this bank go to review.")
        ] = None,
        quality_gate: Annotated[
            int,
            typer.Option(
                help="PDQ quality (0-100) below which only exact matches count.", callback=options.quality_gate
            ),
        ] = options.DEFAULT_QUALITY_GATE,
        executor: Annotated[str, typer.Option(help="Where shards run: local | inline.")] = "local",
        strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any item failed.")] = False,
        fail_on_match: Annotated[
            bool, typer.Option("--fail-on-match", help="Exit 1 when any item was removed or sent to review.")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the summary as JSON on stdout (the table goes to stderr).")
        ] = False,
    ) -> None:
        """Scan a dataset against banks; results go to OUT (re-run the same command to resume)."""
        from cleanset import api
        from cleanset.assess.policy import Policy
        from cleanset.pipeline.progress import ScanProgress, print_summary
        from cleanset.pipeline.scan import Prepared, check_screened

        err = Console(stderr=True)
        views: list[ScanProgress] = []

        def start(prep: Prepared) -> None:
            views.append(ScanProgress(err, prep))
            views[0].progress.start()

        options.check_banks(bank)
        try:
            summary = api.scan(
                sources,
                bank,
                out,
                format=format,
                images=images,
                url_col=url_col,
                caption_col=caption_col,
                signals=_split(signals),
                probes=not no_probes,
                quality_gate=quality_gate,
                policy=Policy(review_above=review_above, bank_actions={b: "review" for b in _split(review_bank) or []}),
                executor=executor,
                workers=workers,
                on_start=start,
                on_event=lambda ev: views[0].on_event(ev),
            )
        finally:
            if views:
                views[0].progress.stop()
        print_summary(err if as_json else stdout_console(), summary, out)
        if as_json:
            echo_json({"run": str(out.resolve()), **summary})
        check_screened(summary, sources)
        if strict and summary["failed"]:
            raise typer.Exit(int(ExitCode.FAILED_ITEMS))
        if fail_on_match and (summary["removed"] or summary["review"]):
            err.print(f"--fail-on-match: {summary['removed']:,} item(s) removed, {summary['review']:,} sent to review")
            raise typer.Exit(int(ExitCode.FAILED_ITEMS))
