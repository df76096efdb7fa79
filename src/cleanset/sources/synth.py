"""Benign sample datasets in every supported layout, for tests, the demo and the benchmarks.

Images come from scikit-image's bundled photos (read from the package directory; nothing is downloaded), cropped,
scaled and tinted so that many distinct images come from a few photos, plus images drawn by code. The writers
reproduce the on-disk layouts the sources read (img2dataset's webdataset and parquet output, Hugging Face image
structs, LAION-style metadata), so a test of a reader is a test against the real layout.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

# Bundled scikit-image photos (colour or grey) used as raw material; all ship inside the wheel.
PHOTO_FILES: tuple[str, ...] = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "camera.png",
    "coins.png",
    "moon.png",
    "horse.png",
    "retina.jpg",
    "ihc.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "page.png",
)
FIXED_MTIME = 1_700_000_000  # reproducible tars


class SampleItem(NamedTuple):
    key: str
    data: bytes
    caption: str
    url: str


@cache
def _photos() -> tuple[np.ndarray, ...]:
    import skimage.data

    base = Path(skimage.data.__file__).parent
    out = []
    for name in PHOTO_FILES:
        p = base / name
        if p.is_file():
            with Image.open(p) as im:
                out.append(np.asarray(im.convert("RGB")))
    if not out:
        raise RuntimeError(f"no scikit-image photos found in {base}")
    return tuple(out)


def _drawn(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = ((x / w) * rng.uniform(0.2, 1) + (y / h) * rng.uniform(0.2, 1))[..., None] / 2
    img = Image.fromarray((c0 * (1 - t) + c1 * t).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        x1, y1 = int(rng.integers(x0 + 8, w + 1)), int(rng.integers(y0 + 8, h + 1))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
    return img


def _photo_variant(rng: np.random.Generator, photo: np.ndarray) -> Image.Image:
    h, w = photo.shape[:2]
    cw = int(rng.integers(max(32, w // 4), w + 1))
    ch = int(rng.integers(max(32, h // 4), h + 1))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    side = int(rng.integers(64, 385))
    scale = side / max(cw, ch)
    img = Image.fromarray(np.ascontiguousarray(photo[y0 : y0 + ch, x0 : x0 + cw]))
    img = img.resize((max(16, round(cw * scale)), max(16, round(ch * scale))), Image.Resampling.BILINEAR)
    tinted = (np.asarray(img, dtype=np.float32) * rng.uniform(0.75, 1.25, 3)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(tinted)


def sample_images(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` distinct benign images as (file name, encoded bytes): mostly photo crops, every fourth drawn by code.

    Every fifth image is PNG, the rest JPEG; the same ``(n, seed)`` always gives the same bytes.
    """
    photos = _photos()
    rng = np.random.default_rng(seed)
    out: list[tuple[str, bytes]] = []
    seen: set[bytes] = set()
    i = 0
    while len(out) < n:
        if i % 4 == 3:
            img = _drawn(rng, (int(rng.integers(64, 257)), int(rng.integers(64, 257))))
        else:
            img = _photo_variant(rng, photos[i % len(photos)])
        buf = io.BytesIO()
        if i % 5 == 4:
            img.save(buf, format="PNG")
            ext = "png"
        else:
            img.save(buf, format="JPEG", quality=int(rng.integers(80, 96)))
            ext = "jpg"
        data = buf.getvalue()
        digest = hashlib.md5(data).digest()
        if digest not in seen:
            seen.add(digest)
            out.append((f"sample-{len(out):05d}.{ext}", data))
        i += 1
    return out


def sample_items(n: int, seed: int = 0, per_shard: int = 10_000) -> list[SampleItem]:
    """Sample images with img2dataset-style keys (shard number + index), captions and example.org URLs."""
    digits = max(1, len(str(per_shard - 1)))
    items = []
    for i, (name, data) in enumerate(sample_images(n, seed)):
        key = f"{i // per_shard:05d}{i % per_shard:0{digits}d}"
        items.append(SampleItem(key, data, f"a benign sample picture number {i}", f"https://images.example.org/{name}"))
    return items


def image_ext(data: bytes) -> str:
    """File extension for encoded image bytes (``bin`` when unknown), so writers name members like img2dataset."""
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data.startswith(b"\x89PNG"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "bin"


def _size(data: bytes) -> tuple[int | None, int | None]:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # a deliberately broken sample has no size
        return None, None


def write_folder(root: Path, items: Sequence[SampleItem], subdirs: int = 0, captions: bool = True) -> Path:
    """``root/[dNN/]KEY.ext`` (+ ``KEY.txt``); ``subdirs`` > 0 spreads items over that many sub-directories."""
    for i, it in enumerate(items):
        d = root / f"d{i % subdirs:02d}" if subdirs else root
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{it.key}.{image_ext(it.data)}").write_bytes(it.data)
        if captions:
            (d / f"{it.key}.txt").write_text(it.caption)
    return root


def _meta_row(it: SampleItem, status: str = "success", error: str | None = None) -> dict[str, object]:
    w, h = _size(it.data) if status == "success" else (None, None)
    return {
        "url": it.url,
        "caption": it.caption,
        "key": it.key,
        "status": status,
        "error_message": error,
        "width": w,
        "height": h,
        "original_width": w,
        "original_height": h,
        "exif": None,
        "sha256": hashlib.sha256(it.data).hexdigest() if status == "success" else None,
    }


META_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("key", pa.string()),
        ("status", pa.string()),
        ("error_message", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("original_width", pa.int64()),
        ("original_height", pa.int64()),
        ("exif", pa.string()),
        ("sha256", pa.string()),
    ]
)


def _tar_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = FIXED_MTIME
    ti.mode = 0o444
    ti.uname = ti.gname = "bigdata"  # what webdataset's TarWriter writes
    tf.addfile(ti, io.BytesIO(data))


def write_webdataset(
    out_dir: Path, items: Sequence[SampleItem], per_shard: int = 100, failed_per_shard: int = 0
) -> list[Path]:
    """img2dataset ``output_format=webdataset``: ``NNNNN.tar`` + ``NNNNN.parquet`` + ``NNNNN_stats.json``.

    ``failed_per_shard`` adds that many failed-download rows (``status = failed_to_download``, no tar members) to
    each shard's Parquet, as img2dataset records them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tars = []
    for s, start in enumerate(range(0, max(len(items), 1), per_shard)):
        chunk = items[start : start + per_shard]
        name = f"{s:05d}"
        rows = []
        with tarfile.open(out_dir / f"{name}.tar", "w", format=tarfile.GNU_FORMAT) as tf:
            for it in chunk:
                row = _meta_row(it)
                rows.append(row)
                sample = {
                    image_ext(it.data): it.data,
                    "json": json.dumps(row, indent=4).encode(),
                    "txt": it.caption.encode(),
                }
                for ext in sorted(sample):  # webdataset's TarWriter writes extensions in sorted order
                    _tar_member(tf, f"{it.key}.{ext}", sample[ext])
        for j in range(failed_per_shard):
            ghost = SampleItem(f"{name}f{j:04d}", b"", "", f"https://images.example.org/gone/{name}-{j}.jpg")
            rows.append(_meta_row(ghost, "failed_to_download", "HTTP Error 404: Not Found"))
        pq.write_table(pa.Table.from_pylist(rows, schema=META_SCHEMA), out_dir / f"{name}.parquet")
        ok = len(chunk)
        stats = {
            "count": ok + failed_per_shard,
            "successes": ok,
            "failed_to_download": failed_per_shard,
            "failed_to_resize": 0,
            "duration": 1.0,
            "start_time": float(FIXED_MTIME),
            "end_time": float(FIXED_MTIME + 1),
            "status_dict": {
                "success": ok,
                **({"HTTP Error 404: Not Found": failed_per_shard} if failed_per_shard else {}),
            },
        }
        (out_dir / f"{name}_stats.json").write_text(json.dumps(stats, indent=4))
        tars.append(out_dir / f"{name}.tar")
    return tars


HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def write_parquet_bytes(
    out_dir: Path,
    items: Sequence[SampleItem],
    per_file: int = 100,
    style: str = "img2dataset",
    row_group_size: int = 100,
    failed_per_file: int = 0,
) -> list[Path]:
    """Parquet files with image bytes: ``style="img2dataset"`` (``key``, ``jpg``, ``txt`` + metadata columns; failed
    downloads as rows with null ``jpg``) or ``style="hf"`` (Hugging Face ``image`` struct and ``text``)."""
    if style not in ("img2dataset", "hf"):
        raise ValueError(f"unknown parquet style {style!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for s, start in enumerate(range(0, max(len(items), 1), per_file)):
        chunk = items[start : start + per_file]
        path = out_dir / (f"{s:05d}.parquet" if style == "img2dataset" else f"train-{s:05d}-of-NNNNN.parquet")
        if style == "img2dataset":
            rows = []
            for it in chunk:
                row = _meta_row(it)
                row["txt"] = it.caption
                row["jpg"] = it.data
                rows.append(row)
            for j in range(failed_per_file):
                ghost = SampleItem(f"{s:05d}f{j:04d}", b"", "", f"https://images.example.org/gone/{s}-{j}.jpg")
                row = _meta_row(ghost, "failed_to_download", "HTTP Error 404: Not Found")
                row["txt"] = None
                row["jpg"] = None
                rows.append(row)
            schema = META_SCHEMA.append(pa.field("txt", pa.string())).append(pa.field("jpg", pa.binary()))
            table = pa.Table.from_pylist(rows, schema=schema)
        else:
            features = {"image": {"_type": "Image"}, "text": {"dtype": "string", "_type": "Value"}}
            schema = pa.schema([("image", HF_IMAGE), ("text", pa.string())]).with_metadata(
                {"huggingface": json.dumps({"info": {"features": features}})}
            )
            table = pa.Table.from_pylist(
                [
                    {"image": {"bytes": it.data, "path": f"{it.key}.{image_ext(it.data)}"}, "text": it.caption}
                    for it in chunk
                ],
                schema=schema,
            )
        pq.write_table(table, path, row_group_size=row_group_size)
        files.append(path)
    return files


def laion_url(i: int) -> str:
    """The URL :func:`write_laion_metadata` puts in global row ``i`` (for building stand-in URL banks)."""
    return f"https://cdn{i % 1000}.example.org/photos/{i}.jpg"


def _hex_strings(raw: np.ndarray, width: int) -> pa.Array:
    """Rows of ``raw`` (uint8, shape (n, width // 2)) as lower-case hex strings, without a Python loop."""
    n = raw.shape[0]
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((n, width), dtype=np.uint8)
    out[:, 0::2] = digits[raw >> 4]
    out[:, 1::2] = digits[raw & 15]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.tobytes()))


def write_laion_metadata(
    out_dir: Path,
    n_rows: int,
    files: int = 1,
    seed: int = 0,
    row_group_size: int = 1 << 17,
    hashes: Sequence[str] = ("md5",),
) -> list[Path]:
    """``files`` LAION-style metadata Parquet files of ``n_rows`` rows in all: ``URL``, ``TEXT``, ``WIDTH``,
    ``HEIGHT``, ``similarity`` and the given hash columns.

    Row ``i`` has URL :func:`laion_url`; hash columns hold pseudo-random hex from ``seed`` (digests of nothing real:
    read the column back to build a stand-in bank). Built column-wise, so 10 million rows take seconds.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    per = -(-n_rows // files) if files else 0
    for f in range(files):
        lo, hi = f * per, min(n_rows, (f + 1) * per)
        path = out_dir / f"part-{f:05d}.parquet"
        with pq.ParquetWriter(path, _laion_schema(hashes)) as w:
            for start in range(lo, max(hi, lo), row_group_size):
                end = min(hi, start + row_group_size)
                w.write_table(_laion_chunk(rng, start, end, hashes))
        paths.append(path)
    return paths


def _laion_schema(hashes: Sequence[str]) -> pa.Schema:
    fields = [
        ("URL", pa.string()),
        ("TEXT", pa.string()),
        ("WIDTH", pa.int32()),
        ("HEIGHT", pa.int32()),
        ("similarity", pa.float32()),
    ]
    return pa.schema(fields + [(h, pa.string()) for h in hashes])


def _laion_chunk(rng: np.random.Generator, start: int, end: int, hashes: Sequence[str]) -> pa.Table:
    n = end - start
    idx = np.arange(start, end, dtype=np.int64)
    s_idx = pc.cast(pa.array(idx), pa.string())
    s_host = pc.cast(pa.array(idx % 1000), pa.string())
    url = pc.binary_join_element_wise("https://cdn", s_host, ".example.org/photos/", s_idx, ".jpg", "")
    text = pc.binary_join_element_wise("a benign stock photo, item ", s_idx, "")
    cols: dict[str, pa.Array] = {
        "URL": url,
        "TEXT": text,
        "WIDTH": pa.array(rng.integers(64, 4096, n, dtype=np.int32)),
        "HEIGHT": pa.array(rng.integers(64, 4096, n, dtype=np.int32)),
        "similarity": pa.array(rng.uniform(0.28, 0.45, n).astype(np.float32)),
    }
    widths = {"md5": 16, "sha1": 20, "sha256": 32}
    for h in hashes:
        cols[h] = _hex_strings(rng.integers(0, 256, (n, widths[h]), dtype=np.uint8), widths[h] * 2)
    return pa.Table.from_pydict(cols, schema=_laion_schema(hashes))


def write_laion_rows(path: Path, items: Sequence[SampleItem], with_md5: bool = True) -> Path:
    """LAION-style metadata for known items (URL, TEXT, and the md5 of their bytes): for join and match tests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols: dict[str, list[object]] = {
        "URL": [it.url for it in items],
        "TEXT": [it.caption for it in items],
        "SAMPLE_ID": list(range(len(items))),
    }
    if with_md5:
        cols["md5"] = [hashlib.md5(it.data).hexdigest() for it in items]
    pq.write_table(pa.Table.from_pydict(cols), path)
    return path
