"""The hashing engine: one read, one decode, every signal and every probe of an item.

Why one engine and not one call per signal: decoding a photo costs more than hashing it, and PDQ, pHash and the
region probes all start from the same pixels, so the engine decodes once and shares the result. Past the decode,
each pixel's luma is computed once too: one pass over the pixels gives PDQ's samples, pHash's greyscale block
averages (see ``signals/phash.py``) and, gathered from the same luma rows, the samples of pdq512's 512x512 resize
(``pdq.scan_both``); computed apart, these three passes cost more than the PDQ hash itself.

Probes (what the matcher compares against banks):

- ``md5``, ``sha1``, ``sha256``, ``phash``: the item's own value;
- ``pdq/<dihedral>``: the PDQ hash of each of the eight rotations/flips (only ``pdq/original`` when dihedral
  probes are off), all with the PDQ quality;
- ``pdq512/<dihedral>``: the C++ tool's dialect, matched against the same ``pdq`` bank entries; left out when the
  image is at most 512x512 (the dialects then agree) and ``pdq`` is computed too;
- ``<region>/<dihedral>``: PDQ of each region ``cleanset.imaging.regions.find_regions`` proposes (trimmed borders,
  collage cells), when regions are on;
- ``frame<k>/<probe>``: every pixel probe above for frame ``k`` >= 1 of a GIF, APNG, animated WebP, multi-page TIFF
  or MPO, up to ``max_frames`` frames in all. A listed picture can be hidden behind a harmless first frame, so each
  frame is hashed like a picture of its own; the item's ``hashes`` and qualities stay frame 0's. Frames past the cap
  are counted in ``scores["unscreened_frames"]``, which the policy sends to review.

Bad data never raises: an item with any frame that cannot be decoded gives ``HashOutcome(status=FAILED,
reason="decode: ...")`` with its file digests only. Configuration errors (an unknown signal name) raise
``UserError`` when the engine is built, before the first item is read. When only byte signals are asked for, nothing
is decoded, so a non-image still gets its digests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cleanset.errors import UserError
from cleanset.imaging.decode import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, DecodeError, decode_frames
from cleanset.imaging.regions import find_regions
from cleanset.records import DIHEDRAL_NAMES, UNSCREENED_FRAMES, HashOutcome, Probe, Status
from cleanset.signals import default_signals, get_signal, image_signals, signal_names
from cleanset.signals.base import BytesSignal, Input, PixelSignal, UrlSignal
from cleanset.signals.pdq import (
    ZERO_RESULT,
    PdqResult,
    needs_resize_512,
    pdq512_rgb,
    pdq_rgb,
    shared_pass,
    too_small,
)
from cleanset.signals.phash import exact_grey, grey_plan, phash_from_grey

# The signals computed when none are named, as they declare (``Signal.by_default``, ordered by ``Signal.rank``):
# md5, sha1, sha256, pdq, pdq512, phash for a file; url_md5, url_sha1 for a URL.
IMAGE_SIGNALS: tuple[str, ...] = image_signals()
URL_SIGNALS: tuple[str, ...] = default_signals(Input.URL)
# Pixel signals the engine computes from one shared luma pass (below); any other pixel signal gets its own
# ``compute_rgb`` call on the same decoded pixels and one probe named after it.
SHARED_PASS: frozenset[str] = frozenset({"pdq", "pdq512", "phash"})
# Called with each hashed frame's RGB pixels (HxWx3 uint8, maybe a strided view): screening's one way to the decode.
PixelHook = Callable[[np.ndarray], None]


@dataclass(frozen=True)
class HashConfig:
    """What to compute. ``signals`` may mix image and URL signals; each entry point uses the ones it can.

    ``max_frames`` caps the frames hashed per file: each costs a decode and a full set of pixel probes, and a GIF
    can hold thousands. The rest are reported, not silently passed (see ``UNSCREENED_FRAMES``).
    """

    signals: tuple[str, ...] = IMAGE_SIGNALS
    dihedral: bool = True
    regions: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int = DEFAULT_MAX_FRAMES

    def __post_init__(self) -> None:
        known = set(signal_names())
        unknown = [s for s in self.signals if s not in known]
        if unknown:
            raise UserError(f"unknown signal(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        if not self.signals:
            raise UserError("no signals selected")
        if len(set(self.signals)) != len(self.signals):
            raise UserError(f"signal listed twice in {', '.join(self.signals)}")
        if self.max_pixels <= 0:
            raise UserError(f"max_pixels must be positive, got {self.max_pixels}")
        if self.max_frames < 1:
            raise UserError(f"max_frames must be at least 1, got {self.max_frames}")


class HashEngine:
    """Computes a ``HashOutcome`` per item; safe to share across threads (no mutable state)."""

    def __init__(self, config: HashConfig | None = None) -> None:
        self.config = config or HashConfig()
        kinds = {name: get_signal(name) for name in self.config.signals}
        self._bytes = [n for n, s in kinds.items() if issubclass(s, BytesSignal)]
        self._pixels = [n for n, s in kinds.items() if issubclass(s, PixelSignal)]
        self._urls = [n for n, s in kinds.items() if issubclass(s, UrlSignal)]
        self._pixel_set = frozenset(self._pixels)
        self._own_pass = [(n, kinds[n]) for n in self._pixels if n not in SHARED_PASS]
        self._names = DIHEDRAL_NAMES if self.config.dihedral else DIHEDRAL_NAMES[:1]
        # Looked up once here rather than per item (registry lookups and name formatting, a few microseconds).
        self._byte_plan = [(n, kinds[n].compute_bytes, kinds[n].matches()) for n in self._bytes]  # type: ignore[attr-defined]
        self._probe_names = {p: tuple(f"{p}/{d}" for d in self._names) for p in ("pdq", "pdq512")}

    # -- entry points -------------------------------------------------------------------------------------------

    def hash_bytes(self, data: bytes, on_pixels: PixelHook | None = None) -> HashOutcome:
        """All configured byte and pixel signals of one stored file.

        The file digests come first and survive a failed decode: a file that is listed by its exact hash is found
        even when it cannot be decoded (a format we do not read, a bomb, a corrupt file). ``on_pixels`` is handed
        each frame's decoded RGB pixels as it is hashed (screening's classifiers read the same decode; the array
        is only valid during the call)."""
        out = HashOutcome(status=Status.OK)
        for name, compute, matches in self._byte_plan:
            value = compute(data)
            out.hashes[name] = value
            out.probes.append(Probe(name, matches, value))
        if self._pixels or on_pixels is not None:
            return self._hash_frames(data, out, on_pixels)
        return out

    def hash_rgb(self, rgb: np.ndarray) -> HashOutcome:
        """Pixel signals of already-decoded RGB pixels (HxWx3 uint8)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            return HashOutcome.failed(f"hash: expected HxWx3 uint8 pixels, got {rgb.shape} {rgb.dtype}")
        out = HashOutcome(status=Status.OK, height=int(rgb.shape[0]), width=int(rgb.shape[1]))
        if not self._pixels:
            return HashOutcome.failed("hash: no pixel signal configured")
        self._add_pixels(rgb, out)  # any layout: the kernels read strided arrays (and RGBX views fastest)
        return out

    def hash_url(self, url: str) -> HashOutcome:
        """URL signals of an item's URL (the configured ones, or url_md5 and url_sha1 when none is configured)."""
        names = self._urls or list(URL_SIGNALS)
        if not url or not url.strip():
            return HashOutcome.failed("url: empty URL")
        out = HashOutcome(status=Status.OK)
        for name in names:
            sig = get_signal(name)
            try:
                value = sig.compute_url(url)  # type: ignore[attr-defined]
            except ValueError as e:
                return HashOutcome.failed(f"url: cannot parse: {e}")
            out.hashes[name] = value
            out.probes.append(Probe(name, sig.matches(), value))
        return out

    # -- pixels -------------------------------------------------------------------------------------------------

    def _hash_frames(self, data: bytes, out: HashOutcome, on_pixels: PixelHook | None = None) -> HashOutcome:
        """Pixel probes of every frame up to the cap; any frame that cannot be decoded fails the item, since the
        frames left unread are exactly where a picture could hide."""
        digests = {"hashes": dict(out.hashes), "probes": list(out.probes)}
        try:
            with decode_frames(data, self.config.max_pixels, self.config.max_frames) as frames:
                for k, decoded in enumerate(frames):
                    if k == 0:
                        out.width, out.height, out.format = decoded.width, decoded.height, decoded.format
                    try:
                        if self._pixels:
                            self._add_pixels(decoded.rgb, out, f"frame{k}/" if k else "")
                        if on_pixels is not None:
                            on_pixels(decoded.rgb)
                    except MemoryError:
                        return HashOutcome.failed("hash: out of memory", width=out.width, height=out.height)
                    del decoded  # one frame's pixels at a time
                total, count = frames.total, frames.count
        except DecodeError as e:
            return HashOutcome.failed(f"decode: {e.reason}", **digests)
        except MemoryError:
            return HashOutcome.failed("decode: out of memory", **digests)
        if total > count:
            out.scores[UNSCREENED_FRAMES] = float(total - count)
        return out

    def _pdq_probes(self, prefix: str, res: PdqResult) -> list[Probe]:
        names = self._probe_names.get(prefix) or tuple(f"{prefix}/{dname}" for dname in self._names)
        quality = res.quality
        return [Probe(name, "pdq", value, quality) for name, value in zip(names, res.dihedral, strict=False)]

    def _add_pixels(self, rgb: np.ndarray, out: HashOutcome, frame: str = "") -> None:
        """Pixel probes of one picture. ``frame`` prefixes the probe names of a later frame, which adds probes
        only: the item's ``hashes`` and qualities describe frame 0."""
        want = self._pixel_set
        first = not frame
        pdq_res: PdqResult | None = None
        res512: PdqResult | None = None
        phash_value: str | None = None
        big = needs_resize_512(rgb)
        need_scan = "pdq" in want or ("pdq512" in want and not big)
        plan = grey_plan(rgb.shape[0], rgb.shape[1]) if "phash" in want else None
        if too_small(rgb):
            pdq_res = ZERO_RESULT
        elif need_scan or plan is not None:
            # One pass over the pixels, one luma per pixel: PDQ's samples, pHash's greyscale block sums when
            # wanted, and the 512x512 dialect's samples gathered from the same luma rows.
            # (``pdq.shared_pass``: one compiled call from the pixels to the hashes.)
            pdq_res, res512, phash_value = shared_pass(rgb, plan, "pdq512" in want and big)
        if "pdq" in want and pdq_res is not None:
            if first:
                out.hashes["pdq"] = pdq_res.hex
                out.pdq_quality = pdq_res.quality
            out.probes.extend(self._pdq_probes(f"{frame}pdq", pdq_res))
        if "pdq512" in want:
            if res512 is None:
                res512 = pdq512_rgb(rgb) if big else pdq_res
            assert res512 is not None
            if first:
                out.hashes["pdq512"] = res512.hex
                out.pdq512_quality = res512.quality
            if big or "pdq" not in want:
                out.probes.extend(self._pdq_probes(f"{frame}pdq512", res512))
        if "phash" in want:
            value = phash_value or phash_from_grey(exact_grey(rgb))
            if first:
                out.hashes["phash"] = value
            out.probes.append(Probe(f"{frame}phash", "phash", value))
        for name, sig in self._own_pass:
            value = sig.compute_rgb(rgb)  # type: ignore[attr-defined]
            if first:
                out.hashes[name] = value
            out.probes.append(Probe(f"{frame}{name}", sig.matches(), value))
        if self.config.regions and "pdq" in want:
            for region in find_regions(rgb):
                crop = rgb[region.y0 : region.y1, region.x0 : region.x1]
                if crop.shape[0] == 0 or crop.shape[1] == 0:
                    continue
                out.probes.extend(self._pdq_probes(f"{frame}{region.name}", pdq_rgb(np.ascontiguousarray(crop))))


def probe_names(config: HashConfig, image_over_512: bool = True) -> Sequence[str]:
    """Probe names an image item gets under ``config`` (before regions), for manifests and docs."""
    names: list[str] = []
    dih = DIHEDRAL_NAMES if config.dihedral else DIHEDRAL_NAMES[:1]
    for s in config.signals:
        sig = get_signal(s)
        if sig.dihedral:
            if s == "pdq512" and "pdq" in config.signals and not image_over_512:
                continue
            names.extend(f"{s}/{d}" for d in dih)
        elif sig.input is not Input.URL:
            names.append(s)
    return names
