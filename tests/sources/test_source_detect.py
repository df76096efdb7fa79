"""Which source a path is, decided from what it holds; clear errors when it cannot be told."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from source_samples import items

from cleanset.errors import UserError
from cleanset.sources import SOURCES, detect_format, open_source
from cleanset.sources.synth import write_folder, write_laion_rows, write_parquet_bytes, write_webdataset


def test_detects_each_layout(tmp_path: Path) -> None:
    its = items()[:6]
    write_webdataset(tmp_path / "wds", its, per_shard=3)  # also holds .parquet siblings: still webdataset
    write_parquet_bytes(tmp_path / "pq", its)
    write_laion_rows(tmp_path / "laion" / "a.parquet", its)
    write_folder(tmp_path / "folder", its)
    assert detect_format([tmp_path / "wds"]) == "webdataset"
    assert detect_format([tmp_path / "wds" / "00000.tar", tmp_path / "wds" / "00001.tar"]) == "webdataset"
    assert detect_format([tmp_path / "pq"]) == "parquet"
    assert detect_format([tmp_path / "laion"]) == "laion"
    assert detect_format([tmp_path / "folder"]) == "folder"
    assert SOURCES.names() == ["folder", "laion", "parquet", "webdataset"]


def test_cannot_tell(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot tell"):
        detect_format([tmp_path / "empty"])
    write_parquet_bytes(tmp_path / "mixed", items()[:2])
    pq.write_table(pa.table({"URL": ["https://x.example/a.jpg"]}), tmp_path / "mixed" / "meta.parquet")
    with pytest.raises(UserError, match="--format"):
        detect_format([tmp_path / "mixed"])
    with pytest.raises(UserError, match="does not exist"):
        open_source([tmp_path / "nope"])


def test_forced_format_and_options(tmp_path: Path) -> None:
    write_folder(tmp_path / "folder", items()[:2])
    with pytest.raises(UserError, match=r"no \.tar shards"):
        open_source([tmp_path / "folder"], "webdataset")
    with pytest.raises(UserError, match="unknown source format 'tfrecord'"):
        open_source([tmp_path / "folder"], "tfrecord")
    with pytest.raises(UserError, match="does not take option"):
        open_source([tmp_path / "folder"], "folder", images=tmp_path)
