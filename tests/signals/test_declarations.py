"""Signals declare themselves, and every table of signal names is derived from those declarations.

A toy signal registered here (through the registry, and taken back afterwards) shows up in each derived table and
is hashed by the engine and matched by the matcher without any other change; the built-ins' declarations give
exactly the tables that were kept by hand before (the results schema's column order is what existing runs hold).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from cleanset import signals
from cleanset.banks import names
from cleanset.banks.base import MemoryBank
from cleanset.imaging.decode import decode_image
from cleanset.matching.matcher import BankMatcher
from cleanset.signals import SIGNALS, Input, bank_signal_of, get_signal, signal_names
from cleanset.signals.base import DEFAULT_QUALITY_GATE, BytesSignal, Metric, PixelSignal, SignalExample
from cleanset.signals.engine import HashConfig, HashEngine
from cleanset.signals.examples import example_png


class ToyPixelSignal(PixelSignal):
    """A 64-bit digest of the pixels: stands in for a new perceptual hash."""

    name = "toy"
    bits = 64
    metric = Metric.HAMMING
    default_threshold = 4
    column = "toy"
    by_default = True

    @classmethod
    def compute_rgb(cls, rgb: np.ndarray) -> str:
        return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=8).hexdigest()

    @classmethod
    def examples(cls) -> Sequence[SignalExample]:
        return []


class ToyDialectSignal(ToyPixelSignal):
    """Another dialect of the toy, matched against ``toy`` bank entries, with a quality (like pdq512)."""

    name = "toy_q"
    quality_gated = True
    bank_signal = "toy"
    column = None
    by_default = False


class ToyCrcSignal(BytesSignal):
    """CRC-32 of the stored bytes, matched against a bank signal of another name, and with no results column."""

    name = "toy_crc"
    bits = 32
    metric = Metric.EXACT
    bank_signal = "crc32"

    @classmethod
    def compute_bytes(cls, data: bytes) -> str:
        return f"{zlib.crc32(data):08x}"

    @classmethod
    def examples(cls) -> Sequence[SignalExample]:
        return []


class Crc32Signal(ToyCrcSignal):
    name = "crc32"
    bank_signal = None


TOYS = (ToyPixelSignal, ToyDialectSignal, ToyCrcSignal, Crc32Signal)


@pytest.fixture
def toys() -> Iterator[None]:
    signal_names()  # built-ins first, as any lookup would
    for cls in TOYS:
        SIGNALS.add(cls.name, cls)
    try:
        yield
    finally:
        for cls in TOYS:
            SIGNALS.remove(cls.name)


def test_builtin_tables_are_todays() -> None:
    assert signals.hash_columns() == ("md5", "sha1", "sha256", "pdq", "pdq512", "phash", "url_md5", "url_sha1")
    assert signals.column_probes() == ("md5", "sha1", "sha256", "url_md5", "url_sha1", "phash")
    assert signals.bank_signals() == ("md5", "pdq", "phash", "sha1", "sha256", "url_md5", "url_sha1")
    assert signals.exact_signals() == {"md5", "sha1", "sha256", "url_md5", "url_sha1"}
    assert signals.quality_gated_signals() == {"pdq"}
    assert signals.image_signals() == ("md5", "sha1", "sha256", "pdq", "pdq512", "phash")
    assert signals.default_signals(Input.URL) == ("url_md5", "url_sha1")
    assert signals.given_signals() == ("md5", "sha1", "sha256")


def test_builtin_declarations() -> None:
    thresholds = {name: get_signal(name).default_threshold for name in signal_names()}
    assert thresholds == {
        "md5": 0,
        "sha1": 0,
        "sha256": 0,
        "url_md5": 0,
        "url_sha1": 0,
        "pdq": 31,
        "pdq512": 31,
        "phash": 8,
    }
    inputs = {name: get_signal(name).input for name in signal_names()}
    assert {n for n, i in inputs.items() if i is Input.BYTES} == {"md5", "sha1", "sha256"}
    assert {n for n, i in inputs.items() if i is Input.PIXELS} == {"pdq", "pdq512", "phash"}
    assert {n for n, i in inputs.items() if i is Input.URL} == {"url_md5", "url_sha1"}
    assert {bank_signal_of(n) for n in signal_names()} == set(signals.bank_signals())
    assert bank_signal_of("pdq512") == "pdq" and bank_signal_of("pdq") == "pdq" and bank_signal_of("md5") == "md5"
    assert {n for n in signal_names() if get_signal(n).dihedral} == {"pdq", "pdq512"}
    assert all(get_signal(n).by_default and get_signal(n).column == n for n in signal_names())
    assert DEFAULT_QUALITY_GATE == 50


def test_module_tables_are_the_derived_ones() -> None:
    from cleanset.assess import EXACT_SIGNALS
    from cleanset.assess.core import DEFAULT_QUALITY_GATE as ASSESS_GATE
    from cleanset.cli import options
    from cleanset.matching.matcher import QUALITY_GATED_SIGNALS
    from cleanset.pipeline import tasks, urlscan
    from cleanset.pipeline.scan import DEFAULT_QUALITY_GATE as SCAN_GATE
    from cleanset.runs.schema import COLUMN_PROBES, HASH_COLUMNS, ITEM_SCHEMA
    from cleanset.signals.engine import IMAGE_SIGNALS, URL_SIGNALS

    assert signals.hash_columns() == HASH_COLUMNS and signals.column_probes() == COLUMN_PROBES
    assert [c for c in ITEM_SCHEMA.names if c in HASH_COLUMNS] == list(HASH_COLUMNS)
    assert signals.bank_signals() == names.BANK_SIGNALS
    assert signals.exact_signals() == EXACT_SIGNALS
    assert signals.quality_gated_signals() == QUALITY_GATED_SIGNALS
    assert (signals.image_signals(), signals.default_signals(Input.URL)) == (IMAGE_SIGNALS, URL_SIGNALS)
    assert tasks.GIVEN_SIGNALS == urlscan.GIVEN_SIGNALS == signals.given_signals()
    assert urlscan.URL_SIGNALS == {"url_md5": "md5", "url_sha1": "sha1"}
    assert options.DEFAULT_QUALITY_GATE == ASSESS_GATE == SCAN_GATE == DEFAULT_QUALITY_GATE


def test_a_registered_toy_shows_up_in_every_derived_table(toys: None) -> None:
    assert signals.hash_columns()[-1] == "toy"  # after every built-in: existing columns keep their places
    assert "toy_crc" not in signals.hash_columns()
    assert "toy" in signals.column_probes() and "toy_q" not in signals.column_probes()
    assert "toy_q" not in signals.bank_signals() and bank_signal_of("toy_q") == "toy"
    assert {"toy", "crc32"} <= set(signals.bank_signals())
    assert "toy_crc" not in signals.bank_signals()  # it fills the crc32 bank signal
    assert bank_signal_of("toy_crc") == "crc32"
    assert {"crc32"} <= signals.exact_signals() and "toy" not in signals.exact_signals()
    assert signals.quality_gated_signals() == {"pdq", "toy"}  # through its dialect toy_q, as pdq through pdq512
    assert signals.image_signals()[-1] == "toy"
    assert not {"toy_crc", "toy_q"} & set(signals.default_signals())
    assert names.resolve("TOY") == "toy" and "crc32" in names.accepted_names()


def test_the_toy_is_taken_back_afterwards() -> None:
    assert "toy" not in signal_names() and "toy" not in signals.hash_columns()
    assert signals.quality_gated_signals() == {"pdq"}
    assert names.resolve("toy") is None


def test_a_registered_toy_is_hashed_and_matched(toys: None) -> None:
    data = example_png("waves-96x128")
    engine = HashEngine(HashConfig(signals=("md5", "toy", "toy_crc"), dihedral=False, regions=False))
    out = engine.hash_bytes(data)
    toy = ToyPixelSignal.compute_rgb(decode_image(data).rgb)
    assert out.hashes["toy"] == toy and out.hashes["toy_crc"] == f"{zlib.crc32(data):08x}"
    assert {(p.name, p.signal) for p in out.probes} == {("md5", "md5"), ("toy", "toy"), ("toy_crc", "crc32")}

    near = f"{int(toy, 16) ^ 0b111:016x}"  # 3 bits away: within the toy's default threshold of 4
    bank = MemoryBank.from_hex("toys", [("toy", near, "T1"), ("crc32", out.hashes["toy_crc"], "C1")])
    matches, _notes = BankMatcher.build([bank]).match(out.probes)
    assert {(m.signal, m.entry_id, m.distance) for m in matches} == {("toy", "T1", 3), ("crc32", "C1", 0)}
