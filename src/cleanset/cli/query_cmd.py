"""`cleanset query RUN "SQL"`: ad hoc questions over a run's results with DuckDB.

Views: items (all shards, latest revision), matches (one row per match), probes (one row per probe), ledger.
"""

from __future__ import annotations

import csv
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cleanset.cli.conventions import local_path, stdout_console
from cleanset.errors import UserError


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, Decimal):  # DuckDB sums integers as HUGEINT, which Arrow hands over as a decimal
        return int(v) if v == v.to_integral_value() else float(v)
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("query")
    def query(
        run: Annotated[Path, typer.Argument(help="Run directory written by `cleanset scan`.", parser=local_path)],
        sql: Annotated[str, typer.Argument(help="SQL over the views items, matches, probes, ledger.")],
        as_json: Annotated[bool, typer.Option("--json", help="Rows as a JSON array.")] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="Rows as CSV.")] = False,
        revision: Annotated[int | None, typer.Option(help="Revision to query (default: latest; 0 = scan).")] = None,
    ) -> None:
        """Answer a question about a run, e.g. "SELECT verdict, count(*) FROM items GROUP BY verdict"."""
        from cleanset.results.query import query as run_query

        if as_json and as_csv:
            raise UserError("--json and --csv exclude each other")
        table = run_query(run, sql, revision)
        rows = table.to_pylist()
        if as_json:
            typer.echo(json.dumps([_jsonable(r) for r in rows], indent=1, ensure_ascii=False))
        elif as_csv:
            w = csv.writer(sys.stdout, lineterminator="\n")
            w.writerow(table.column_names)
            for r in rows:
                w.writerow(
                    [
                        "" if v is None else json.dumps(_jsonable(v)) if isinstance(v, dict | list) else v
                        for v in r.values()
                    ]
                )
        else:
            t = Table(*[escape(c) for c in table.column_names])  # names and cells are data, not markup
            for r in rows:
                t.add_row(*["" if v is None else escape(str(_jsonable(v))) for v in r.values()])
            stdout_console().print(t)
            Console(stderr=True).print(f"{len(rows)} rows")
