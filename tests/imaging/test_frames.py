"""decode_frames: every frame of a multi-frame file, one at a time, each checked and converted like the first."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cleanset.imaging import decode as decode_mod
from cleanset.imaging.decode import DecodeError, decode_frames, decode_image

SIZE = (96, 64)


def drawn(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    im = Image.new("RGB", size, (40 * seed % 256, 90, 200))
    draw = ImageDraw.Draw(im)
    for i in range(6):
        x, y = (17 * i + 11 * seed) % size[0], (13 * i + 7 * seed) % size[1]
        draw.rectangle((x, y, x + 25, y + 18), fill=(60 * i % 256, 255 - 30 * i, 50 * seed % 256))
    return im


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.chelsea()).resize(SIZE)


def save_all(frames: list[Image.Image], fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    frames = [f.copy() for f in frames]  # Pillow leaves encoder settings on appended frames
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], **kw)
    return buf.getvalue()


def pillow_frames(data: bytes) -> list[np.ndarray]:
    out = []
    with Image.open(io.BytesIO(data)) as im:
        for k in range(getattr(im, "n_frames", 1)):
            im.seek(k)
            out.append(np.asarray(im.convert("RGB")))
    return out


MULTI = {
    "GIF": {},
    "PNG": {},  # APNG
    "WEBP": {"lossless": True},
    "TIFF": {},
}


@pytest.mark.parametrize("fmt", list(MULTI))
def test_every_frame_as_pillow_composites_it(photo: Image.Image, fmt: str) -> None:
    frames = [drawn(1), drawn(2), photo, drawn(3)]
    data = save_all(frames, fmt, **MULTI[fmt])
    want = pillow_frames(data)
    assert len(want) == 4
    with decode_frames(data) as got:
        assert (got.total, got.count) == (4, 4)
        decoded = list(got)
    assert len(decoded) == 4
    for k, (d, w) in enumerate(zip(decoded, want, strict=True)):
        assert np.array_equal(d.rgb, w), (fmt, k)
        assert d.rgb.flags.c_contiguous and (d.width, d.height) == SIZE and d.format == fmt
    assert np.array_equal(decoded[0].rgb, decode_image(data).rgb)
    if fmt in ("TIFF", "PNG") or MULTI[fmt].get("lossless"):
        assert np.array_equal(decoded[2].rgb, np.asarray(photo))  # the hidden picture itself


def test_max_frames_caps_what_is_decoded() -> None:
    data = save_all([drawn(k) for k in range(1, 6)], "GIF")
    with decode_frames(data, max_frames=2) as frames:
        assert (frames.total, frames.count) == (5, 2)
        assert len(list(frames)) == 2
    with pytest.raises(ValueError):
        decode_frames(data, max_frames=0)


def test_tiff_pages_keep_their_own_size_and_mode(photo: Image.Image) -> None:
    big = drawn(4, (150, 120)).convert("L")
    wide = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257)  # I;16 page
    data = save_all([photo, big, wide], "TIFF")
    with decode_frames(data) as frames:
        got = list(frames)
    assert [(d.width, d.height, d.mode) for d in got] == [(96, 64, "RGB"), (150, 120, "L"), (96, 64, "I;16")]
    assert np.array_equal(got[2].rgb[:, :, 0], np.asarray(photo.convert("L")))  # scaled, not clipped
    with decode_frames(data, max_pixels=96 * 64) as frames, pytest.raises(DecodeError, match="too many pixels"):
        list(frames)  # the limit holds for every page, not only the first


def test_plain_jpeg_never_opens_pillow(photo: Image.Image, monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("Pillow opened a plain JPEG")

    monkeypatch.setattr(decode_mod.Image, "open", refuse)
    with decode_frames(data) as frames:
        assert (frames.total, frames.count) == (1, 1)
        (only,) = list(frames)
    assert np.array_equal(only.rgb, decode_image(data).rgb)


@pytest.mark.parametrize("big_header", [False, True])
def test_mpo_pictures_are_frames(photo: Image.Image, big_header: bool) -> None:
    """The multi-picture index is found behind a large EXIF block and a multi-segment ICC profile too."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 30_000  # ImageDescription
    kw = {"exif": exif.tobytes(), "icc_profile": bytes(150_000)} if big_header else {}
    data = save_all([drawn(1), photo, drawn(2)], "MPO", **kw)
    with decode_frames(data) as frames:
        assert frames.total == 3
        got = list(frames)
    want = pillow_frames(data)
    for d, w in zip(got, want, strict=True):
        assert np.array_equal(d.rgb, w)
    assert np.array_equal(got[0].rgb, decode_image(data).rgb)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        out.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + length]))
        i += 12 + length
    return out


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(
        struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b) & 0xFFFFFFFF) for k, b in chunks
    )
    return b"\x89PNG\r\n\x1a\n" + body


def test_a_missing_frame_fails(photo: Image.Image) -> None:
    """An APNG whose header promises a frame the file does not hold raises instead of ending quietly."""
    chunks = png_chunks(save_all([drawn(1), photo], "PNG"))
    chunks = [(k, struct.pack(">II", 3, 0) if k == b"acTL" else b) for k, b in chunks]
    data = png_from_chunks(chunks)
    with decode_frames(data) as frames:
        assert frames.total == 3
        it = iter(frames)
        next(it)
        next(it)
        with pytest.raises(DecodeError, match="frame 2"):
            next(it)


def test_single_frame_formats(photo: Image.Image) -> None:
    for fmt in ("PNG", "GIF", "WEBP", "BMP", "TIFF", "PPM"):
        buf = io.BytesIO()
        photo.save(buf, format=fmt)
        data = buf.getvalue()
        with decode_frames(data) as frames:
            assert (frames.total, frames.count) == (1, 1), fmt
            (only,) = list(frames)
        assert np.array_equal(only.rgb, decode_image(data).rgb), fmt
