"""One conformance kit for every registered signal: examples reproduce, hex round-trips, distance is a metric,
and malformed values are refused. A new signal is covered by registering it."""

from __future__ import annotations

import random

import pytest

from cleanset.imaging.decode import decode_image
from cleanset.signals import get_signal, signal_names
from cleanset.signals.base import BytesSignal, Metric, PixelSignal, Signal, UrlSignal

ALL = signal_names()


def compute(sig: type[Signal], value: bytes | str) -> str:
    if issubclass(sig, BytesSignal):
        assert isinstance(value, bytes)
        return sig.compute_bytes(value)
    if issubclass(sig, UrlSignal):
        assert isinstance(value, str)
        return sig.compute_url(value)
    if issubclass(sig, PixelSignal):
        assert isinstance(value, bytes)
        return sig.compute_rgb(decode_image(value).rgb)
    raise AssertionError(f"{sig.name} is neither a bytes, URL nor pixel signal")


def random_values(sig: type[Signal], n: int, seed: int) -> list[str]:
    rng = random.Random(f"{sig.name}:{seed}")
    return [f"{rng.getrandbits(sig.bits):0{sig.hex_len()}x}" for _ in range(n)]


def test_builtin_signals_are_registered() -> None:
    assert set(ALL) >= {"md5", "sha1", "sha256", "pdq", "pdq512", "phash", "url_md5", "url_sha1"}


@pytest.mark.parametrize("name", ALL)
def test_declaration(name: str) -> None:
    sig = get_signal(name)
    assert sig.name == name
    assert sig.bits % 8 == 0 and sig.bits > 0
    assert sig.hex_len() == sig.bits // 4
    assert isinstance(sig.metric, Metric)
    if sig.metric is Metric.EXACT:
        assert sig.default_threshold == 0
    else:
        assert 0 <= sig.default_threshold < sig.bits // 4


@pytest.mark.parametrize("name", ALL)
def test_examples_reproduce(name: str) -> None:
    sig = get_signal(name)
    examples = sig.examples()
    assert len(examples) >= 2, "every signal ships at least two examples"
    for ex in examples:
        got = compute(sig, ex.input)
        assert got == ex.expected, f"{name} example {ex.note!r}"
        assert sig.validate(got) == got  # computed values are already canonical
    # distinct inputs give distinct values (the examples are chosen to differ)
    assert len({ex.expected for ex in examples}) == len(examples)


@pytest.mark.parametrize("name", ALL)
def test_hex_round_trip(name: str) -> None:
    sig = get_signal(name)
    for value in random_values(sig, 20, 1) + [ex.expected for ex in sig.examples()]:
        raw = sig.to_bytes(value)
        assert len(raw) * 8 == sig.bits
        assert sig.to_hex(raw) == value
        assert sig.validate(f"  {value.upper()}\n") == value


@pytest.mark.parametrize("name", ALL)
def test_distance_properties(name: str) -> None:
    sig = get_signal(name)
    a, b, c = random_values(sig, 3, 2)
    for x in (a, b, c):
        assert sig.distance(x, x) == 0
        assert sig.distance(x, x.upper()) == 0
    assert sig.distance(a, b) == sig.distance(b, a) > 0
    assert sig.distance(a, c) <= sig.distance(a, b) + sig.distance(b, c)
    flipped = f"{int(a, 16) ^ 1:0{sig.hex_len()}x}"  # lowest bit flipped
    assert sig.distance(a, flipped) == 1
    if sig.metric is Metric.HAMMING:
        inverse = f"{int(a, 16) ^ ((1 << sig.bits) - 1):0{sig.hex_len()}x}"
        assert sig.distance(a, inverse) == sig.bits
    else:
        assert sig.distance(a, b) == 1


@pytest.mark.parametrize("name", ALL)
def test_validate_rejects_malformed(name: str) -> None:
    sig = get_signal(name)
    good = random_values(sig, 1, 3)[0]
    malformed = (good[:-1], good + "0", "", "g" + good[1:], "0x" + good[2:], "+" + good[1:], good[:-2] + "_1")
    for bad in malformed:
        with pytest.raises(ValueError, match=name):
            sig.validate(bad)
    with pytest.raises(ValueError):
        sig.to_hex(b"\x00" * (sig.bits // 8 + 1))
