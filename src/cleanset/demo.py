"""The built-in demo: the whole flow on benign images made in code, with a stand-in list made from some of them.

It shows what a real screening shows (edited copies found through the perceptual hash and its rotations, an exact
MD5 hit, an unreadable file recorded as failed rather than skipped, a list update re-matched without touching the
images, a cleaned dataset, a report and a verified attestation) without needing any real hotline list, any
network, or ../shared/. The demo keeps its own bank store under its output folder, so a user's banks are untouched.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from cleanset.banks.base import BankRow

# Items of the sample set that the stand-in list is made from, and how each list entry was edited first.
# Indices avoid every fourth sample (drawn by code, often too plain for a confident PDQ hash).
EDITS: dict[int, str] = {
    2: "mirrored",
    5: "re-encoded at JPEG quality 40",
    9: "resized to 60 %",
    14: "rotated 180 degrees",
    21: "brightened",
}
EXACT = 30  # listed by MD5: found byte for byte
UPDATE = 33  # added in the list's second version, found by rematch


@dataclass
class DemoResult:
    out: Path
    dataset: Path
    run: Path
    cleaned: Path
    report: Path
    attestation: Path
    summary: dict[str, Any]
    rematch_changes: dict[str, int]
    verified: bool
    planted: dict[str, str] = field(default_factory=dict)  # key -> how it was listed


def _edit(data: bytes, how: str) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    if how == "mirrored":
        img = ImageOps.mirror(img)
    elif how.startswith("resized"):
        img = img.resize((max(32, img.width * 6 // 10), max(32, img.height * 6 // 10)), Image.Resampling.BILINEAR)
    elif how.startswith("rotated"):
        img = img.transpose(Image.Transpose.ROTATE_180)
    elif how == "brightened":
        img = img.point(lambda v: min(255, int(v * 1.15)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=40 if "quality 40" in how else 90)
    return buf.getvalue()


def _pdq_of(data: bytes) -> str:
    from cleanset import api

    return api.hash_bytes(data, signals=("pdq",), probes=False).hashes["pdq"]


def run_demo(out: Path, n_images: int = 120, log: Callable[[str], None] = lambda s: None) -> DemoResult:
    """Build the demo dataset and list under ``out``, then scan, rematch, clean, report, attest and verify."""
    from cleanset import api
    from cleanset.actions import dsse
    from cleanset.banks.store import BankStore
    from cleanset.results.rematch import rematch
    from cleanset.runs.store import RunStore
    from cleanset.sources.synth import SampleItem, sample_items, write_webdataset

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    os.environ["CLEANSET_HOME"] = str(out / "bank-store")
    store = BankStore.default()

    # 1. A benign dataset in img2dataset's WebDataset layout, with one file cut short on purpose.
    items = sample_items(n_images, seed=7, per_shard=10_000)
    broken = items[-1]
    items[-1] = SampleItem(broken.key, broken.data[: len(broken.data) // 3], broken.caption, broken.url)
    dataset = out / "dataset"
    write_webdataset(dataset, items, per_shard=40)
    log(f"made {len(items)} benign images in {len(list(dataset.glob('*.tar')))} WebDataset shards: {dataset}")

    # 2. A stand-in list: edited copies of a few of those images, as a hotline's list would hold them.
    planted: dict[str, str] = {}
    rows = []
    for i, how in EDITS.items():
        rows.append(BankRow("pdq", _pdq_of(_edit(items[i].data, how)), f"standin-{i:03d}", {"edit": how}))
        planted[items[i].key] = f"pdq of a copy {how}"
    rows.append(BankRow("md5", hashlib.md5(items[EXACT].data).hexdigest(), f"standin-{EXACT:03d}", {}))
    planted[items[EXACT].key] = "md5 of the file"
    store.create_from_rows("demo-standin", rows, note="stand-in list made from benign demo images")
    log(f"stand-in list 'demo-standin' v1: {len(rows)} entries (never printed; matches name the entry id)")

    # 3. Scan.
    run = out / "run"
    summary = api.scan([dataset], ["demo-standin"], run)
    log(
        f"scanned {summary['items']} items: kept {summary['kept']}, removed {summary['removed']}, "
        f"review {summary['review']}, failed {summary['failed']}"
    )

    # 4. The list is updated: rematch the stored hashes, no image is read again.
    rows.append(BankRow("pdq", _pdq_of(items[UPDATE].data), f"standin-{UPDATE:03d}", {"edit": "none"}))
    planted[items[UPDATE].key] = "pdq, added in the list's second version"
    store.create_from_rows("demo-standin", rows, note="second version: one entry added")
    rem = rematch(run, ["demo-standin"])
    changes = dict(rem.changes)
    log(f"list updated to v2; rematch in {rem.seconds:.2f} s changed: {changes or 'nothing'}")

    # 5. Clean, report, attest, verify.
    cleaned = out / "cleaned"
    api.clean([dataset], run, cleaned)
    report, _ = api.report(run, json_out=True)
    keys = out / "keys"
    priv, pub = dsse.generate_keypair(keys)
    attestation = out / "attestation.intoto.json"
    api.attest(run, cleaned, priv, attestation)
    store_of_run = RunStore(run)
    result = api.verify(cleaned, attestation, pub)
    verified = not result.differences
    return DemoResult(
        out=out,
        dataset=dataset,
        run=run,
        cleaned=cleaned,
        report=report,
        attestation=attestation,
        summary=store_of_run.summary_of(store_of_run.latest_revision()),
        rematch_changes=changes,
        verified=verified,
        planted=planted,
    )
