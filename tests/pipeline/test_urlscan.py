"""The column-wise URL metadata path gives, row for row, what the per-item path gives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cleanset.banks.base import MemoryBank
from cleanset.pipeline.scan import ScanOptions, execute, prepare
from cleanset.pipeline.urlhash import digest_column, interleave, normal_form_mask
from cleanset.pipeline.urlscan import NORMAL_URL, normalized_urls
from cleanset.runs.store import RunStore
from cleanset.signals.url import normalize_url

TRICKY_URLS = [
    "https://cdn1.example.org/photos/1.jpg",
    "HTTP://Example.COM:80/Path/A?Q=1#frag",
    "https://example.org:443",
    "https://example.org:8443/x?b=2&a=1",
    "http://User@Host.example/%7Efoo",
    "ftp://[2001:DB8::1]:21/file",
    "example.com/no-scheme#x",
    "  https://example.org/padded.jpg  ",
    "https://example.org/empty-query?",
    "https://example.org/two?q?",
    "https://example.org/a b.jpg",
    "https://exämple.org/ü.jpg",
    "https://example.org/tab\t.jpg",
    "http://[::1/broken-ipv6",
    "   ",
    "https://example.org/UPPER/Path.JPG",
    "https://example.org//double//slash",
    "https://example.org/semi;colon,comma'quote",
]


def test_regex_fast_rows_are_already_normal() -> None:
    """Rows the column path takes as they are must be exactly what normalize_url returns."""
    rng = np.random.default_rng(0)
    alphabet = [*list("abcAB019:/?#@[]% .-_~;,'\t"), "ü"]
    generated = ["".join(rng.choice(alphabet, size=rng.integers(1, 20))) for _ in range(3000)]
    # near-normal URLs: a plausible host, then a path from all of printable ASCII (and a few others)
    host_chars = [*list("abcxyz019.-"), "A", ":", "@", "_"]
    path_chars = [chr(c) for c in range(32, 127)] + ["\t", "é"]
    near = [
        "https://"
        + "".join(rng.choice(host_chars, size=rng.integers(1, 12)))
        + "/"
        + "".join(rng.choice(path_chars, size=rng.integers(0, 25)))
        for _ in range(3000)
    ]
    urls = TRICKY_URLS + [f"http{'s' * (i % 2)}://{g}" for i, g in enumerate(generated)] + generated + near
    norm, failed = normalized_urls(pa.array(urls, pa.string()))
    arr = pa.array(urls, pa.string())
    regex = pc.and_(pc.match_substring_regex(arr, NORMAL_URL), pc.invert(pc.ends_with(arr, "?")))
    assert normal_form_mask(arr).tolist() == regex.to_pylist()
    assert sum(regex.to_pylist()) > 500, "the sample must exercise the fast path"
    for i, (u, n) in enumerate(zip(urls, norm.to_pylist(), strict=True)):
        if i in failed:
            with pytest.raises(ValueError):
                if u.strip():
                    normalize_url(u)
                else:
                    raise ValueError("empty")
        else:
            assert n == normalize_url(u), u


@pytest.fixture()
def laion(tmp_path: Path) -> tuple[Path, list[str | None], list[str | None]]:
    n_plain = 300
    urls: list[str | None] = [f"https://cdn{i % 7}.example.org/photos/{i}.jpg" for i in range(n_plain)]
    urls += [*TRICKY_URLS, None, None, None, ""]
    rng = np.random.default_rng(3)
    md5: list[str | None] = [hashlib.md5(rng.bytes(8)).hexdigest() for _ in urls]
    md5[3] = "NOT-HEX"  # malformed given hash: the source fails the row
    md5[n_plain + len(TRICKY_URLS)] = None  # no URL and no hash: failed
    md5[5] = md5[5].upper()  # upper case is valid (lower-cased by the source)
    md5[7] = None
    path = tmp_path / "meta" / "part-00000.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.table({"URL": pa.array(urls, pa.string()), "TEXT": [f"t{i}" for i in range(len(urls))], "md5": md5}),
        path,
        row_group_size=128,
    )
    return path, urls, md5


def url_sha1(u: str) -> str:
    return hashlib.sha1(normalize_url(u).encode()).hexdigest()


def test_column_path_equals_item_path(laion, tmp_path: Path) -> None:
    path, urls, md5 = laion
    block = MemoryBank.from_hex(
        "hotline",
        [
            ("url_sha1", url_sha1(urls[10]), "u10"),
            ("url_sha1", url_sha1(urls[11]), "u11"),
            ("url_sha1", url_sha1("http://example.com/Path/A?Q=1"), "norm"),  # the tricky HTTP://Example.COM row
            ("url_md5", hashlib.md5(normalize_url(urls[12]).encode()).hexdigest(), "m12"),
            ("md5", md5[20], "c20"),
            ("md5", md5[5].lower(), "c5"),
        ],
    )
    allow = MemoryBank.from_hex(
        "known-ok", [("url_sha1", url_sha1(urls[11]), "ok11"), ("url_sha1", url_sha1(urls[30]), "ok30")], allow=True
    )
    tables = {}
    for fast in (True, False):
        out = tmp_path / f"run-{fast}"
        prep = prepare(ScanOptions(sources=[path], banks=[], out=out, executor="inline"), [block, allow])
        prep.ctx.url_fast_path = fast
        execute(prep, "inline")
        tables[fast] = RunStore(out).items_table().sort_by("key")
    a, b = tables[True], tables[False]
    assert a.num_rows == len(urls)
    for ra, rb in zip(a.to_pylist(), b.to_pylist(), strict=True):
        assert ra == rb
    assert a.equals(b)
    rows = {r["key"].rsplit("/", 1)[1]: r for r in a.to_pylist()}
    assert rows["10"]["verdict"] == "remove" and rows["12"]["verdict"] == "remove" and rows["20"]["verdict"] == "remove"
    assert rows["5"]["verdict"] == "remove"
    # the report's captions: flagged rows have theirs on both paths, kept rows none
    assert rows["10"]["caption"] and all(r["caption"] is None for r in rows.values() if r["verdict"] == "keep")
    assert rows["11"]["verdict"] == "keep" and any("allow bank" in n for n in rows["11"]["notes"])
    assert any("allow bank" in n for n in rows["30"]["notes"])
    assert rows["301"]["verdict"] == "remove"  # HTTP://Example.COM:80/Path/A?Q=1#frag
    assert rows["3"]["status"] == "failed" and "md5" in rows["3"]["reason"]
    failed = {k: r["reason"] for k, r in rows.items() if r["status"] == "failed"}
    assert any(r.startswith("url: cannot parse") for r in failed.values())
    assert any(r == "url: empty URL" for r in failed.values())
    s = RunStore(tmp_path / "run-True").summary
    assert s["items"] == s["kept"] + s["removed"] + s["review"] + s["failed"] == len(urls)
    assert RunStore(tmp_path / "run-True").manifest["signals"] == ["url_md5", "url_sha1"]


@pytest.mark.parametrize("algorithm", ["md5", "sha1"])
def test_digest_kernels_equal_hashlib(algorithm: str) -> None:
    """Every length across the 55/56/64-byte padding boundaries, and UTF-8 text."""
    rng = np.random.default_rng(1)
    msgs = [rng.bytes(n) for n in range(0, 260)] + ["https://exämple.org/ü".encode()]
    hexes, prefix = digest_column(pa.array(msgs, pa.binary()).slice(1), algorithm)
    want = [hashlib.new(algorithm, m).hexdigest() for m in msgs[1:]]
    assert hexes.to_pylist() == want
    assert prefix.tolist() == [int(w[:16], 16) for w in want]


def test_interleave_is_row_major() -> None:
    a = pa.array(["x", "a0", None, "a2"], pa.string()).slice(1)  # sliced: offsets do not start at 0
    b = pa.array(["b0", "b1", None], pa.string())
    present = np.array([[True, True], [False, True], [True, False]])
    assert interleave([a, b], present).to_pylist() == ["a0", "b0", "b1", "a2"]


def test_metadata_joined_with_downloaded_images(tmp_path: Path) -> None:
    """Rows whose URL was downloaded get their image's hashes and are matched by them too."""
    from cleanset.signals.engine import HashConfig, HashEngine
    from cleanset.sources.synth import sample_items, write_laion_rows, write_webdataset

    items = sample_items(12, seed=2)
    write_webdataset(tmp_path / "dl", items[:8], per_shard=4)  # the last four were never downloaded
    meta = write_laion_rows(tmp_path / "meta" / "part-0.parquet", items)
    pdq = HashEngine(HashConfig(signals=("pdq",), dihedral=False, regions=False)).hash_bytes(items[5].data)
    bank = MemoryBank.from_hex("hot", [("pdq", pdq.hashes["pdq"], "p5"), ("url_sha1", url_sha1(items[10].url), "u10")])
    opts = ScanOptions(sources=[meta], banks=[], out=tmp_path / "run", executor="inline", images=tmp_path / "dl")
    s = execute(prepare(opts, [bank]), "inline")
    rows = sorted(RunStore(tmp_path / "run").items_table().to_pylist(), key=lambda r: int(r["key"].rsplit("/")[1]))
    assert s["items"] == 12 and s["failed"] == 0
    assert [r["pdq"] is not None for r in rows] == [True] * 8 + [False] * 4
    assert all(r["url_sha1"] for r in rows)
    assert [r["verdict"] for r in rows].count("remove") == 2
    assert rows[5]["verdict"] == "remove" and rows[5]["matches"][0]["signal"] == "pdq"
    assert rows[10]["verdict"] == "remove" and rows[10]["matches"][0]["signal"] == "url_sha1"
    man = RunStore(tmp_path / "run").manifest
    assert man["source_options"] == {"images": str((tmp_path / "dl").resolve())}
    assert "pdq" in man["signals"] and "url_sha1" in man["signals"]
