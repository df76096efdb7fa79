"""`cleanset scan`: hash and match every item of a dataset, resumably, and say what was found.

Exit code 0 when the scan finished, even with failed items: they are recorded per item (reason in RUN/items,
counts in RUN/summary.json and on screen) and the cleaned dataset leaves them out. ``--strict`` exits 1 when any
item failed, for pipelines that want to stop on them. A scan that screened nothing is never a success: no items
at all exits 2 (the paths or ``--format``/``--url-col`` are likely wrong), only failed items exits 1.
``--fail-on-match`` exits 1 when anything was removed or sent to review, for a pipeline step that must stop on a
hit (the results are written all the same). ``--json`` prints the summary as one JSON document on stdout.
"""

from __future__ import annotations

import json
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
            typer.Argument(
                help="Dataset paths or URLs (s3://, gs://, hf://): a folder, tar shards, Parquet files.",
                parser=options.location,
            ),
        ],
        bank: Annotated[list[str], typer.Option("--bank", help="Bank to match against (NAME or NAME@VERSION).")],
        out: Annotated[
            Path,
            typer.Option("--out", help="Run directory or URL for results (resumable).", parser=options.location),
        ],
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
        screen: Annotated[
            bool,
            typer.Option(
                "--screen",
                help="Also screen for material no list knows: image classifier, caption terms, dataset scores.",
            ),
        ] = False,
        policy: Annotated[
            str | None,
            typer.Option("--policy", help="Verdict policy: default | strict (review is removed) | FILE.toml."),
        ] = None,
        classifier: Annotated[
            list[str] | None,
            typer.Option(
                "--classifier", help="With --screen: classifier name or model config file (default open_nsfw)."
            ),
        ] = None,
        terms: Annotated[
            list[str] | None,
            typer.Option("--terms", help="With --screen: imported term list NAME[@VERSION], besides the defaults."),
        ] = None,
        score_col: Annotated[
            list[str] | None,
            typer.Option(
                "--score-col", help="With --screen: numeric column read as a score (default punsafe,pwatermark)."
            ),
        ] = None,
        embeddings: Annotated[
            str | None,
            typer.Option(
                "--embeddings",
                help="With --screen: per-item embeddings (.npy file or folder, e.g. LAION img_emb; or column:NAME); "
                "neighbours of hits are scored and judged again as the run's next revision.",
            ),
        ] = None,
        executor: Annotated[str, typer.Option(help="Where shards run: local | inline | ray.")] = "local",
        address: Annotated[
            str | None, typer.Option("--address", help="With --executor ray: the cluster to join (default: local).")
        ] = None,
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
        from cleanset.assess.policy import load_policy
        from cleanset.pipeline.progress import ScanProgress, print_summary
        from cleanset.pipeline.scan import Prepared, check_screened
        from cleanset.screening.scores import DEFAULT_SCORE_COLUMNS
        from cleanset.screening.stage import DEFAULT_CLASSIFIERS, ScreenConfig

        err = Console(stderr=True)
        views: list[ScanProgress] = []

        def start(prep: Prepared) -> None:
            views.append(ScanProgress(err, prep))
            views[0].progress.start()

        if not screen and (classifier or terms or score_col or embeddings):
            raise typer.BadParameter("--classifier, --terms, --score-col and --embeddings need --screen")
        if embeddings is not None and "://" in str(out):
            raise typer.BadParameter("--embeddings needs a local --out (the neighbour pass writes a revision in place)")
        options.ray_address(executor, address)
        options.check_banks(bank)
        chosen = load_policy(
            policy, review_above=review_above, bank_actions={b: "review" for b in _split(review_bank) or []}
        )
        screening = (
            ScreenConfig(
                classifiers=tuple(_split(classifier) or DEFAULT_CLASSIFIERS),
                term_lists=tuple(_split(terms) or ()),
                score_columns=tuple(_split(score_col) or DEFAULT_SCORE_COLUMNS),
            )
            if screen
            else None
        )
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
                policy=chosen,
                screen=screening,
                executor=executor,
                workers=workers,
                on_start=start,
                on_event=lambda ev: views[0].on_event(ev),
            )
        finally:
            if views:
                views[0].progress.stop()
        if embeddings is not None:
            found = api.neighbours(out, embeddings, sources=sources)
            summary = json.loads((found.path / "summary.json").read_text())
            err.print(
                f"neighbours: {found.neighbours:,} item(s) near {found.hits:,} hit(s), {found.changed:,} verdict(s) "
                f"changed (revision {found.revision})"
            )
        print_summary(err if as_json else stdout_console(), summary, out)
        if as_json:
            echo_json({"run": options.shown(out), **summary})
        check_screened(summary, sources)
        if strict and summary["failed"]:
            raise typer.Exit(int(ExitCode.FAILED_ITEMS))
        if fail_on_match and (summary["removed"] or summary["review"]):
            err.print(f"--fail-on-match: {summary['removed']:,} item(s) removed, {summary['review']:,} sent to review")
            raise typer.Exit(int(ExitCode.FAILED_ITEMS))
