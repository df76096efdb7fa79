"""A listed picture hidden as a later frame is hashed, and frames past the cap send the item to review."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cleanset.assess.policy import UNSCREENED_FRAMES, decide
from cleanset.records import Match, Status, Verdict
from cleanset.signals import get_signal
from cleanset.signals.engine import HashConfig, HashEngine
from cleanset.signals.pdq import pdq_rgb

SIZE = (160, 160)
PDQ_THRESHOLD = 31


@pytest.fixture(scope="module")
def listed() -> Image.Image:
    """Stands in for a picture on a hash list: a benign photo."""
    import skimage.data

    return Image.fromarray(skimage.data.astronaut()).resize(SIZE)


@pytest.fixture(scope="module")
def listed_pdq(listed: Image.Image) -> str:
    return pdq_rgb(np.asarray(listed)).hex


def decoy(seed: int) -> Image.Image:
    im = Image.new("RGB", SIZE, (30 * seed % 256, 200, 90))
    draw = ImageDraw.Draw(im)
    for i in range(8):
        draw.ellipse((15 * i + seed, 10 * i, 15 * i + 60, 10 * i + 50), fill=(255 - 25 * i, 30 * i, 60 * seed % 256))
    return im


def save_all(frames: list[Image.Image], fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    frames = [f.copy() for f in frames]  # Pillow leaves encoder settings on appended frames
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], **kw)
    return buf.getvalue()


def nearest(probes: list[tuple[str, str]], target: str) -> tuple[int, str]:
    distance = get_signal("pdq").distance
    return min((distance(value, target), name) for name, value in probes)


FORMATS = {"GIF": {}, "TIFF": {}, "PNG": {}, "WEBP": {"quality": 90}, "MPO": {"quality": 90}}


@pytest.mark.parametrize("position", [1, 2])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_listed_picture_as_a_later_frame_is_found(
    listed: Image.Image, listed_pdq: str, fmt: str, position: int
) -> None:
    frames = [decoy(1), decoy(2)]
    frames.insert(position, listed)
    data = save_all(frames, fmt, **FORMATS[fmt])
    out = HashEngine().hash_bytes(data)
    assert out.status is Status.OK, out.reason
    pdq = [(p.name, p.value) for p in out.probes if p.signal == "pdq"]
    first = [(n, v) for n, v in pdq if not n.startswith("frame")]
    assert nearest(first, listed_pdq)[0] > PDQ_THRESHOLD  # the decoy in front does not match by itself
    distance, name = nearest(pdq, listed_pdq)
    assert distance <= PDQ_THRESHOLD and name.startswith(f"frame{position}/pdq/"), (distance, name)
    assert out.hashes["pdq"] == pdq_rgb(np.asarray(decoy(1).convert("RGB"))).hex or fmt in ("GIF", "WEBP", "MPO")
    assert UNSCREENED_FRAMES not in out.scores
    assert decide(out.status, [], out.scores) is Verdict.KEEP


def test_frame_probe_names() -> None:
    data = save_all([decoy(1), decoy(2)], "PNG")
    cfg = HashConfig(regions=False)
    names = [p.name for p in HashEngine(cfg).hash_bytes(data).probes]
    pixel = [n for n in names if not n.startswith("frame") and n not in ("md5", "sha1", "sha256")]
    assert names == ["md5", "sha1", "sha256", *pixel, *(f"frame1/{n}" for n in pixel)]
    assert "phash" in pixel and "pdq/original" in pixel
    regions = HashEngine().hash_bytes(save_all([decoy(1), decoy(2).crop((0, 0, 160, 120)).resize(SIZE)], "PNG"))
    assert len({p.name for p in regions.probes}) == len(regions.probes)


def test_frames_past_the_cap_go_to_review(listed: Image.Image) -> None:
    data = save_all([decoy(k) for k in range(1, 6)], "GIF")
    out = HashEngine(HashConfig(max_frames=2)).hash_bytes(data)
    assert out.status is Status.OK
    assert out.scores[UNSCREENED_FRAMES] == 3.0
    assert {p.name.split("/")[0] for p in out.probes if p.name.startswith("frame")} == {"frame1"}
    assert decide(out.status, [], out.scores) is Verdict.REVIEW
    remove = Match("list", 1, "e1", "pdq", 3, "pdq/original")
    assert decide(out.status, [remove], out.scores) is Verdict.REMOVE  # a match still wins
    whole = HashEngine(HashConfig(max_frames=5)).hash_bytes(data)
    assert whole.scores == {} and decide(whole.status, [], whole.scores) is Verdict.KEEP


def test_a_bad_frame_fails_the_item(listed: Image.Image) -> None:
    data = save_all([decoy(1), listed], "TIFF")
    with Image.open(io.BytesIO(data)) as im:
        im.seek(1)
        offset = im.tile[0].offset
    broken = data[:offset] + b"\xff" * 16  # the second page's pixels are cut off
    out = HashEngine().hash_bytes(broken)
    assert out.status is Status.FAILED and (out.reason or "").startswith("decode: ")
    assert [p.name for p in out.probes] == ["md5", "sha1", "sha256"]  # digests only, no frame 0 probes
    assert "pdq" not in out.hashes


def test_config_max_frames() -> None:
    from cleanset.errors import UserError

    assert HashConfig().max_frames == 32
    with pytest.raises(UserError):
        HashConfig(max_frames=0)
