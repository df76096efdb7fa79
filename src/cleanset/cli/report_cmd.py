"""`cleanset report`: the run's report page, its data, and a dataset-card section.

stdout holds one thing a script can take: with ``--card`` the card alone (to redirect into a README), else with
``--json`` a JSON document naming the files written; anything for a person goes to stderr then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cleanset.cli.conventions import echo_json, local_path


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("report")
    def report(
        run: Annotated[Path, typer.Argument(help="Run directory written by `cleanset scan`.", parser=local_path)],
        json_out: Annotated[
            bool,
            typer.Option(
                "--json",
                help="Also write RUN/report.json (the page's data, same fields) and print the paths as JSON.",
            ),
        ] = False,
        card: Annotated[
            bool, typer.Option("--card", help="Print a Markdown section for a dataset card to stdout.")
        ] = False,
        revision: Annotated[
            int | None, typer.Option("--revision", help="Report this revision (0 = the scan); default latest.")
        ] = None,
        attestation_name: Annotated[
            str, typer.Option("--attestation-name", help="File name of the attestation the card refers to.")
        ] = "attestation.intoto.json",
    ) -> None:
        """Write RUN/report.html: what was removed, sent to review or failed, and why; never an image.

        Counts; removed and review items by URL or key with what matched and why; failed items by reason code;
        what a revision changed; charts. Never an image, a list value or an item's hash."""
        from cleanset import api
        from cleanset.actions.card import render_card

        out, data = api.report(run, revision=revision, json_out=json_out)
        typer.echo(f"wrote {out}" + (f" and {run / 'report.json'}" if json_out else ""), err=card or json_out)
        if card:
            typer.echo(render_card(data, attestation_name))
        elif json_out:
            echo_json({"html": str(out), "json": str(run / "report.json")})
