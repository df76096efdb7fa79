"""A generation gate around a stand-in image generator, checked in-process or by a running `cleanset serve`.

The stand-in "generator" draws benign pictures with NumPy and Pillow (smooth colour fields, one per seed); it
takes the place of, say, a diffusers pipeline's output step. A stand-in list is made from one of the pictures it
draws, so the gate has something to block: asking for that seed is refused with the list's reason, any other seed
passes, and a prompt the caption rules flag is refused before anything is drawn.

    python examples/gate_example.py                       # in-process library, a temporary bank store
    python examples/gate_example.py --service URL --key K  # a running `cleanset serve` instead

Nothing here is, or depicts, abuse material: the "listed" picture is a colour field made by the code below.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from cleanset import api
from cleanset.client import Client
from cleanset.gate import Blocked, Checker, Gate, LocalChecker, ServiceChecker

LISTED_SEED = 3


def draw(prompt: str, seed: int = 0, size: int = 256) -> Image.Image:
    """The stand-in generator: a colour field that depends on the seed (the prompt only names the picture)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8))
    return small.resize((size, size), Image.Resampling.BICUBIC)


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def local_checker(home: Path) -> Checker:
    """A stand-in list holding the PNG digest and the PDQ of the picture ``LISTED_SEED`` draws."""
    data = png(draw("listed", LISTED_SEED))
    pdq = api.hash_bytes(data, ["pdq"], probes=False).hashes["pdq"]
    rows = [("md5", hashlib.md5(data).hexdigest(), "standin-1"), ("pdq", pdq, "standin-2")]
    return LocalChecker(api.banks_from_rows(home, "standin", rows))


def run(checker: Checker, out: list[str]) -> int:
    """Ask for a few pictures through the gate; returns how many were blocked."""
    gate = Gate(draw, checker)
    blocked = 0
    for prompt, seed in [("a lighthouse", 1), ("a meadow", 2), ("the listed one", LISTED_SEED), ("a harbour", 4)]:
        try:
            images = gate(prompt, seed=seed)
            out.append(f"seed {seed}: published {len(images)} image(s), {len(images[0]):,} bytes")
        except Blocked as e:
            blocked += 1
            out.append(f"seed {seed}: {e}")
    return blocked


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--service", help="base URL of a running `cleanset serve`")
    ap.add_argument("--key", help="API key (scope check) for --service")
    args = ap.parse_args(argv)
    lines: list[str] = []
    if args.service:
        with Client(args.service, args.key or "") as c:
            blocked = run(ServiceChecker(c), lines)
    else:
        with tempfile.TemporaryDirectory() as t:
            blocked = run(local_checker(Path(t)), lines)
    print("\n".join(lines))
    return 0 if blocked >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
