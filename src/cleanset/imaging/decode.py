"""Decode image bytes once, to the RGB pixels every perceptual signal is computed from.

What the pixels are, and why:

- **Same pixels as the reference.** python-threatexchange hashes what Pillow decodes; hash lists made with it are
  what cleanset must match. JPEG is decoded with libjpeg-turbo through simplejpeg at full scale with the accurate
  DCT and fancy upsampling (``fastdct=False, fastupsample=False``), which gives exactly Pillow's pixels
  (tests/imaging/test_decode.py checks it on the reference JPEGs) at a fraction of the cost. Reduced-scale JPEG
  decoding is never used: it moves PDQ by many bits. CMYK/YCCK JPEGs go through Pillow, whose CMYK->RGB rounding
  simplejpeg does not reproduce, and so do JPEGs libjpeg-turbo reports a recoverable error for (extraneous bytes,
  bad markers): Pillow decodes those as the reference does, and refuses truncated ones.
- **Every mode becomes RGB the way ``Image.convert("RGB")`` does it** (1, L, LA, P, PA, RGBA, CMYK, YCbCr, I,
  I;16, F, HSV, LAB, ...). Alpha is dropped, not composited: the colour under a transparent pixel is hashed as
  stored. That is what python-threatexchange effectively hashes (pdqhash reads the first three channels), and
  compositing onto a background colour would move hashes away from the lists'. 16-bit and float images (I;16, I, F)
  are clipped to 0..255, not rescaled, again as Pillow does: a 16-bit photo that uses its full range hashes as
  nearly white, with a low PDQ quality that marks it.
- **No EXIF orientation.** The stored pixel order is hashed, as the reference does; a rotated copy is caught by the
  PDQ dihedral probes instead.
- **GIF, animated WebP, multi-page TIFF:** the first frame.
- **Formats:** JPEG (and MPO, the multi-picture JPEG that cameras write), PNG, WebP, GIF, BMP, TIFF. Anything else
  is refused rather than handed to a less-travelled decoder.
- **Decompression bombs:** the pixel count is read from the header and checked against ``max_pixels`` before any
  pixel is decoded. (For formats Pillow decodes, Pillow's own guard also refuses anything above twice
  ``PIL.Image.MAX_IMAGE_PIXELS``, about 179 MP, whatever ``max_pixels`` says; cleanset leaves that global alone.)

A file that cannot be decoded raises ``DecodeError`` with a short reason; the engine turns it into a failed outcome.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import simplejpeg
from PIL import Image

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: 300 MB of RGB, well under the memory of a 24 GB machine
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF")
JPEG_MAGIC = b"\xff\xd8\xff"


class DecodeError(Exception):
    """The bytes could not be turned into pixels; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Decoded:
    """RGB pixels (HxWx3 uint8) and what the header said.

    For JPEG, ``rgb`` is a view of the decoder's HxWx4 RGBX buffer (pixel stride 4), which the PDQ scan reads
    32 bits at a time; other formats give a C-contiguous array. Use ``np.ascontiguousarray`` where layout matters.
    """

    rgb: np.ndarray
    width: int
    height: int
    format: str
    mode: str


def sniff(data: bytes) -> str | None:
    """The format the leading bytes claim, so an unreadable file is reported as a corrupt JPEG rather than as
    "not an image"."""
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if data.startswith(b"BM"):
        return "BMP"
    return None


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise DecodeError(f"invalid size {width}x{height}")
    if width * height > max_pixels:
        raise DecodeError(f"too many pixels: {width}x{height} exceeds the limit of {max_pixels}")


def _decode_jpeg_turbo(data: bytes, max_pixels: int) -> Decoded | None:
    """simplejpeg decode, or None when Pillow must do it.

    Pillow takes over for CMYK/YCCK and for any JPEG libjpeg-turbo reports a problem with (simplejpeg runs in strict
    mode): Pillow decodes JPEGs that carry recoverable errors such as extraneous bytes, as the reference does, and
    raises its own error for truncated ones.
    """
    try:
        height, width, colorspace, _sub = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    _check_size(width, height, max_pixels)
    if colorspace in ("CMYK", "YCCK"):
        return None
    try:
        # RGBX: the same pixels with a fourth padding byte, so the PDQ scan can load whole 32-bit pixels
        rgbx = simplejpeg.decode_jpeg(data, colorspace="RGBX", fastdct=False, fastupsample=False, strict=True)
    except ValueError:
        return None
    mode = "L" if colorspace == "GRAY" else "RGB"
    return Decoded(np.ascontiguousarray(rgbx)[:, :, :3], width, height, "JPEG", mode)


def _decode_pillow(data: bytes, max_pixels: int) -> Decoded:
    Image.init()  # registers every plugin; Image.open(formats=...) only accepts registered ones
    formats = [f for f in ALLOWED_FORMATS if f in Image.OPEN]  # MPO is part of JPEG in newer Pillow
    with warnings.catch_warnings():
        # Our own limit is checked below, from the header; Pillow's warning would only repeat it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=formats)
        except Image.UnidentifiedImageError:
            claimed = sniff(data)
            if claimed:
                raise DecodeError(f"corrupt {claimed}: header not readable") from None
            raise DecodeError("not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)") from None
        except Image.DecompressionBombError:
            raise DecodeError(f"too many pixels: exceeds the limit of {max_pixels}") from None
        except Exception as e:  # Pillow's plugins raise many types on hostile headers; all mean "unreadable"
            raise DecodeError(f"corrupt header: {type(e).__name__}: {e}") from None
        with im:
            width, height = im.size
            _check_size(width, height, max_pixels)
            fmt = im.format or "unknown"
            mode = im.mode
            try:
                im.seek(0)
                rgb = np.asarray(im.convert("RGB"))
            except Exception as e:  # truncated or corrupt data surfaces here, with many exception types
                raise DecodeError(f"corrupt {fmt}: {type(e).__name__}: {e}") from None
    if rgb.shape != (height, width, 3):
        raise DecodeError(f"decoder returned shape {rgb.shape} for a {width}x{height} {fmt}")
    return Decoded(np.ascontiguousarray(rgb), width, height, fmt, mode)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode ``data`` to RGB, or raise ``DecodeError``. Never returns partial pixels."""
    if not data:
        raise DecodeError("empty file")
    if data.startswith(JPEG_MAGIC):
        out = _decode_jpeg_turbo(data, max_pixels)
        if out is not None:
            return out
    return _decode_pillow(data, max_pixels)
