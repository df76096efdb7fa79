"""Decode image bytes once, to the RGB pixels every perceptual signal is computed from.

What the pixels are, and why:

- **Same pixels as the reference.** python-threatexchange hashes what Pillow decodes; hash lists made with it are
  what cleanset must match. JPEG is decoded with libjpeg-turbo through simplejpeg at full scale with the accurate
  DCT and fancy upsampling (``fastdct=False, fastupsample=False``), which gives exactly Pillow's pixels
  (tests/imaging/test_decode.py checks it on the reference JPEGs) at a fraction of the cost. Reduced-scale JPEG
  decoding is never used: it moves PDQ by many bits. CMYK/YCCK JPEGs go through Pillow, whose CMYK->RGB rounding
  simplejpeg does not reproduce, and so do JPEGs libjpeg-turbo reports a recoverable error for (extraneous bytes,
  bad markers): Pillow decodes those as the reference does, and refuses truncated ones.
- **8-bit modes become RGB the way ``Image.convert("RGB")`` does it** (1, L, LA, P, PA, RGBA, CMYK, YCbCr, HSV,
  LAB, ...). Alpha is dropped, not composited: the colour under a transparent pixel is hashed as stored. That is
  what python-threatexchange effectively hashes (pdqhash reads the first three channels), and compositing onto a
  background colour would move hashes away from the lists'.
- **Wider greyscale is scaled to 8 bits, not clipped.** Pillow's ``convert`` clips I;16, I and F to 0..255, so a
  picture re-saved as a 16-bit PNG would hash as a white page and pass every list. Instead: 16-bit sources (the
  I;16 modes, and mode I read from 16-bit data, as Pillow gives PGM with maxval > 255) become ``round(v / 257)``,
  which undoes the usual ``v * 257`` widening exactly. Mode I and F of unknown depth are read in the smallest
  range that holds all but the brightest 0.1% of pixels (so a few planted outliers cannot choose the scale):
  within 0..1 (float only) times 255; within 0..255 exactly Pillow's ``convert``; within 0..65535 as 16-bit;
  beyond that, scaled so that range reaches 255. 16-bit RGB(A) and LA PNGs and TIFFs need none of this: Pillow
  already keeps the high byte of each sample.
- **No EXIF orientation.** The stored pixel order is hashed, as the reference does; a rotated copy is caught by the
  PDQ dihedral probes instead.
- **Every frame, when asked.** ``decode_image`` gives the first frame, as the reference hashes. ``decode_frames``
  gives every frame of GIF, APNG, animated WebP, multi-page TIFF and MPO, one at a time, each as Pillow's ``seek``
  composites it and converted like the first: a listed picture placed as the second frame behind a harmless first
  one is otherwise never looked at.
- **Formats:** JPEG (and MPO, the multi-picture JPEG that cameras write), PNG, WebP, GIF, BMP, TIFF, and the
  Netpbm family PBM/PGM/PPM (also the PFM float variant Pillow's plugin reads). Anything else is refused rather
  than handed to a less-travelled decoder. SVG in particular is never rasterised: a vector file can pull in or
  embed any picture, so it is refused with its own reason and the item is left out, as is PAM (P7), which Pillow
  does not read.
- **Decompression bombs:** the pixel count is read from the header and checked against ``max_pixels`` before any
  pixel is decoded, for every frame (TIFF pages each have their own size). (For formats Pillow decodes, Pillow's
  own guard also refuses anything above twice ``PIL.Image.MAX_IMAGE_PIXELS``, about 179 MP, whatever
  ``max_pixels`` says; cleanset leaves that global alone.)

A file that cannot be decoded raises ``DecodeError`` with a short reason; the engine turns it into a failed outcome.
"""

from __future__ import annotations

import io
import re
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

import numpy as np
import simplejpeg
from PIL import Image, ImageFile

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: 300 MB of RGB, well under the memory of a 24 GB machine
DEFAULT_MAX_FRAMES = 32
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM")
SUPPORTED_NAMES = "JPEG, PNG, WebP, GIF, BMP, TIFF, PBM/PGM/PPM"
JPEG_MAGIC = b"\xff\xd8\xff"
SVG_REASON = "SVG is not rasterised: vector files can embed any image; left out"
PAM_REASON = "PAM (P7) is not decoded; left out"

# Netpbm headers as Pillow's PPM plugin reads them: a magic number (ended by whitespace unless it has six
# characters), then, past whitespace and # comments, the width. Requiring the width keeps a caption that starts
# with "P3 " from reading as an image.
_NETPBM = re.compile(
    rb"(?:(?:P[1-6]|Pf|PyP)[ \t\n\v\f\r]|P0CMYK|PyRGBA|PyCMYK)(?:[ \t\n\v\f\r]|#[^\r\n]*[\r\n])*[+0-9]"
)
_PAM = re.compile(rb"P7[ \t\n\v\f\r]")
_SVG_SCAN = 64 * 1024  # how far into a file (or a gzip stream) the root element is looked for
_SVG_ROOT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?svg[\s/>]", re.IGNORECASE)
_OUTLIER_FRACTION = 0.001  # brightest pixels ignored when choosing the range of an I or F image


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


def _svg_text(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return head[3:].decode("utf-8", "ignore")
    if head.startswith((b"\xff\xfe", b"<\x00")):
        return head.decode("utf-16-le", "ignore").lstrip("\ufeff")
    if head.startswith((b"\xfe\xff", b"\x00<")):
        return head.decode("utf-16-be", "ignore").lstrip("\ufeff")
    return head.decode("latin-1")


def _svg_root(text: str) -> bool:
    """Whether the first element, past the XML declaration, comments, processing instructions and a DOCTYPE, is
    ``<svg>`` (with or without a namespace prefix)."""
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n\f\v":
            i += 1
        if text.startswith("<?", i):
            end = text.find("?>", i + 2)
            i = -1 if end < 0 else end + 2
        elif text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            i = -1 if end < 0 else end + 3
        elif text[i : i + 9].upper() == "<!DOCTYPE":
            gt, bracket = text.find(">", i), text.find("[", i)
            if 0 <= bracket < gt:  # an internal subset may hold '>' of its own
                close = text.find("]", bracket)
                gt = -1 if close < 0 else text.find(">", close)
            i = -1 if gt < 0 else gt + 1
        else:
            return _SVG_ROOT.match(text, i) is not None
        if i < 0:
            return False


def _is_svg(data: bytes) -> bool:
    head = data[:_SVG_SCAN]
    if head.startswith(b"\x1f\x8b"):  # SVGZ
        try:
            head = zlib.decompressobj(wbits=31).decompress(data[: _SVG_SCAN * 4], _SVG_SCAN)
        except zlib.error:
            return False
    return _svg_root(_svg_text(head))


# Sizes of the BMP info headers that follow the 14-byte file header (OS/2 1.x and 2.x, Windows 3 to 5): "BM" alone
# starts too many captions ("BMW at dusk") to mean an image.
_BMP_INFO_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def _bmp_header(data: bytes) -> bool:
    return len(data) >= 18 and int.from_bytes(data[14:18], "little") in _BMP_INFO_SIZES


def sniff(data: bytes) -> str | None:
    """The format the leading bytes claim, so an unreadable file is reported as a corrupt JPEG rather than as
    "not an image", and so callers can tell image bytes (including SVG, which is never decoded) from text."""
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
    if data.startswith(b"BM") and _bmp_header(data):
        return "BMP"
    if data.startswith(b"P"):
        if _NETPBM.match(data):
            return "PPM"
        if _PAM.match(data):
            return "PAM"
    if _is_svg(data):
        return "SVG"
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


def _has_mpf(data: bytes) -> bool:
    """Whether the JPEG's header holds a multi-picture index (an APP2 "MPF" segment), which is where Pillow looks to
    read the file as MPO. Walks the segments up to the start of scan as Pillow does (junk between them skipped), so
    a plain JPEG costs a few steps rather than a search of the whole file."""
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:
            i = data.find(b"\xff", i)
            if i < 0:
                return False
            continue
        marker = data[i + 1]
        if marker in (0xFF, 0x00):  # fill byte, or an escaped 0xFF that is junk here
            i += 1 if marker == 0xFF else 2
        elif 0xD0 <= marker <= 0xD9:  # RSTn, SOI, EOI: no length
            i += 2
        elif marker == 0xDA or marker < 0xC0 or i + 4 > n:  # start of scan, or a header Pillow would refuse
            return False
        else:
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker == 0xE2 and data[i + 4 : i + 8] == b"MPF\x00":
                return True
            if length < 2:
                return False
            i += 2 + length
    return False


def _open(data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    Image.init()  # registers every plugin; Image.open(formats=...) only accepts registered ones
    formats = [f for f in ALLOWED_FORMATS if f in Image.OPEN]  # MPO is part of JPEG in newer Pillow
    with warnings.catch_warnings():
        # Our own limit is checked from the header, per frame; Pillow's warning would only repeat it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=formats)
        except Image.UnidentifiedImageError:
            claimed = sniff(data)
            if claimed == "SVG":
                raise DecodeError(SVG_REASON) from None
            if claimed == "PAM":
                raise DecodeError(PAM_REASON) from None
            if claimed:
                raise DecodeError(f"corrupt {claimed}: header not readable") from None
            raise DecodeError(f"not an image in a supported format ({SUPPORTED_NAMES})") from None
        except Image.DecompressionBombError:
            raise DecodeError(f"too many pixels: exceeds the limit of {max_pixels}") from None
        except Exception as e:  # Pillow's plugins raise many types on hostile headers; all mean "unreadable"
            raise DecodeError(f"corrupt header: {type(e).__name__}: {e}") from None


def _from_16_bit(im: ImageFile.ImageFile) -> bool:
    """Whether a mode I frame holds 16-bit samples (Pillow widens 16-bit PGM, and 16-bit PNG in older versions, to
    I), read from the tile before loading consumes it."""
    for tile in im.tile:
        rawmode = tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0]
        if tile.codec_name in ("ppm", "ppm_plain") or (isinstance(rawmode, str) and rawmode.startswith("I;16")):
            return True
    return False


def _top(values: np.ndarray) -> float:
    """The value all but the brightest ``_OUTLIER_FRACTION`` of pixels stay at or under."""
    flat = values.reshape(-1)
    k = int(flat.size * _OUTLIER_FRACTION)
    if k == 0:
        return float(flat.max())
    return float(np.partition(flat, flat.size - 1 - k)[flat.size - 1 - k])


def _grey_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    grey = values.astype(np.float32)
    grey *= np.float32(scale)
    np.clip(grey, 0, 255, out=grey)
    np.rint(grey, out=grey)
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)


def _wide_rgb(im: ImageFile.ImageFile, sixteen: bool) -> np.ndarray:
    """RGB of an I;16, I or F frame, scaled to 8 bits (see the module docstring for the ranges)."""
    im.load()
    values = np.asarray(im)
    if sixteen:
        return _grey_rgb(values, 1 / 257)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        values = np.nan_to_num(values, nan=0.0, posinf=float(np.finfo(np.float32).max), neginf=0.0)
    top = _top(values)
    if values.dtype.kind == "f" and top <= 1.0:
        return _grey_rgb(values, 255)
    if top <= 255:
        return np.asarray(im.convert("RGB"))  # exactly Pillow's pixels for data that is 8-bit already
    if top <= 65535:
        return _grey_rgb(values, 1 / 257)
    return _grey_rgb(values, 255 / top)


def _frame(im: ImageFile.ImageFile, max_pixels: int, index: int) -> Decoded:
    """The current frame of ``im`` as RGB; ``im`` has been seeked to it but not loaded."""
    width, height = im.size
    _check_size(width, height, max_pixels)
    fmt = im.format or "unknown"
    mode = im.mode
    where = f" frame {index}" if index else ""
    try:
        if mode.startswith("I;16") or mode in ("I", "F"):
            rgb = _wide_rgb(im, sixteen=mode.startswith("I;16") or (mode == "I" and _from_16_bit(im)))
        else:
            rgb = np.asarray(im.convert("RGB"))
    except MemoryError:
        raise
    except Exception as e:  # truncated or corrupt data surfaces here, with many exception types
        raise DecodeError(f"corrupt {fmt}{where}: {type(e).__name__}: {e}") from None
    if rgb.shape != (height, width, 3):
        raise DecodeError(f"decoder returned shape {rgb.shape} for a {width}x{height} {fmt}{where}")
    return Decoded(np.ascontiguousarray(rgb), width, height, fmt, mode)


def _decode_pillow(data: bytes, max_pixels: int) -> Decoded:
    with _open(data, max_pixels) as im:
        return _frame(im, max_pixels, 0)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode the first frame of ``data`` to RGB, or raise ``DecodeError``. Never returns partial pixels."""
    if not data:
        raise DecodeError("empty file")
    if data.startswith(JPEG_MAGIC):
        out = _decode_jpeg_turbo(data, max_pixels)
        if out is not None:
            return out
    return _decode_pillow(data, max_pixels)


def _seek(im: ImageFile.ImageFile, k: int) -> None:
    try:
        im.seek(k)
    except MemoryError:
        raise
    except Exception as e:  # a frame the header promised but the data lacks, or garbage
        where = f"frame {k}" if k else "rewinding"
        raise DecodeError(f"corrupt {im.format or 'unknown'} {where}: {type(e).__name__}: {e}") from None


class Frames:
    """The frames of one file, decoded one at a time as they are iterated (one frame's pixels in memory at once).

    ``total`` is how many frames the file holds, ``count`` how many iteration yields (at most ``max_frames``);
    ``total - count`` frames were never looked at. Iterating raises ``DecodeError`` at the first frame that cannot
    be decoded. Use as a context manager, or iterate to the end, so the decoder is closed.
    """

    def __init__(self, total: int, count: int, first: Decoded | None, im: ImageFile.ImageFile | None, max_pixels: int):
        self.total = total
        self.count = count
        self._first = first
        self._im = im
        self._max_pixels = max_pixels

    def __iter__(self) -> Iterator[Decoded]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
            return
        im = self._im
        if im is None:
            return
        try:
            for k in range(self.count):
                if k:
                    _seek(im, k)
                yield _frame(im, self._max_pixels, k)
        finally:
            self.close()

    def close(self) -> None:
        self._first = None
        if self._im is not None:
            self._im.close()
            self._im = None

    def __enter__(self) -> Frames:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def decode_frames(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_frames: int = DEFAULT_MAX_FRAMES) -> Frames:
    """Every frame of ``data`` up to ``max_frames``, lazily; frame 0 has exactly ``decode_image``'s pixels.

    A plain JPEG takes ``decode_image``'s fast path and never opens Pillow; one that carries a multi-picture (MPF)
    segment is read by Pillow, which lists its pictures as frames. Raises ``DecodeError`` when the file cannot be
    opened; a bad later frame raises while iterating.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if not data:
        raise DecodeError("empty file")
    if data.startswith(JPEG_MAGIC) and not _has_mpf(data):
        out = _decode_jpeg_turbo(data, max_pixels)
        if out is not None:
            return Frames(1, 1, out, None, max_pixels)
    im = _open(data, max_pixels)
    try:
        total = int(getattr(im, "n_frames", 1))
    except MemoryError:
        im.close()
        raise
    except Exception as e:  # counting walks the file (GIF, TIFF): damage after the first frame surfaces here
        im.close()
        raise DecodeError(f"corrupt {im.format or 'unknown'}: counting frames: {type(e).__name__}: {e}") from None
    if total < 1:
        im.close()
        raise DecodeError(f"{im.format or 'unknown'} with {total} frames")
    try:
        _seek(im, 0)  # counting may have moved it
    except BaseException:
        im.close()
        raise
    return Frames(total, min(total, max_frames), None, im, max_pixels)
