"""Stand-in list values for the bank tests: random hex made from a seed (benign by construction)."""

from __future__ import annotations

import random
from pathlib import Path

WIDTH = {"pdq": 64, "md5": 32, "sha1": 40, "sha256": 64, "phash": 16, "url_md5": 32, "url_sha1": 40}


def hexes(signal: str, n: int, seed: int) -> list[str]:
    rng = random.Random(f"{signal}-{seed}")
    return [f"{rng.getrandbits(WIDTH[signal] * 4):0{WIDTH[signal]}x}" for _ in range(n)]


def write(path: Path, text: str, *, crlf: bool = False) -> Path:
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes(data.encode("utf-8"))
    return path


def csv_text(rows: list[tuple[str, str, str]], extra: str = "") -> str:
    head = "signal_type,signal_value,id" + (",source" if extra else "")
    body = [f"{s},{v},{i}" + (f",{extra}" if extra else "") for s, v, i in rows]
    return "\n".join([head, *body]) + "\n"
