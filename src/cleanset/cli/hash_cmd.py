"""`cleanset hash PATH...`: the hashes of image files as JSON lines, one per file.

Each line carries the file's path, its own hash values by signal name (``md5``, ``pdq``, ...), ``pdq_quality`` /
``pdq512_quality``, the image's size and format, and, with dihedral probes on, ``probes``: the rotated/flipped and
region PDQ hashes by probe name. A file that cannot be read or decoded gets ``"status": "failed"`` and a ``reason``
instead, and the command exits 1. These are the item's own hashes, never list values, so printing them is safe;
`cleanset match -f` reads these lines back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from cleanset.cli.conventions import local_path
from cleanset.errors import ExitCode, UserError
from cleanset.imaging.decode import DEFAULT_MAX_PIXELS
from cleanset.records import DIHEDRAL_NAMES, HashOutcome, Status
from cleanset.signals import Input, get_signal, hash_columns, signal_names
from cleanset.signals.engine import IMAGE_SIGNALS

# Probes whose value is already a top-level key (the item's own hashes): each file signal's one probe, or the
# unrotated one of a signal probed per rotation/flip (md5, sha1, sha256, pdq/original, pdq512/original, phash).
PRIMARY_PROBES = {
    f"{s}/{DIHEDRAL_NAMES[0]}" if get_signal(s).dihedral else s
    for s in hash_columns()
    if get_signal(s).input is not Input.URL
}


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("hash")(hash_files)


def parse_signals(text: str) -> tuple[str, ...]:
    """``md5,pdq`` -> ("md5", "pdq"); URL signals are refused here (files have no URL)."""
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names:
        raise UserError("--signals: no signal named")
    url = [n for n in names if n in signal_names() and get_signal(n).input is Input.URL]
    if url:
        raise UserError(f"--signals: {', '.join(url)} hash URLs, not files (choose from {', '.join(IMAGE_SIGNALS)})")
    return names


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders are walked recursively in sorted order."""
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file())
        else:
            yield p


def outcome_json(path: Path, outcome: HashOutcome) -> dict[str, Any]:
    line: dict[str, Any] = {"path": str(path), "status": str(outcome.status)}
    if outcome.status is Status.FAILED:
        line["reason"] = outcome.reason
        line.update(outcome.hashes)  # the file digests an undecodable file still has
        return line
    line.update(outcome.hashes)
    if outcome.pdq_quality is not None:
        line["pdq_quality"] = outcome.pdq_quality
    if outcome.pdq512_quality is not None:
        line["pdq512_quality"] = outcome.pdq512_quality
    for key in ("width", "height", "format"):
        if getattr(outcome, key) is not None:
            line[key] = getattr(outcome, key)
    extra = {p.name: p.value for p in outcome.probes if p.name not in PRIMARY_PROBES}
    if extra:
        line["probes"] = extra
    return line


def hash_files(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.", show_default=False, parser=local_path)],
    signals: Annotated[str, typer.Option("--signals", "-s", help="Comma-separated signals to compute.")] = ",".join(
        IMAGE_SIGNALS
    ),
    no_dihedral: Annotated[bool, typer.Option("--no-dihedral", help="Skip the rotated/flipped PDQ hashes.")] = False,
    no_regions: Annotated[bool, typer.Option("--no-regions", help="Skip PDQ of trimmed/collage regions.")] = False,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse images with more pixels than this (decompression bombs).")
    ] = DEFAULT_MAX_PIXELS,
) -> None:
    """Hash image files: one JSON line per file; exit 1 if any file failed."""
    from cleanset import api

    engine = api.hasher(parse_signals(signals), dihedral=not no_dihedral, regions=not no_regions, max_pixels=max_pixels)
    failed = 0
    for path in iter_files(paths):
        try:
            data = path.read_bytes()
        except OSError as e:
            outcome = HashOutcome.failed(f"read: {e.strerror or e}")
        else:
            outcome = engine.hash_bytes(data)
        failed += outcome.status is Status.FAILED
        typer.echo(json.dumps(outcome_json(path, outcome)))
    if failed:
        raise typer.Exit(int(ExitCode.FAILED_ITEMS))
