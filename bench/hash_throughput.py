"""Hashing throughput per core: cleanset against the reference path, on real photos, in one run.

Photos: ``tests/photos.py``'s corpus, built from Debian's wallpaper packages (whole wallpapers up to 2.5 MP and
1440x1024 crops of larger JPEG ones, re-encoded as JPEG in memory) plus scikit-image's colour photos; nothing is
downloaded. Everything runs on one core (``NUMBA_NUM_THREADS=1`` and the BLAS/OpenMP thread variables are set to 1
before NumPy loads) and the bytes are already in memory. Time is the thread's CPU time (what one core spends, not
time spent waiting for a core on a shared machine); every method hashes each photo ``--rounds`` times, methods
interleaved photo by photo so a busy spell hits them alike, and the fastest of the rounds counts for each photo.

Methods (images/s):
- decode only: simplejpeg at full scale, accurate DCT and upsampling (cleanset's decoder; the floor);
- reference: what python-threatexchange does, Pillow decode + ``pdqhash.compute``;
- reference + dihedral: Pillow decode + ``pdqhash.compute_dihedral``;
- imagehash phash: Pillow decode + ``imagehash.phash``;
- cleanset pdq: ``HashEngine`` with pdq and its eight dihedral hashes (read bytes -> decode -> hashes);
- cleanset all: md5, sha256, pdq + dihedral, pdq512 + dihedral, phash from one read and one decode.

Ratios use CPU time; wall-clock images/s are printed beside it for reference (inflated by other load on a shared
machine). ``--profile`` adds where "cleanset all" spends its time beyond the decode, step by step (the engine's own
steps called one by one, same photos, same timing rule), to show what is left to share or speed up.

    .venv/bin/python bench/hash_throughput.py [--limit N] [--rounds R] [--profile]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import itertools  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import imagehash  # noqa: E402
import numpy as np  # noqa: E402
import pdqhash  # noqa: E402
import simplejpeg  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cleanset.signals.engine import HashConfig, HashEngine  # noqa: E402
from photos import iter_photo_corpus  # noqa: E402

REQUIRED = {"cleanset pdq": 4.0, "cleanset all": 3.0}
TARGET = {"cleanset pdq": 6.0, "cleanset all": 4.0}


def pillow_rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def methods() -> dict[str, Callable[[bytes], object]]:
    pdq_engine = HashEngine(HashConfig(signals=("pdq",), dihedral=True, regions=False))
    all_engine = HashEngine(
        HashConfig(signals=("md5", "sha256", "pdq", "pdq512", "phash"), dihedral=True, regions=False)
    )

    def imagehash_phash(data: bytes) -> object:
        with Image.open(io.BytesIO(data)) as im:
            return imagehash.phash(im.convert("RGB"))

    return {
        "decode only": lambda d: simplejpeg.decode_jpeg(d, colorspace="RGB", fastdct=False, fastupsample=False),
        "reference": lambda d: pdqhash.compute(pillow_rgb(d)),
        "reference + dihedral": lambda d: pdqhash.compute_dihedral(pillow_rgb(d)),
        "imagehash phash": imagehash_phash,
        "cleanset pdq": pdq_engine.hash_bytes,
        "cleanset all": all_engine.hash_bytes,
    }


def profile_steps(photos: list[bytes], rounds: int) -> None:
    """Milliseconds per photo of each step of "cleanset all" (fastest of ``rounds`` per photo and step)."""
    import hashlib

    from cleanset.imaging.decode import decode_image
    from cleanset.signals.pdq import result_from_samples, scan_both, shared_pass
    from cleanset.signals.phash import grey_plan, phash_from_blocks

    def steps(data: bytes) -> dict[str, Callable[[], object]]:
        rgb = decode_image(data).rgb
        plan = grey_plan(rgb.shape[0], rgb.shape[1])
        grey = (plan.block_rows, plan.block_cols, plan.sums) if plan is not None else ()
        full, small = scan_both(rgb, *grey)
        means = plan.means() if plan is not None else None
        return {
            "md5 + sha256 of the bytes": lambda: (hashlib.md5(data).digest(), hashlib.sha256(data).digest()),
            "decode (engine: RGBX)": lambda: decode_image(data),
            "scan: pdq + pdq512 + grey": lambda: scan_both(rgb, *grey),
            "scan: pdq only": lambda: scan_both(rgb),
            "phash from grey blocks": lambda: phash_from_blocks(means) if means is not None else None,
            "pdq hashes from samples x2": lambda: (result_from_samples(full), result_from_samples(small)),
            # what the engine calls: the scan and everything after it in one compiled call
            "shared pass (engine, 1 call)": lambda: shared_pass(rgb, grey_plan(*rgb.shape[:2]), True),
        }

    total: dict[str, float] = {}
    for data in photos:
        for name, fn in steps(data).items():
            best = float("inf")
            for _ in range(rounds):
                start = time.thread_time_ns()
                fn()
                best = min(best, time.thread_time_ns() - start)
            total[name] = total.get(name, 0.0) + best
    print()
    print("cleanset all, step by step (ms/image, thread CPU):")
    for name, ns in total.items():
        print(f"  {name:<30}{ns / len(photos) / 1e6:>8.3f}")


def timed(fn: Callable[[bytes], object], data: bytes, rounds: int) -> tuple[float, float]:
    """Fastest of ``rounds`` calls: (seconds of this thread's CPU time, seconds of wall-clock time)."""
    cpu = wall = float("inf")
    for _ in range(rounds):
        start_cpu, start_wall = time.thread_time_ns(), time.perf_counter_ns()
        fn(data)
        cpu = min(cpu, time.thread_time_ns() - start_cpu)
        wall = min(wall, time.perf_counter_ns() - start_wall)
    return cpu / 1e9, wall / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    ap.add_argument("--rounds", type=int, default=2, help="calls per photo and method; the fastest counts")
    ap.add_argument("--profile", action="store_true", help="also time each step of cleanset all")
    args = ap.parse_args()

    photos = list(itertools.islice(iter_photo_corpus(), args.limit))
    mp = [p.width * p.height / 1e6 for p in photos]
    sizes = [len(p.data) / 1e6 for p in photos]
    print(
        f"photos: {len(photos)} real photos (Debian wallpapers + scikit-image), JPEG in memory; "
        f"megapixels mean {statistics.mean(mp):.2f}, median {statistics.median(mp):.2f}, "
        f"min {min(mp):.2f}, max {max(mp):.2f}; file size mean {statistics.mean(sizes):.2f} MB"
    )
    print(
        "one core: NUMBA_NUM_THREADS=OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1, single process; "
        f"thread CPU time, fastest of {args.rounds} per photo"
    )

    fns = methods()
    for fn in fns.values():  # warm-up: numba loads its cached kernels, imports settle
        fn(photos[0].data)

    total = dict.fromkeys(fns, 0.0)
    total_wall = dict.fromkeys(fns, 0.0)
    for p in photos:
        for name, fn in fns.items():
            cpu, wall = timed(fn, p.data, args.rounds)
            total[name] += cpu
            total_wall[name] += wall

    ips = {name: len(photos) / t for name, t in total.items()}
    print()
    print(f"{'method':<24}{'images/s':>10}{'ms/image':>10}{'wall images/s':>15}")
    for name, v in ips.items():
        print(f"{name:<24}{v:>10.1f}{1000 / v:>10.2f}{len(photos) / total_wall[name]:>15.1f}")
    print()
    ref = ips["reference"]
    for name in ("cleanset pdq", "cleanset all"):
        ratio = ips[name] / ref
        verdict = "ok" if ratio >= REQUIRED[name] else "BELOW REQUIRED"
        print(
            f"{name} / reference (Pillow + pdqhash): {ratio:.2f}x "
            f"(required {REQUIRED[name]:.0f}x, target {TARGET[name]:.0f}x: {verdict})"
        )
    print(f"cleanset pdq / reference + dihedral: {ips['cleanset pdq'] / ips['reference + dihedral']:.2f}x")
    print(f"cleanset all / imagehash phash alone: {ips['cleanset all'] / ips['imagehash phash']:.2f}x")
    for name in ("cleanset pdq", "cleanset all"):
        print(f"{name} / decode only: {ips[name] / ips['decode only']:.2f} (1.00 = hashing costs nothing)")
    if args.profile:
        profile_steps([p.data for p in photos], args.rounds)


if __name__ == "__main__":
    main()
