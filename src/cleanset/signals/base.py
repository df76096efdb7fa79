"""The Signal seam: one class per hash kind, registered by name.

A signal declares what it is (bit length, input kind, how distance is measured, default match threshold, quality
gate, the bank signal it matches, its results column, whether it is computed by default) and how its values are
written (lower-case hex, fixed length). Every table of signal names elsewhere (the results schema's hash columns,
the bank signals, the policy's exact signals, the matcher's gated signals, the engine's defaults) is derived from
these declarations by the functions in ``cleanset.signals``; none is kept by hand.

Computing values from images is the hashing engine's job (``cleanset.signals.engine``), which decodes each image
once and feeds every signal from that one decode; a signal only supplies the per-kind hook (``BytesSignal``,
``PixelSignal`` or ``UrlSignal``).

``examples()`` feeds the shared conformance test (tests/signals/test_conformance.py) that every registered signal
must pass.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import numpy as np


_HEX = re.compile(r"[0-9a-f]*")


class Metric(StrEnum):
    EXACT = "exact"  # equal or not: cryptographic and URL hashes
    HAMMING = "hamming"  # bit distance: perceptual hashes


class Input(StrEnum):
    """What a signal is computed from; each kind has its hook class below."""

    BYTES = "bytes"  # the file's bytes as stored
    PIXELS = "pixels"  # decoded RGB pixels
    URL = "url"  # the item's URL


#: The quality gate's default: a probe of a quality-gated signal whose quality is below it is matched at distance 0
#: only. Every default (scan options, the matcher, ``assess``, the CLI) is this one constant.
DEFAULT_QUALITY_GATE = 50

#: ``Signal.rank`` of a signal that does not declare one: after every built-in, in name order.
DEFAULT_RANK = 1000


@dataclass(frozen=True)
class SignalExample:
    """An input and the value the signal must give for it (``input`` is bytes, a URL string, or a path)."""

    input: bytes | str
    expected: str
    note: str = ""


class Signal(ABC):
    name: ClassVar[str]
    bits: ClassVar[int]
    #: exact (equal or not) or a distance (Hamming bits)
    metric: ClassVar[Metric]
    #: what it is computed from; set by ``BytesSignal``, ``PixelSignal`` and ``UrlSignal``
    input: ClassVar[Input]
    #: the match threshold a bank uses unless its manifest says otherwise (0 for exact signals)
    default_threshold: ClassVar[int] = 0
    #: probes of this signal carry a quality; below the gate (``DEFAULT_QUALITY_GATE`` unless configured) they
    #: are matched at distance 0 only
    quality_gated: ClassVar[bool] = False
    #: the bank signal its values are matched against; None: its own name (pdq512 declares ``pdq``)
    bank_signal: ClassVar[str | None] = None
    #: its string column in the results schema (``runs.schema``); None: its value is kept in probes only
    column: ClassVar[str | None] = None
    #: one probe per rotation/flip (``<name>/<dihedral>``) rather than one probe named after the signal
    dihedral: ClassVar[bool] = False
    #: computed when no signal list is given (the engine's and ``cleanset hash``'s defaults)
    by_default: ClassVar[bool] = False
    #: position among the hash columns and in the default signal list (ties by name); a new signal goes last so
    #: existing columns keep their places
    rank: ClassVar[int] = DEFAULT_RANK

    @classmethod
    def matches(cls) -> str:
        """The bank signal this signal's probes are matched against."""
        return cls.bank_signal or cls.name

    @classmethod
    def is_exact(cls) -> bool:
        return cls.metric is Metric.EXACT

    @classmethod
    def hex_len(cls) -> int:
        return cls.bits // 4

    @classmethod
    def validate(cls, text: str) -> str:
        """Canonical form of a hex value, or ValueError naming what is wrong (used by list importers)."""
        t = text.strip().lower()
        if len(t) != cls.hex_len():
            raise ValueError(f"{cls.name} value must be {cls.hex_len()} hex digits, got {len(t)}")
        # int(t, 16) would also accept "0x", "+" and "_": a list value must be plain hex digits only
        if not _HEX.fullmatch(t):
            raise ValueError(f"{cls.name} value is not hexadecimal")
        return t

    @classmethod
    def to_bytes(cls, text: str) -> bytes:
        return bytes.fromhex(cls.validate(text))

    @classmethod
    def to_hex(cls, value: bytes) -> str:
        if len(value) * 8 != cls.bits:
            raise ValueError(f"{cls.name} value must be {cls.bits // 8} bytes, got {len(value)}")
        return value.hex()

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        """Hamming distance for perceptual signals; 0 or 1 (equal or not) for exact ones."""
        if cls.metric is Metric.EXACT:
            return 0 if cls.validate(a) == cls.validate(b) else 1
        return (int(cls.validate(a), 16) ^ int(cls.validate(b), 16)).bit_count()

    @classmethod
    @abstractmethod
    def examples(cls) -> Sequence[SignalExample]: ...


class BytesSignal(Signal):
    """Computed from the file's bytes as stored (cryptographic digests)."""

    input = Input.BYTES

    @classmethod
    @abstractmethod
    def compute_bytes(cls, data: bytes) -> str: ...


class PixelSignal(Signal):
    """Computed from decoded pixels (HxWx3 uint8 RGB); the engine decodes once and feeds every pixel signal.

    ``examples()`` inputs are encoded image bytes; the conformance test decodes them with
    ``cleanset.imaging.decode`` and calls ``compute_rgb``.
    """

    input = Input.PIXELS

    @classmethod
    @abstractmethod
    def compute_rgb(cls, rgb: np.ndarray) -> str: ...


class UrlSignal(Signal):
    """Computed from an item's URL after normalisation (rules in ``cleanset.signals.url``)."""

    input = Input.URL

    @classmethod
    @abstractmethod
    def compute_url(cls, url: str) -> str: ...
