"""`cleanset demo`: the whole flow on benign images made in code (works offline on a fresh machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cleanset.cli.conventions import echo_json, local_path


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("demo")
    def demo(
        out: Annotated[
            Path, typer.Option("--out", help="Folder for the demo's dataset, run and outputs.", parser=local_path)
        ] = Path("cleanset-demo"),
        images: Annotated[int, typer.Option(help="How many sample images to make.", min=40, max=5000)] = 120,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the outcome and the paths as JSON on stdout.")
        ] = False,
    ) -> None:
        """Make a benign dataset and a stand-in list, then scan, rematch, clean, report, attest and verify."""
        from rich.console import Console
        from rich.table import Table

        from cleanset.demo import run_demo
        from cleanset.errors import VerificationError

        console = Console(stderr=True)
        res = run_demo(out, images, log=lambda s: console.print(f"[bold cyan]•[/] {s}"))
        s = res.summary
        t = Table(title="demo run (latest revision)")
        for col in ("items", "kept", "removed", "review", "failed"):
            t.add_column(col, justify="right")
        t.add_row(*(f"{s[c]:,}" for c in ("items", "kept", "removed", "review", "failed")))
        console.print(t)
        m = Table(title="listed items and how the list held them")
        m.add_column("key")
        m.add_column("listed as")
        m.add_column("outcome")
        from cleanset.runs.store import RunStore

        tab = RunStore(res.run).items_table(columns=["key", "verdict", "status"]).to_pylist()
        verdicts = {r["key"]: r["verdict"] or r["status"] for r in tab}
        for key, how in res.planted.items():
            m.add_row(key, how, str(verdicts.get(key)))
        console.print(m)
        console.print(f"cleaned dataset: {res.cleaned}")
        console.print(f"report:          {res.report}  (no image in it; items are named by key)")
        console.print(f"attestation:     {res.attestation}")
        if as_json:
            echo_json(
                {
                    "counts": {c: s[c] for c in ("items", "kept", "removed", "review", "failed")},
                    "planted": {
                        key: {"listed_as": how, "outcome": verdicts.get(key)} for key, how in res.planted.items()
                    },
                    **{k: str(getattr(res, k)) for k in ("out", "dataset", "run", "cleaned", "report", "attestation")},
                    "verified": res.verified,
                }
            )
        if not res.verified:
            raise VerificationError("the demo's own attestation did not verify")
        console.print("[bold green]attestation verified against the cleaned dataset[/]")
        console.print(
            f'try: cleanset query {res.run} "select verdict, count(*) from items group by 1"  '
            f"(with CLEANSET_HOME={res.out / 'bank-store'} for the bank commands)"
        )
