"""Small benign datasets made by code for the pipeline tests: smooth random-colour images (distinct PDQ hashes,
good quality) written as img2dataset-style WebDataset shards, and stand-in banks made from some of them."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cleanset.banks.base import MemoryBank


def image_bytes(seed: int, size: int = 96, fmt: str = "JPEG") -> bytes:
    """A smooth image: 6x6 random colours upscaled bicubically, so each seed gives a different, stable PDQ."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    img = small.resize((size, size), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write_tar(path: Path, members: Sequence[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
    return path


def wds_members(keys: Sequence[str], images: Sequence[bytes]) -> list[tuple[str, bytes]]:
    """img2dataset layout: KEY.jpg beside KEY.txt and KEY.json."""
    out: list[tuple[str, bytes]] = []
    for k, data in zip(keys, images, strict=True):
        out += [
            (f"{k}.jpg", data),
            (f"{k}.txt", f"caption {k}".encode()),
            (f"{k}.json", json.dumps({"key": k, "caption": f"caption {k}"}).encode()),
        ]
    return out


def make_wds(root: Path, shards: int, per_shard: int, size: int = 96) -> tuple[list[Path], dict[str, bytes]]:
    """``shards`` tar files of ``per_shard`` images each; returns the tar paths and key -> image bytes."""
    root.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    images: dict[str, bytes] = {}
    for s in range(shards):
        keys = [f"{s:05d}{i:04d}" for i in range(per_shard)]
        data = [image_bytes(s * 1000 + i, size) for i in range(per_shard)]
        images.update(zip(keys, data, strict=True))
        paths.append(write_tar(root / f"{s:05d}.tar", wds_members(keys, data)))
    return paths, images


def planted_bank(
    images: dict[str, bytes],
    keys: Sequence[str],
    name: str = "standin",
    noise: int = 0,
    seed: int = 1,
    md5: bool = True,
) -> tuple[MemoryBank, list[tuple[str, str, str]]]:
    """A bank holding the PDQ (optionally with ``noise`` bits flipped) and the md5 of the given items, plus
    random PDQ decoys. Returns the bank and its (signal, value, entry id) triples."""
    from cleanset.signals.engine import HashConfig, HashEngine

    engine = HashEngine(HashConfig(signals=("md5", "pdq"), dihedral=False, regions=False))
    rng = np.random.default_rng(seed)
    entries: list[tuple[str, str, str]] = []
    for i, k in enumerate(keys):
        out = engine.hash_bytes(images[k])
        v = bytearray(bytes.fromhex(out.hashes["pdq"]))
        for bit in rng.choice(256, size=noise, replace=False):
            v[bit // 8] ^= 1 << (bit % 8)
        entries.append(("pdq", v.hex(), f"pdq-{i}"))
        if md5:
            entries.append(("md5", out.hashes["md5"], f"md5-{i}"))
    for j in range(50):
        entries.append(("pdq", rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex(), f"decoy-{j}"))
    return MemoryBank.from_hex(name, entries), entries
