"""Cryptographic digests of the stored file bytes (md5, sha1, sha256): the exact-match signals hotlines publish.

They are taken over the bytes exactly as stored, before any decoding, so a list made by hashing files on disk
matches; one changed byte (re-encoding, stripped metadata) means no match, which the perceptual signals cover.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar

from cleanset.signals import SIGNALS
from cleanset.signals.base import BytesSignal, Metric, SignalExample


class _Digest(BytesSignal):
    metric = Metric.EXACT
    default_threshold = 0
    by_default = True
    algorithm: ClassVar[str]
    # Published test vectors (RFC 1321, FIPS 180 examples) for b"" and b"abc".
    vectors: ClassVar[tuple[tuple[bytes, str], ...]]

    @classmethod
    def compute_bytes(cls, data: bytes) -> str:
        return hashlib.new(cls.algorithm, data, usedforsecurity=False).hexdigest()

    @classmethod
    def examples(cls) -> Sequence[SignalExample]:
        return [SignalExample(data, digest, note="published test vector") for data, digest in cls.vectors]


@SIGNALS.register("md5")
class Md5Signal(_Digest):
    name = "md5"
    column = "md5"
    rank = 10
    bits = 128
    algorithm = "md5"
    vectors = (
        (b"", "d41d8cd98f00b204e9800998ecf8427e"),
        (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
    )


@SIGNALS.register("sha1")
class Sha1Signal(_Digest):
    name = "sha1"
    column = "sha1"
    rank = 20
    bits = 160
    algorithm = "sha1"
    vectors = (
        (b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    )


@SIGNALS.register("sha256")
class Sha256Signal(_Digest):
    name = "sha256"
    column = "sha256"
    rank = 30
    bits = 256
    algorithm = "sha256"
    vectors = (
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    )
