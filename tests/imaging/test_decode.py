"""The decoder: Pillow's pixels for every format and mode, fast JPEG, and failed-with-a-reason for bad input."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleanset.imaging.decode import DecodeError, decode_image


def pillow_rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.astronaut()).resize((300, 200))


def test_reference_jpegs_decode_to_pillows_pixels(pdq_reference: Path) -> None:
    files = sorted((pdq_reference / "data").rglob("*.jpg"))
    assert len(files) >= 20
    for path in files:
        data = path.read_bytes()
        got = decode_image(data)
        assert np.array_equal(got.rgb, pillow_rgb(data)), path.name
        assert got.rgb.dtype == np.uint8 and got.rgb.shape == (got.height, got.width, 3)
        with Image.open(path) as im:
            assert (got.width, got.height, got.format) == (*im.size, "JPEG")


def test_mode_folder_matches_convert_rgb(pdq_reference: Path) -> None:
    """Files made by other software than the Pillow generating test_modes_and_formats's images (which cover
    every mode): a bilevel PNG, an Adobe CMYK JPEG and a WebP."""
    folder = pdq_reference / "data" / "misc-images" / "modes"
    files = sorted(folder.iterdir())
    assert [p.name for p in files] == ["1.png", "CMYK.jpg", "F.webp"]
    for path in files:
        data = path.read_bytes()
        got = decode_image(data)
        assert np.array_equal(got.rgb, pillow_rgb(data)), path.name
        with Image.open(path) as im:
            assert got.mode == im.mode


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("1", "PNG"),
        ("L", "PNG"),
        ("LA", "PNG"),
        ("P", "PNG"),
        ("PA", "TIFF"),
        ("RGBA", "PNG"),
        ("RGBA", "WEBP"),
        ("CMYK", "TIFF"),
        ("CMYK", "JPEG"),
        ("YCbCr", "TIFF"),
        ("I", "TIFF"),
        ("I;16", "PNG"),
        ("F", "TIFF"),
        ("LAB", "TIFF"),
        ("L", "JPEG"),
        ("RGB", "BMP"),
        ("P", "GIF"),
        ("RGB", "TIFF"),
    ],
)
def test_modes_and_formats(photo: Image.Image, mode: str, fmt: str) -> None:
    im = photo.convert("I").point(lambda v: v * 200).convert("I;16") if mode == "I;16" else photo.convert(mode)
    if mode == "RGBA":
        alpha = Image.linear_gradient("L").resize(photo.size)
        im.putalpha(alpha)
    data = encode(im, fmt)
    got = decode_image(data)
    assert got.rgb.shape == (photo.height, photo.width, 3)
    assert np.array_equal(got.rgb, pillow_rgb(data)), (mode, fmt)
    assert got.format == fmt


def test_progressive_and_subsampled_jpeg(photo: Image.Image) -> None:
    for kw in ({"progressive": True}, {"subsampling": 2}, {"subsampling": 0, "quality": 97}):
        data = encode(photo, "JPEG", **kw)
        assert np.array_equal(decode_image(data).rgb, pillow_rgb(data)), kw


def test_recoverable_jpeg_damage_gives_pillows_pixels(photo: Image.Image) -> None:
    data = encode(photo, "JPEG")
    junk_before_eoi = data[:-2] + b"\x00\x01\x02\x03" + data[-2:]
    assert np.array_equal(decode_image(junk_before_eoi).rgb, pillow_rgb(junk_before_eoi))


def test_gif_first_frame(photo: Image.Image) -> None:
    frames = [photo, photo.transpose(Image.Transpose.ROTATE_180)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with Image.open(io.BytesIO(data)) as im:
        assert im.n_frames == 2
        first = np.asarray(im.convert("RGB"))
    assert np.array_equal(decode_image(data).rgb, first)


def test_exif_orientation_is_not_applied(photo: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(photo, "JPEG", exif=exif.tobytes())
    got = decode_image(data)
    assert got.rgb.shape == (photo.height, photo.width, 3)  # stored order, not display order


def test_pixel_limit_is_checked_before_decoding(photo: Image.Image) -> None:
    for fmt in ("JPEG", "PNG"):
        data = encode(photo, fmt)
        with pytest.raises(DecodeError, match="too many pixels"):
            decode_image(data, max_pixels=photo.width * photo.height - 1)
        assert decode_image(data, max_pixels=photo.width * photo.height).width == photo.width


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but which holds almost no data: decoding it would need
    width * height * 3 bytes, so only a header check stops it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header() -> None:
    with pytest.raises(DecodeError, match="too many pixels"):
        decode_image(png_header_only(30_000, 30_000), max_pixels=100_000_000)  # 900 MP, under Pillow's own guard
    with pytest.raises(DecodeError, match="too many pixels"):
        decode_image(png_header_only(200_000, 200_000))


def corrupt_middle(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 64]) + data[mid + 64 :]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_truncated_files_fail_with_reason(photo: Image.Image, fmt: str) -> None:
    data = encode(photo, fmt)
    for cut in (len(data) // 2, 40):
        with pytest.raises(DecodeError) as info:
            decode_image(data[:cut])
        assert info.value.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"hello, this is text, not an image\n" * 10, "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "corrupt"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "corrupt"),
        (b"%PDF-1.4\n", "not an image"),
    ],
)
def test_non_images_fail_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_image(data)


def test_corrupt_png_fails(photo: Image.Image) -> None:
    with pytest.raises(DecodeError):
        decode_image(corrupt_middle(encode(photo, "PNG")))


def test_unsupported_format_is_refused(photo: Image.Image) -> None:
    data = encode(photo, "PPM")
    assert pillow_rgb(data).shape == (photo.height, photo.width, 3)  # Pillow could read it
    with pytest.raises(DecodeError, match="not an image in a supported format"):
        decode_image(data)
