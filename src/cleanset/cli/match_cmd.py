"""`cleanset match`: hashes from the command line or a file, matched against chosen banks; JSON lines out.

Input lines are either one hex hash each or the JSON lines `cleanset hash` writes (then every signal present is
probed, PDQ with its quality so the quality gate applies). Output names each match by bank, version, entry id,
signal, distance and probe, never by the bank's value, and gives the verdict and reasons ``cleanset.assess`` gives a
scan with the default policy (banks stored as allow lists counted as such), so `match` and `scan` never disagree.

Exit status, so a shell pipeline can stop on a hit without parsing the output: 0 when every input was checked and
none matched, 1 when any input matched (or could not be hashed, so was matched by its file digests only: that is
not a clean answer, and a screening step fails closed), 2 on a usage error (bad option, unknown bank, malformed
input). The numbers are grep's three outcomes with 0 and 1 turned round, as virus scanners have them: "clean" is
the success a `set -e` script goes on after.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from cleanset.cli import options
from cleanset.cli.conventions import local_path
from cleanset.errors import ExitCode, InputFormatError, UserError
from cleanset.records import Probe

MATCHED = 1  # exit status when any input matched (see the module docstring)
BATCH = 4096  # inputs matched per batch: one index query per (bank, signal) for the whole batch

# `cleanset hash` JSON: primary hash field -> (probe name, bank signal, quality field)
HASH_FIELDS = {
    "md5": ("md5", "md5", None),
    "sha1": ("sha1", "sha1", None),
    "sha256": ("sha256", "sha256", None),
    "pdq": ("pdq/original", "pdq", "pdq_quality"),
    "pdq512": ("pdq512/original", "pdq", "pdq512_quality"),
    "phash": ("phash", "phash", None),
    "url_md5": ("url_md5", "url_md5", None),
    "url_sha1": ("url_sha1", "url_sha1", None),
}
NAME_FIELDS = ("input", "key", "path", "url", "file")
BANK_SIGNAL = {"pdq512": "pdq"}  # hashing dialects matched against another signal's banks


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("match")(match)


def match(
    hashes: Annotated[list[str] | None, typer.Argument(help="Hex hashes to match.", show_default=False)] = None,
    bank: Annotated[
        list[str] | None,
        typer.Option("--bank", "-b", help="Bank to match against, NAME or NAME@VERSION (repeat for several)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="One hash per line, or `cleanset hash` JSON lines ('-' reads standard input).",
            parser=local_path,
        ),
    ] = None,
    signal: Annotated[
        str | None,
        typer.Option(help="Signal of bare hashes (default: every signal of that length the banks hold)."),
    ] = None,
    quality_gate: Annotated[
        int,
        typer.Option(
            help="PDQ probes below this quality (0-100) are matched exactly only.", callback=options.quality_gate
        ),
    ] = options.DEFAULT_QUALITY_GATE,
) -> None:
    """Match hashes against banks and write one JSON line per input: input, matches, notes.

    Exit status: 0 nothing matched, 1 something matched (or an input could not be hashed), 2 usage error.
    """
    from cleanset import api

    if not bank:
        raise UserError("name at least one bank with --bank")
    if not hashes and file is None:
        raise UserError("give hashes as arguments or a file with --file")
    banks = api.Banks(options.open_banks(bank), quality_gate)
    held = set(banks.matcher.signals())
    if signal is not None:
        from cleanset.signals import get_signal

        get_signal(signal)  # unknown name: a clear error listing the known ones

    inputs: Iterator[dict[str, Any]] = _from_args(hashes or [], signal, held)
    if file is not None:
        inputs = _chain(inputs, _from_file(file, signal, held))
    batch: list[dict[str, Any]] = []
    failed = matched = 0
    for item in inputs:
        batch.append(item)
        failed += bool(item.get("failed"))
        if len(batch) >= BATCH:
            matched += _emit(banks, batch)
            batch = []
    matched += _emit(banks, batch)
    if failed:
        typer.echo(f"{failed} input(s) could not be decoded: matched by file digests only", err=True)
        raise typer.Exit(int(ExitCode.FAILED_ITEMS))
    if matched:
        raise typer.Exit(MATCHED)


def _chain(*its: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for it in its:
        yield from it


def _emit(banks: Any, batch: Sequence[dict[str, Any]]) -> int:
    """Write one JSON line per input; returns how many inputs matched anything."""
    from cleanset import api

    failed = ["hashing failed" if item.get("failed") else None for item in batch]
    checks = api.check_many([item["probes"] for item in batch], banks, failed=failed)
    matched = 0
    for item, c in zip(batch, checks, strict=True):
        out: dict[str, Any] = {"input": item["input"]}
        if "line" in item:
            out["line"] = item["line"]
        out["matches"] = [asdict(m) for m in c.matches]
        out["verdict"] = c.verdict
        out["reasons"] = list(c.reasons)
        out["notes"] = item["notes"] + list(c.notes)
        matched += bool(c.matches)
        typer.echo(json.dumps(out))
    return matched


def _bare_probes(text: str, signal: str | None, held: set[str]) -> tuple[list[Probe], list[str]]:
    """Probes for one bare hash: its given signal, or every bank signal of that hex length that a chosen bank
    holds (a 64-digit value may be a sha256 or a pdq hash; both are asked). Raises ValueError with what is
    wrong. A pdq512 value is matched against pdq banks, as the scan does."""
    from cleanset.signals import get_signal, signal_names

    value = text.strip().lower()
    if signal is not None:
        bank_signal = BANK_SIGNAL.get(signal, signal)
        return [Probe(signal, bank_signal, get_signal(signal).validate(value))], []
    fits = [s for s in signal_names() if s not in BANK_SIGNAL and get_signal(s).hex_len() == len(value)]
    if not fits:
        raise ValueError(f"{len(value)} hex digits is no known signal's length")
    asked = [Probe(s, s, get_signal(s).validate(value)) for s in fits if s in held]
    notes = [] if asked else [f"no chosen bank holds {' or '.join(fits)} values"]
    return asked, notes


def _from_args(hashes: Sequence[str], signal: str | None, held: set[str]) -> Iterator[dict[str, Any]]:
    for i, text in enumerate(hashes, start=1):
        try:
            probes, notes = _bare_probes(text, signal, held)
        except (ValueError, UserError) as e:
            raise UserError(f"hash argument {i} ({text[:80]!r}): {e}") from None
        yield {"input": text.strip().lower(), "probes": probes, "notes": notes}


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    if str(path) == "-":
        yield from enumerate(sys.stdin, start=1)
        return
    try:
        with path.open(encoding="utf-8") as f:
            yield from enumerate(f, start=1)
    except OSError as e:
        raise UserError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputFormatError(str(path), "not UTF-8 text") from None


def _from_file(path: Path, signal: str | None, held: set[str]) -> Iterator[dict[str, Any]]:
    for line_no, raw in _lines(path):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            if text.startswith("{"):
                yield {**_from_hash_json(text), "line": line_no}
            else:
                probes, notes = _bare_probes(text, signal, held)
                yield {"input": text.lower(), "line": line_no, "probes": probes, "notes": notes}
        except (ValueError, UserError) as e:
            raise InputFormatError(str(path), str(e), line_no) from None


def _from_hash_json(text: str) -> dict[str, Any]:
    """One hash record: a list of probe objects, a ``hashes`` object, or the layout `cleanset hash` writes (hashes as
    top-level fields, extra PDQ probes as a ``probes`` object)."""
    from cleanset.signals import get_signal

    try:
        rec = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg}") from None
    if not isinstance(rec, dict):
        raise ValueError("expected a JSON object")
    name = next((str(rec[k]) for k in NAME_FIELDS if isinstance(rec.get(k), str)), "")
    if rec.get("status") == "failed":
        reason = rec.get("reason", "")
        digests = [Probe(s, s, _valid(get_signal(s), rec[s], s)) for s in ("md5", "sha1", "sha256") if rec.get(s)]
        what = "matched by file digests only" if digests else "not matched"
        return {"input": name, "probes": digests, "notes": [f"{what}: hashing failed: {reason}"], "failed": True}
    probes: list[Probe] = []
    if isinstance(rec.get("probes"), list) and rec["probes"]:
        for i, p in enumerate(rec["probes"]):
            if not isinstance(p, dict) or not all(isinstance(p.get(k), str) for k in ("name", "signal", "value")):
                raise ValueError(f"probes[{i}] needs string fields name, signal and value")
            quality = _quality(p.get("quality"), f"probes[{i}].quality")
            value = _valid(get_signal(p["signal"]), p["value"], f"probes[{i}].value")
            probes.append(Probe(p["name"], p["signal"], value, quality))
    elif isinstance(rec.get("hashes"), dict):
        for field, (probe_name, sig, quality_field) in HASH_FIELDS.items():
            value = rec["hashes"].get(field)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f"hashes.{field} must be a string")
            quality = _quality(rec.get(quality_field), quality_field) if quality_field else None
            probes.append(Probe(probe_name, sig, _valid(get_signal(sig), value, f"hashes.{field}"), quality))
    else:
        probes = _from_hash_lines(rec)
        if not probes:
            raise ValueError("a JSON line needs hash fields (md5, pdq, ...), 'probes' or 'hashes'")
    return {"input": name, "probes": probes, "notes": []}


def _from_hash_lines(rec: dict[str, Any]) -> list[Probe]:
    """Probes of the layout `cleanset hash` writes: each signal's value as a top-level field (``"md5": ...``,
    ``"pdq": ...``) with ``pdq_quality`` / ``pdq512_quality``, and the other PDQ probes (dihedral, regions) as a
    ``"probes"`` object of ``{probe name: value}``, all matched against ``pdq`` banks."""
    from cleanset.signals import get_signal

    probes: list[Probe] = []
    qualities: dict[str, int | None] = {}
    for field in ("pdq_quality", "pdq512_quality"):
        qualities[field] = _quality(rec.get(field), field)
    for field, (probe_name, sig, quality_field) in HASH_FIELDS.items():
        value = rec.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"{field} must be a string")
        if field == "pdq512" and value.strip().lower() == str(rec.get("pdq", "")).strip().lower():
            continue  # the same pixels as pdq (image within 512 px): the scan does not probe it twice
        quality = qualities[quality_field] if quality_field else None
        probes.append(Probe(probe_name, sig, _valid(get_signal(sig), value, field), quality))
    extra = rec.get("probes")
    if extra is None or extra == []:
        return probes
    if not isinstance(extra, dict):
        raise ValueError("probes must be a list of probe objects or an object of {name: pdq value}")
    for probe_name, value in extra.items():
        if not isinstance(value, str):
            raise ValueError(f"probes[{probe_name!r}] must be a string")
        field = "pdq512_quality" if probe_name.startswith("pdq512/") else "pdq_quality"
        where = f"probes[{probe_name!r}]"
        probes.append(Probe(probe_name, "pdq", _valid(get_signal("pdq"), value, where), qualities[field]))
    return probes


def _valid(sig: Any, value: str, where: str) -> str:
    try:
        return str(sig.validate(value))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _quality(value: object, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise ValueError(f"{where} must be an integer 0-100")
    return value
