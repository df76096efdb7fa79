"""`cleanset bench robustness DIR...`: how well matching survives what people do to images, and what it costs.

The work is ``cleanset.evaluation.robustness.run``; this command passes paths and options, prints the Markdown
table and writes table.md, table.html, recall.png and results.json into ``--out``. Benign photos only: the bank it
matches against is a stand-in built from half of the given photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cleanset.cli.conventions import local_path
from cleanset.errors import UserError

bench_app = typer.Typer(help="Benchmarks on benign photos.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("robustness")
def robustness(
    dirs: Annotated[list[Path], typer.Argument(help="Folders (or files) of benign photos.", parser=local_path)],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for table.md/.html, recall.png, json.", parser=local_path)
    ] = None,
    threshold: Annotated[int, typer.Option("--threshold", help="PDQ match threshold (bits of 256).")] = 31,
    limit: Annotated[int | None, typer.Option("--limit", help="Use at most this many distinct photos.")] = None,
    max_side: Annotated[int, typer.Option("--max-side", help="Shrink photos to this longest side first.")] = 1024,
    skimage: Annotated[bool, typer.Option("--skimage/--no-skimage", help="Add scikit-image's photos.")] = True,
    transform: Annotated[
        list[str] | None, typer.Option("--transform", help="Only these transforms (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the transforms' randomness.")] = 0,
    cost: Annotated[bool, typer.Option("--cost/--no-cost", help="Also time probes against plain hashing.")] = True,
    photographs_only: Annotated[
        bool, typer.Option("--photographs-only", help="Leave out wallpapers that are renders, drawings or patterns.")
    ] = False,
) -> None:
    """Recall per transform for plain PDQ, cleanset's probes and pHash; false matches; the cost of probing."""
    from cleanset.evaluation.report import markdown
    from cleanset.evaluation.robustness import run

    if not 0 <= threshold <= 256:
        raise UserError(f"--threshold must be between 0 and 256, got {threshold}")
    if limit is not None and limit < 4:
        raise UserError(f"--limit must be at least 4, got {limit}")
    with BenchProgress() as view:
        result = run(
            dirs,
            out,
            threshold=threshold,
            limit=limit,
            max_side=max_side,
            include_skimage=skimage,
            transforms=transform,
            seed=seed,
            cost=cost,
            photographs_only=photographs_only,
            progress=view.update,
        )
    typer.echo(markdown(result), nl=False)
    if out is not None:
        typer.echo(f"wrote {out / 'table.md'}, {out / 'table.html'}, {out / 'recall.png'}, {out / 'results.json'}")


class BenchProgress:
    """The benchmark's stages on stderr: a bar with an ETA over the transformed photos, elapsed time while loading
    and timing (those give no count). Stays quiet when stderr is not a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]bench[/] {task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task("starting", total=None)
        self.stage = ""

    def __enter__(self) -> BenchProgress:
        if self.progress.console.is_terminal:  # a log gets the table, not a blank line where a bar was
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def update(self, stage: str, done: int, total: int | None) -> None:
        what = {"loading": "loading photos", "transforms": "transformed photos", "timing": "timing probes"}
        if stage != self.stage:  # a new task: its own clock and rate, and no total left over from the last
            self.stage = stage
            self.progress.remove_task(self.task)
            self.task = self.progress.add_task(what.get(stage, stage), total=total)
        self.progress.update(self.task, completed=done)
