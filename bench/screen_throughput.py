"""Screening throughput per core and the classifier's scores on benign photos, in one run.

Photos: ``tests/photos.py``'s corpus (Debian wallpapers and scikit-image's colour photos, nothing downloaded), the
first ``--limit`` of them. Everything runs on one core (ONNX Runtime on one thread, BLAS and Numba on one); times
are the process's CPU time, so other load on a shared machine does not count.

Printed, each as a ratio against its baseline measured in the same process:

- classifier images/s per core, unbatched (one picture per inference) and batched (``--batch``, the scan's, and
  16), from decoded pixels: Open-NSFW's preprocessing (resize, JPEG round trip, crop) plus inference; the figure
  at the scan's batch size is the model's own cost per picture;
- scan items/s with screening off and on (``--screen``: open_nsfw on every picture, caption rules, dataset scores),
  inline on one core over the same photos written as a folder with captions (fastest of ``--rounds``); the
  integration overhead is what the screened scan costs beyond the unscreened scan plus the model's own cost (its
  fastest standalone figure above), as a share of the model's cost (required: under 10 %);
- the distribution of open_nsfw scores over the corpus, and the share at or above the default threshold (0.8);
- caption rules: benign captions per second through ``screen_text`` with the shipped lists, against
  ``normalise`` alone as the baseline, and the two texts the review timed (20,000 words against 500 stand-in
  phrases; a run of half a million single letters), each against normalising the same text (``--text-only``
  prints this part alone).

    .venv/bin/python bench/screen_throughput.py [--limit N] [--batch B] [--text-only]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import cleanset.api as api  # noqa: E402
from cleanset.assess.policy import DEFAULT_THRESHOLDS  # noqa: E402
from cleanset.screening.classifier import OpenNsfw  # noqa: E402
from cleanset.screening.stage import ScreenConfig  # noqa: E402
from photos import iter_photo_corpus  # noqa: E402

MAX_OVERHEAD = 0.10
BIG_BATCH = 16
CAPTIONS = (
    "a red bicycle by the lake",
    "sunset!! over the sea #travel #photo",
    "s u n s e t over the hills",
    "b1cycle rental, 4 hours",
    "Ça va: a café in São Paulo",
    "a bowl of noodles and a cup of tea",
)


def text_bench() -> None:
    """Caption rules against normalisation alone, on benign captions and the two worst cases the review timed."""
    from cleanset.screening.text import TermList, default_lists, normalise, screen_text

    lists = default_lists()
    captions = [f"{CAPTIONS[i % len(CAPTIONS)]} {i}" for i in range(5000)]
    screen_text(captions[0], lists)
    t_norm = min(_cpu(lambda: [normalise(c) for c in captions]) for _ in range(3))
    t_rules = min(_cpu(lambda: [screen_text(c, lists) for c in captions]) for _ in range(3))
    n = len(captions)
    print("\ncaption rules (shipped lists), captions/s per core")
    print(f"  normalise only      {n / t_norm:10.0f}   ratio 1.00 (baseline)")
    print(f"  screen_text         {n / t_rules:10.0f}   ratio {t_norm / t_rules:.2f}")
    phrases = TermList("standin", 1, "sexual", tuple(f"lake{i} kite{i}" for i in range(500)))
    words = " ".join(f"lake{i % 500} filler" for i in range(10_000))
    spaced = " ".join("ab" * 250_000)
    for label, text, tl in (("20k words, 500 phrases", words, [phrases]), ("500k spaced letters", spaced, lists)):
        base = _cpu(lambda text=text: normalise(text))
        t = _cpu(lambda text=text, tl=tl: screen_text(text, tl))
        print(f"  {label:<24} {t:6.3f} s CPU   ratio to normalising it {t / base:.1f}")


def _rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _cpu(fn: object) -> float:
    t = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=48, help="photos from the corpus (default 48)")
    ap.add_argument("--batch", type=int, default=8, help="classifier batch size of the scan (default 8)")
    ap.add_argument("--rounds", type=int, default=3, help="scans per setting, fastest counts (default 3)")
    ap.add_argument("--text-only", action="store_true", help="only the caption rules")
    args = ap.parse_args()
    if args.text_only:
        text_bench()
        return

    photos = []
    for p in iter_photo_corpus():
        photos.append(p)
        if len(photos) >= args.limit:
            break
    n = len(photos)
    print(f"photos: {n} (mean {np.mean([p.width * p.height for p in photos]) / 1e6:.2f} MP), batch {args.batch}")
    images = [_rgb(p.data) for p in photos]

    clf = OpenNsfw(batch_size=args.batch)
    for bs in sorted({1, args.batch, BIG_BATCH}):  # sessions size their buffers on a first call of each shape
        clf.score_prepared(np.stack([clf.prepare(images[0])] * bs))

    # -- classifier, from decoded pixels ---------------------------------------------------------------------------
    prepared: list[np.ndarray] = []
    t_prepare = _cpu(lambda: prepared.extend(clf.prepare(im) for im in images))
    scores: list[np.ndarray] = []

    def infer(bs: int) -> float:
        scores.clear()
        return _cpu(lambda: scores.extend(clf.score_prepared(np.stack(prepared[i : i + bs])) for i in range(0, n, bs)))

    t_single = infer(1) + t_prepare
    timed = {bs: infer(bs) for bs in sorted({args.batch, BIG_BATCH} - {1})}
    t_infer = timed.get(args.batch, t_single - t_prepare)
    infer(args.batch)
    values = np.concatenate(scores)
    t_batched = t_infer + t_prepare
    print("\nclassifier (open_nsfw), images/s per core, from decoded pixels (preprocessing + inference)")
    print(f"  unbatched           {n / t_single:8.1f}   ratio 1.00 (baseline)")
    for bs, t in timed.items():
        print(f"  batched ({bs:>3})       {n / (t + t_prepare):8.1f}   ratio {t_single / (t + t_prepare):.2f}")
    print(
        f"    preprocessing {t_prepare / n * 1e3:.1f} ms/image; "
        f"inference {t_infer / n * 1e3:.1f} ms/image at batch {args.batch}"
    )

    # -- scan with screening off and on -----------------------------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "photos"
        data.mkdir()
        for i, p in enumerate(photos):
            (data / f"{i:05d}.jpg").write_bytes(p.data)
            (data / f"{i:05d}.txt").write_text("a benign photo of a landscape", encoding="utf-8")
        home = root / "home"
        os.environ["CLEANSET_HOME"] = str(home)
        banks = api.banks_from_rows(home, "standin", [("md5", hashlib.md5(b"nothing listed").hexdigest(), "E0")])
        config = ScreenConfig(batch_size=args.batch)

        def scan(out: str, screen: ScreenConfig | None) -> float:
            return _cpu(lambda: api.scan([data], banks, root / out, executor="inline", workers=1, screen=screen))

        # the model's own cost as it runs inside the scan (its preprocessing and inference, timed where they run)
        in_scan = {"prepare": 0.0, "infer": 0.0}
        prepare, score_prepared = OpenNsfw.prepare, OpenNsfw.score_prepared

        def timed_prepare(self: OpenNsfw, rgb: np.ndarray) -> np.ndarray:
            t = time.process_time()
            try:
                return prepare(self, rgb)
            finally:
                in_scan["prepare"] += time.process_time() - t

        def timed_infer(self: OpenNsfw, batch: np.ndarray) -> np.ndarray:
            t = time.process_time()
            try:
                return score_prepared(self, batch)
            finally:
                in_scan["infer"] += time.process_time() - t

        scan("warm", config)  # imports, kernels and the model session paid once, outside the timings
        t_off = min(scan(f"off{r}", None) for r in range(args.rounds))
        on = []
        OpenNsfw.prepare, OpenNsfw.score_prepared = timed_prepare, timed_infer  # type: ignore[method-assign]
        try:
            for r in range(args.rounds):
                in_scan.update(prepare=0.0, infer=0.0)
                on.append((scan(f"on{r}", config), dict(in_scan)))
        finally:
            OpenNsfw.prepare, OpenNsfw.score_prepared = prepare, score_prepared  # type: ignore[method-assign]
        t_on, model_in_scan = min(on, key=lambda x: x[0])
        t_model_scan = model_in_scan["prepare"] + model_in_scan["infer"]
    t_model = min(t_single, t_batched, *(t + t_prepare for t in timed.values()))  # the model alone, at its fastest
    overhead = (t_on - t_off - t_model) / t_model
    print("\nscan items/s per core (inline, hashing md5, sha1, sha256, pdq x8, pdq512, phash, regions)")
    print(f"  screening off       {n / t_off:8.1f}   ratio 1.00 (baseline)")
    print(f"  screening on        {n / t_on:8.1f}   ratio {t_off / t_on:.2f}")
    integration = (t_on - t_off - t_model_scan) / t_model_scan
    print(
        f"  model's own cost in the scan: preprocessing {model_in_scan['prepare'] / n * 1e3:.1f} ms/image, "
        f"inference {model_in_scan['infer'] / n * 1e3:.1f} ms/image (standalone, at its fastest: "
        f"{t_model / n * 1e3:.1f} ms/image in all)"
    )
    print(
        f"  integration overhead beyond the model's own cost in the scan: {integration * 100:+.1f} % of it "
        f"({'within' if integration < MAX_OVERHEAD else 'OVER'} the {MAX_OVERHEAD:.0%} budget)"
    )
    print(
        f"  beyond the model's standalone cost (adds what interleaving with hashing costs the model, cache): "
        f"{overhead * 100:+.1f} %"
    )

    # -- score distribution -------------------------------------------------------------------------------------------
    threshold = float(DEFAULT_THRESHOLDS["classifier.*"])
    qs = np.quantile(values, [0.5, 0.9, 0.99, 1.0])
    print(f"\nopen_nsfw scores on the benign corpus ({n} photos)")
    print(f"  median {qs[0]:.4f}  p90 {qs[1]:.4f}  p99 {qs[2]:.4f}  max {qs[3]:.4f}")
    edges = [0.0, 0.01, 0.05, 0.2, 0.5, 0.8, 1.0]
    counts, _ = np.histogram(values, bins=edges)
    for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True):
        print(f"  [{lo:.2f}, {hi:.2f}{']' if hi == 1.0 else ')'}  {int(c):4d}  {c / n:6.1%}")
    above = float(np.mean(values >= threshold))
    print(f"  at or above the default threshold {threshold:g}: {int(np.sum(values >= threshold))} ({above:.1%})")
    text_bench()


if __name__ == "__main__":
    main()
