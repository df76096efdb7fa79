"""The sample-dataset makers: distinct decodable images, reproducible, and LAION metadata in bulk."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image
from source_samples import items

from cleanset.sources.synth import laion_url, sample_images, write_laion_metadata


def test_sample_images_distinct_decodable_and_reproducible() -> None:
    imgs = items()
    assert len({hashlib.sha256(it.data).digest() for it in imgs}) == len(imgs)
    formats = set()
    for it in imgs:
        with Image.open(io.BytesIO(it.data)) as im:
            im.load()
            formats.add(im.format)
            assert min(im.size) >= 16
    assert formats == {"JPEG", "PNG"}
    assert [d for _, d in sample_images(3, seed=7)] == [it.data for it in imgs[:3]]
    assert sample_images(3, seed=8)[0][1] != imgs[0].data


def test_laion_metadata_rows_and_values(tmp_path: Path) -> None:
    files = write_laion_metadata(tmp_path, 10_001, files=3, row_group_size=2048, hashes=("md5", "sha256"))
    tables = [pq.read_table(f) for f in files]
    assert sum(t.num_rows for t in tables) == 10_001
    t = tables[1]
    first = tables[0].num_rows
    assert t["URL"][5].as_py() == laion_url(first + 5)
    assert pc.all(pc.match_substring_regex(t["md5"], "^[0-9a-f]{32}$")).as_py()
    assert pc.all(pc.match_substring_regex(t["sha256"], "^[0-9a-f]{64}$")).as_py()
    assert pc.count_distinct(t["md5"]).as_py() == t.num_rows
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 2
