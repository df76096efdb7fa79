"""The decoder: Pillow's pixels for every format and mode, fast JPEG, and failed-with-a-reason for bad input."""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleanset.imaging.decode import DecodeError, decode_image, sniff


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
    data = encode(photo, "PCX")
    assert pillow_rgb(data).shape == (photo.height, photo.width, 3)  # Pillow could read it
    with pytest.raises(DecodeError, match="not an image in a supported format"):
        decode_image(data)


# -- wider than 8 bits: scaled, not clipped ---------------------------------------------------------------------


def grey8(photo: Image.Image) -> np.ndarray:
    return np.asarray(photo.convert("L"))


def as_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def png_16_bit(samples: np.ndarray) -> bytes:
    """A 16-bit PNG of HxW (grey), HxWx2 (grey+alpha), HxWx3 (RGB) or HxWx4 (RGBA) samples, written by hand since
    Pillow only writes 16-bit greyscale."""
    height, width = samples.shape[:2]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = samples.astype(">u2").reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def netpbm(magic: bytes, samples: np.ndarray, maxval: int) -> bytes:
    height, width = samples.shape[:2]
    header = magic + b"\n# a comment\n%d %d\n%d\n" % (width, height, maxval)
    if magic in (b"P2", b"P3"):
        return header + b" ".join(b"%d" % v for v in samples.reshape(-1)) + b"\n"
    return header + samples.astype(">u2" if maxval > 255 else np.uint8).tobytes()


def sixteen_bit_files(photo: Image.Image) -> dict[str, bytes]:
    wide = grey8(photo).astype(np.uint16) * 257  # how 8-bit samples are widened to 16 bits
    return {
        "png I;16": encode(Image.fromarray(wide), "PNG"),
        "tiff I;16": encode(Image.fromarray(wide), "TIFF"),
        "tiff I;16B": encode(Image.fromarray(wide.astype(">u2")), "TIFF"),
        "pgm maxval 65535": netpbm(b"P5", wide, 65535),
        "plain pgm maxval 65535": netpbm(b"P2", wide, 65535),
        "pgm maxval 1000": netpbm(b"P5", np.round(grey8(photo) * (1000 / 255)).astype(np.uint16), 1000),
    }


@pytest.mark.parametrize(
    "name",
    ["png I;16", "tiff I;16", "tiff I;16B", "pgm maxval 65535", "plain pgm maxval 65535", "pgm maxval 1000"],
)
def test_16_bit_grey_is_scaled_to_the_8_bit_picture(photo: Image.Image, name: str) -> None:
    """Pillow's convert clips these to a white page; the decoder gives back the 8-bit picture they were made from."""
    data = sixteen_bit_files(photo)[name]
    assert np.mean(pillow_rgb(data) == 255) > 0.8  # what clipping would hash: a white page
    got = decode_image(data)
    want = as_rgb(grey8(photo)).astype(int)
    assert np.abs(got.rgb.astype(int) - want).max() <= (1 if "1000" in name else 0), name
    assert got.rgb.flags.c_contiguous and got.rgb.dtype == np.uint8


def test_16_bit_scaling_rounds() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # every 16-bit value
    got = decode_image(encode(Image.fromarray(values), "PNG")).rgb[:, :, 0]
    assert np.array_equal(got, np.round(values / 257).astype(np.uint8))


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16_bit_colour_png_keeps_the_high_byte(photo: Image.Image, channels: int) -> None:
    """Pillow already reduces 16-bit RGB, RGBA and grey+alpha PNGs to 8 bits without clipping; pinned here."""
    rgb = np.asarray(photo).astype(np.uint16) * 257 + 100  # not exact multiples: the low byte is dropped
    alpha = np.full((*rgb.shape[:2], 1), 40000, dtype=np.uint16)
    samples = {2: np.concatenate([rgb[:, :, :1], alpha], axis=2), 3: rgb, 4: np.concatenate([rgb, alpha], axis=2)}
    got = decode_image(png_16_bit(samples[channels])).rgb
    want = (rgb >> 8).astype(np.uint8)
    assert np.array_equal(got, as_rgb(want[:, :, 0]) if channels == 2 else want)


def test_32_bit_and_float_greyscale(photo: Image.Image) -> None:
    grey = grey8(photo)
    want = as_rgb(grey)
    cases = {
        "I in 16-bit range": Image.fromarray(grey.astype(np.int32) * 257, "I"),
        "I in 32-bit range": Image.fromarray(grey.astype(np.int32) << 23, "I"),
        "F in 0..1": Image.fromarray(grey.astype(np.float32) / 255, "F"),
        "F in 16-bit range": Image.fromarray(grey.astype(np.float32) * 257, "F"),
    }
    for name, im in cases.items():
        got = decode_image(encode(im, "TIFF")).rgb.astype(int)
        assert np.abs(got - want).max() <= 1, name
    # A few planted outliers do not choose the scale: 8-bit data stays Pillow's pixels, the outliers clip.
    planted = grey.astype(np.int32)
    planted[::50, ::50] = 1 << 30
    data = encode(Image.fromarray(planted, "I"), "TIFF")
    assert np.array_equal(decode_image(data).rgb, pillow_rgb(data))
    nan = grey.astype(np.float32) / 255
    nan[0, :5] = np.nan
    assert np.abs(decode_image(encode(Image.fromarray(nan, "F"), "TIFF")).rgb[1:].astype(int) - want[1:]).max() <= 1


# -- Netpbm and SVG --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "L", "1"])
def test_netpbm_binary(photo: Image.Image, mode: str) -> None:
    data = encode(photo.convert(mode), "PPM")
    assert data[:2] == {"RGB": b"P6", "L": b"P5", "1": b"P4"}[mode]
    assert sniff(data) == "PPM"
    got = decode_image(data)
    assert np.array_equal(got.rgb, pillow_rgb(data))
    assert (got.format, got.mode, got.width, got.height) == ("PPM", mode, photo.width, photo.height)


def test_netpbm_plain() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    assert np.array_equal(decode_image(netpbm(b"P3", rgb, 255)).rgb, rgb)
    grey = np.array([[0, 100, 255], [5, 6, 7]], dtype=np.uint8)
    assert np.array_equal(decode_image(netpbm(b"P2", grey, 255)).rgb, as_rgb(grey))
    bits = b"P1\n3 2\n1 0 1\n0 1 0\n"  # 1 is black
    assert np.array_equal(decode_image(bits).rgb[:, :, 0], [[0, 255, 0], [255, 0, 255]])
    assert sniff(bits) == "PPM"


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="x.png"/></svg>'
SVG_PROLOG = (
    b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n'
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" '
    b'[ <!ENTITY e "x"> ]>\n<?xml-stylesheet href="s.css"?>\n  <svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>'
)


@pytest.mark.parametrize(
    "data",
    [SVG, SVG_PROLOG, gzip.compress(SVG), SVG.decode().encode("utf-16"), b"\n\n  <SVG>"],
    ids=["plain", "prolog", "svgz", "utf-16", "upper case"],
)
def test_svg_is_refused_with_its_reason(data: bytes) -> None:
    assert sniff(data) == "SVG"
    with pytest.raises(DecodeError, match="SVG is not rasterised"):
        decode_image(data)


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body><svg></svg></body></html>",
        b"<!-- unterminated <svg>",
        b"P3 is where the caption starts",
        b"P6\n# only a comment",
        b'{"caption": "<svg> in json"}',
        b"plain text",
    ],
)
def test_sniff_does_not_call_text_an_image(data: bytes) -> None:
    assert sniff(data) is None


def test_pam_is_refused_with_its_reason() -> None:
    data = b"P7\nWIDTH 2\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n\x00\xff"
    assert sniff(data) == "PAM"
    with pytest.raises(DecodeError, match="PAM"):
        decode_image(data)


def test_sniff_keeps_its_answers(photo: Image.Image) -> None:
    for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"):
        assert sniff(encode(photo, fmt)) == fmt


def test_sniff_needs_a_bmp_info_header_not_just_bm() -> None:
    """A caption that starts with "BM" is text, not an image; a real BMP still sniffs as one."""
    import io

    from PIL import Image

    from cleanset.imaging.decode import sniff

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "BMP")
    assert sniff(buf.getvalue()) == "BMP"
    assert sniff(b"BMW parked at dusk, a photo") is None
