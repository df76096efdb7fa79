"""HashEngine: one decode feeding every signal, the probe set, and failures as data."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from cleanset.errors import UserError
from cleanset.imaging.decode import decode_image
from cleanset.imaging.regions import Region
from cleanset.records import DIHEDRAL_NAMES, Status
from cleanset.signals import engine as engine_mod
from cleanset.signals import get_signal
from cleanset.signals.engine import HashConfig, HashEngine, probe_names
from cleanset.signals.pdq import pdq512_rgb, pdq_rgb
from cleanset.signals.phash import phash_rgb


def jpeg(shape: tuple[int, int], seed: int = 0) -> bytes:
    import skimage.data

    im = Image.fromarray(skimage.data.coffee()).resize((shape[1], shape[0]))
    if seed:
        im = im.rotate(seed)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return jpeg((700, 1000))


@pytest.fixture(scope="module")
def small_jpeg() -> bytes:
    return jpeg((300, 400))


def test_all_signals_from_one_decode(big_jpeg: bytes) -> None:
    out = HashEngine(HashConfig(regions=False)).hash_bytes(big_jpeg)
    assert out.status is Status.OK and out.reason is None
    rgb = decode_image(big_jpeg).rgb
    assert out.hashes["md5"] == hashlib.md5(big_jpeg).hexdigest()
    assert out.hashes["sha1"] == hashlib.sha1(big_jpeg).hexdigest()
    assert out.hashes["sha256"] == hashlib.sha256(big_jpeg).hexdigest()
    pdq, pdq512 = pdq_rgb(rgb), pdq512_rgb(rgb)
    assert out.hashes["pdq"] == pdq.hex and out.pdq_quality == pdq.quality
    assert out.hashes["pdq512"] == pdq512.hex and out.pdq512_quality == pdq512.quality
    assert out.hashes["pdq"] != out.hashes["pdq512"]
    assert out.hashes["phash"] == phash_rgb(rgb)  # shared scan == stand-alone computation
    assert (out.width, out.height, out.format) == (1000, 700, "JPEG")
    names = [p.name for p in out.probes]
    assert names == list(probe_names(HashConfig(regions=False), image_over_512=True))
    assert len(names) == len(set(names)) == 3 + 8 + 8 + 1
    by_name = {p.name: p for p in out.probes}
    for i, d in enumerate(DIHEDRAL_NAMES):
        assert by_name[f"pdq/{d}"].value == pdq.dihedral[i]
        assert by_name[f"pdq512/{d}"].value == pdq512.dihedral[i]
        assert by_name[f"pdq/{d}"].signal == by_name[f"pdq512/{d}"].signal == "pdq"
        assert by_name[f"pdq/{d}"].quality == pdq.quality
    assert by_name["md5"].quality is None and by_name["phash"].signal == "phash"


def test_small_image_has_no_pdq512_probes(small_jpeg: bytes) -> None:
    out = HashEngine(HashConfig(regions=False)).hash_bytes(small_jpeg)
    assert out.hashes["pdq512"] == out.hashes["pdq"]
    assert not [p for p in out.probes if p.name.startswith("pdq512/")]
    only512 = HashEngine(HashConfig(signals=("pdq512",), regions=False)).hash_bytes(small_jpeg)
    assert [p.name for p in only512.probes] == [f"pdq512/{d}" for d in DIHEDRAL_NAMES]


def test_no_dihedral(big_jpeg: bytes) -> None:
    out = HashEngine(HashConfig(signals=("pdq", "pdq512"), dihedral=False, regions=False)).hash_bytes(big_jpeg)
    assert [p.name for p in out.probes] == ["pdq/original", "pdq512/original"]


def test_region_probes(big_jpeg: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    regions = [Region("trim", 10, 600, 20, 900), Region("grid2x2.3", 350, 700, 500, 1000)]
    monkeypatch.setattr(engine_mod, "find_regions", lambda rgb: regions)
    rgb = decode_image(big_jpeg).rgb
    out = HashEngine(HashConfig(signals=("pdq",))).hash_bytes(big_jpeg)
    by_name = {p.name: p for p in out.probes}
    for r in regions:
        crop = pdq_rgb(np.ascontiguousarray(rgb[r.y0 : r.y1, r.x0 : r.x1]))
        for i, d in enumerate(DIHEDRAL_NAMES):
            assert by_name[f"{r.name}/{d}"].value == crop.dihedral[i]
            assert by_name[f"{r.name}/{d}"].quality == crop.quality
    off = HashEngine(HashConfig(signals=("pdq",), regions=False)).hash_bytes(big_jpeg)
    assert all(p.name.startswith("pdq/") for p in off.probes)


@pytest.mark.parametrize("data", [b"", b"not an image", b"\xff\xd8\xff" + b"\x00" * 100])
def test_bad_bytes_fail_with_file_digests_only(data: bytes) -> None:
    """An undecodable file gets no perceptual hash, but keeps its file digests so a list can still name it."""
    import hashlib

    out = HashEngine().hash_bytes(data)
    assert out.status is Status.FAILED
    assert out.reason and out.reason.startswith("decode: ")
    want = {name: hashlib.new(name, data).hexdigest() for name in ("md5", "sha1", "sha256")}
    assert out.hashes == want
    assert [(p.name, p.value) for p in out.probes] == list(want.items())
    assert out.pdq_quality is None and "pdq" not in out.hashes


def test_truncated_jpeg_fails(big_jpeg: bytes) -> None:
    out = HashEngine().hash_bytes(big_jpeg[: len(big_jpeg) // 2])
    assert out.status is Status.FAILED and "truncated" in (out.reason or "")


def test_pixel_limit(big_jpeg: bytes) -> None:
    out = HashEngine(HashConfig(max_pixels=500_000)).hash_bytes(big_jpeg)
    assert out.status is Status.FAILED and "too many pixels" in (out.reason or "")


def test_bytes_only_signals_skip_decoding() -> None:
    out = HashEngine(HashConfig(signals=("md5", "sha256"))).hash_bytes(b"not an image")
    assert out.status is Status.OK
    assert out.hashes == {
        "md5": hashlib.md5(b"not an image").hexdigest(),
        "sha256": hashlib.sha256(b"not an image").hexdigest(),
    }
    assert out.width is None


def test_hash_rgb() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    out = HashEngine(HashConfig(signals=("pdq", "phash"))).hash_rgb(rgb)
    assert out.status is Status.OK and out.hashes["pdq"] == pdq_rgb(rgb).hex
    assert out.hashes["phash"] == phash_rgb(rgb)
    assert HashEngine().hash_rgb(rgb[..., 0]).status is Status.FAILED
    strided = rgb[::2, ::-1]  # any memory layout gives the hashes of the same pixels
    assert HashEngine().hash_rgb(strided).hashes == HashEngine().hash_rgb(np.ascontiguousarray(strided)).hashes


def test_hash_url() -> None:
    engine = HashEngine(HashConfig(signals=("md5", "url_sha1")))
    out = engine.hash_url("HTTPS://Example.org:443/a?b#c")
    assert out.hashes == {"url_sha1": hashlib.sha1(b"https://example.org/a?b").hexdigest()}
    assert [p.name for p in out.probes] == ["url_sha1"]
    both = HashEngine().hash_url("http://example.org/x")
    assert set(both.hashes) == {"url_md5", "url_sha1"}
    assert HashEngine().hash_url("  ").status is Status.FAILED
    bad = HashEngine().hash_url("http://[::1/x")
    assert bad.status is Status.FAILED and (bad.reason or "").startswith("url: ")


@pytest.mark.parametrize("signals", [("md5", "nope"), (), ("pdq", "pdq")])
def test_config_errors_fail_fast(signals: tuple[str, ...]) -> None:
    with pytest.raises(UserError):
        HashConfig(signals=signals)
    with pytest.raises(UserError):
        HashConfig(max_pixels=0)


def test_16_bit_grey_resave_hashes_like_the_photo() -> None:
    """A photo re-saved as a 16-bit greyscale PNG: Pillow's clipping would hash a white page; scaling keeps it."""
    import skimage.data

    grey = np.asarray(Image.fromarray(skimage.data.coffee()).resize((400, 300)).convert("L"))
    buf = io.BytesIO()
    Image.fromarray(grey.astype(np.uint16) * 257).save(buf, format="PNG")
    out = HashEngine(HashConfig(regions=False)).hash_bytes(buf.getvalue())
    assert out.status is Status.OK
    distance = get_signal("pdq").distance
    photo = pdq_rgb(np.repeat(grey[:, :, None], 3, axis=2))
    clipped = pdq_rgb(np.where(grey[:, :, None] > 0, 255, 0).repeat(3, axis=2).astype(np.uint8))
    assert distance(out.hashes["pdq"], photo.hex) <= 4
    assert out.pdq_quality is not None and out.pdq_quality >= 50
    assert distance(out.hashes["pdq"], clipped.hex) > 64


def test_single_frame_items_get_no_frame_probes_or_scores(big_jpeg: bytes) -> None:
    out = HashEngine().hash_bytes(big_jpeg)
    assert out.scores == {} and not [p for p in out.probes if p.name.startswith("frame")]
