"""What may travel unscreened beside an item: text and JSON only, never anything that can carry an image."""

from __future__ import annotations

import base64
import gzip
import io

import pytest
from PIL import Image

from cleanset.sources.base import SIDECAR_MAX_BYTES, sidecar_kind


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"a photo of a red bicycle", "text"),
        (b"BMW parked at dusk", "text"),
        ("\ufeffcaf\u00e9 au lait".encode(), "text"),
        (b'{"url": "https://example.org/a.jpg", "caption": "x"}', "json"),
        (b"", "text"),
        (" ".join(["a long caption with many words"] * 200).encode(), "text"),
        (b'{"sha256": "' + b"ab" * 32 + b'", "embedding": [0.12, -0.5, 0.33]}', "json"),
    ],
)
def test_text_and_json_pass(data: bytes, kind: str) -> None:
    assert sidecar_kind(data)[0] == kind


@pytest.mark.parametrize(
    "data",
    [
        _png(),
        b"\x00\x01\x02binary",
        b"\xff\xfe\xfa not utf-8",
        gzip.compress(b"hello"),
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        b'{"img": "data:image/png;base64,iVBORw0KGgo="}',
        b'{"blob": "' + b"QUJD" * 200 + b'"}',
        b"x" * (SIDECAR_MAX_BYTES + 1),
        base64.encodebytes(_png() * 40),  # MIME-wrapped base64, 76 characters a line
        " ".join(f"{b:02x}" for b in _png() * 10).encode(),  # hex bytes with spaces
        "".join(f"\\x{b:02x}" for b in _png() * 10).encode(),  # \xNN escapes
        ", ".join(str(b) for b in _png() * 10).encode(),  # a JSON-style byte array
        b"a" * 70_000 + b" <svg xmlns='http://www.w3.org/2000/svg'/>",  # SVG past the first 64 KiB
    ],
)
def test_anything_that_can_carry_an_image_is_refused(data: bytes) -> None:
    kind, why = sidecar_kind(data)
    assert kind is None and why
