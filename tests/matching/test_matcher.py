"""BankMatcher: every bank holding a probe's signal, per-bank thresholds, the PDQ quality gate, allow banks,
one match per entry, and batch answers identical to item-by-item answers (checked against a naive reference)."""

from __future__ import annotations

import random

import pytest

from cleanset.banks.base import MemoryBank
from cleanset.errors import UserError
from cleanset.matching.matcher import BankMatcher
from cleanset.records import Match, Probe


def rand_hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def near(rng: random.Random, value: str, d: int) -> str:
    bits = len(value) * 4
    x = int(value, 16)
    for b in rng.sample(range(bits), d):
        x ^= 1 << b
    return f"{x:0{len(value)}x}"


def dist(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.fixture()
def rng() -> random.Random:
    return random.Random(1234)


def test_matches_name_bank_entry_and_distance_never_the_value(rng: random.Random) -> None:
    listed = rand_hex(rng, 256)
    md5 = rand_hex(rng, 128)
    bank = MemoryBank.from_hex("hotline", [("pdq", listed, "e-pdq"), ("md5", md5, "e-md5")], version=3)
    matcher = BankMatcher.build([bank])
    probe = near(rng, listed, 12)
    matches, notes = matcher.match(
        [Probe("md5", "md5", md5), Probe("pdq/original", "pdq", probe, 90), Probe("phash", "phash", "0" * 16)]
    )
    assert matches == [
        Match("hotline", 3, "e-md5", "md5", 0, "md5"),
        Match("hotline", 3, "e-pdq", "pdq", 12, "pdq/original"),
    ]
    assert notes == []
    assert listed not in repr(matches) and md5 not in repr(matches)


def test_threshold_is_the_banks_own(rng: random.Random) -> None:
    listed = rand_hex(rng, 256)
    strict = MemoryBank.from_hex("strict", [("pdq", listed, "a")])
    strict.thresholds["pdq"] = 10
    loose = MemoryBank.from_hex("loose", [("pdq", listed, "b")])
    matcher = BankMatcher.build([strict, loose])
    for d, banks in ((10, ["loose", "strict"]), (11, ["loose"]), (31, ["loose"]), (32, [])):
        matches, _ = matcher.match([Probe("pdq/original", "pdq", near(rng, listed, d), 100)])
        assert sorted(m.bank for m in matches) == banks, d


def test_low_quality_pdq_is_matched_exactly_only(rng: random.Random) -> None:
    listed = rand_hex(rng, 256)
    matcher = BankMatcher.build([MemoryBank.from_hex("b", [("pdq", listed, "x")])])
    far = near(rng, listed, 3)
    matches, notes = matcher.match([Probe("pdq/rotate90", "pdq", far, 49)])
    assert matches == []
    assert notes == ["pdq probe pdq/rotate90 below quality gate: matched exactly only"]
    matches, notes = matcher.match([Probe("pdq512/original", "pdq", listed, 10)])
    assert [m.distance for m in matches] == [0]
    assert notes == ["pdq probe pdq512/original below quality gate: matched exactly only"]
    assert len(matcher.match([Probe("pdq/original", "pdq", far, 50)])[0]) == 1
    assert len(matcher.match([Probe("pdq/original", "pdq", far, None)])[0]) == 1  # no quality: not gated
    strict = BankMatcher.build([MemoryBank.from_hex("b", [("pdq", listed, "x")])], quality_gate=80)
    assert strict.match([Probe("pdq/original", "pdq", far, 79)])[0] == []


def test_allow_bank_suppresses_other_banks_for_that_probe(rng: random.Random) -> None:
    benign = rand_hex(rng, 256)
    other = rand_hex(rng, 256)
    hotline = MemoryBank.from_hex("hotline", [("pdq", near(rng, benign, 4), "h1"), ("pdq", other, "h2")])
    allow = MemoryBank.from_hex("fp", [("pdq", benign, "fp-7")], allow=True)
    allow.thresholds["pdq"] = 8
    matcher = BankMatcher.build([hotline, allow])
    probes = [Probe("pdq/original", "pdq", near(rng, benign, 5), 100), Probe("pdq/flipx", "pdq", other, 100)]
    matches, notes = matcher.match(probes)
    # the first probe is within 8 of the allow entry: no hotline match from it; the second probe still matches
    assert [(m.entry_id, m.probe) for m in matches] == [("h2", "pdq/flipx")]
    assert notes == ["probe pdq/original is in allow bank fp (entry fp-7): not matched"]
    # outside the allow bank's threshold the hotline match stands
    far_probe = Probe("pdq/original", "pdq", near(rng, benign, 12), 100)
    far_matches, far_notes = matcher.match([far_probe])
    assert far_notes == [] and [m.bank for m in far_matches if m.entry_id == "h1"] == ["hotline"]


def test_allow_bank_applies_to_exact_signals(rng: random.Random) -> None:
    md5 = rand_hex(rng, 128)
    matcher = BankMatcher.build(
        [
            MemoryBank.from_hex("hotline", [("md5", md5, "h")]),
            MemoryBank.from_hex("fp", [("md5", md5, "a")], allow=True),
        ]
    )
    assert matcher.match([Probe("md5", "md5", md5)]) == ([], ["probe md5 is in allow bank fp (entry a): not matched"])


def test_one_match_per_entry_smallest_distance_then_first_probe(rng: random.Random) -> None:
    listed = rand_hex(rng, 256)
    matcher = BankMatcher.build([MemoryBank.from_hex("b", [("pdq", listed, "x")])])
    a, b, c = (near(rng, listed, d) for d in (9, 4, 4))
    probes = [
        Probe("pdq/original", "pdq", a, 100),
        Probe("pdq/rotate90", "pdq", b, 100),
        Probe("trim/original", "pdq", c, 100),
    ]
    matches, _ = matcher.match(probes)
    assert matches == [Match("b", 1, "x", "pdq", 4, "pdq/rotate90")]


def test_same_bank_twice_is_refused(rng: random.Random) -> None:
    bank = MemoryBank.from_hex("b", [("md5", rand_hex(rng, 128), "x")])
    with pytest.raises(UserError, match="given twice"):
        BankMatcher.build([bank, bank])


def test_malformed_probe_is_named() -> None:
    matcher = BankMatcher.build([MemoryBank.from_hex("b", [("md5", "0" * 32, "x")])])
    with pytest.raises(UserError, match="probe md5:"):
        matcher.match([Probe("md5", "md5", "xyz")])


@pytest.mark.parametrize(
    "bad",
    [
        "0" * 30 + " 1",  # the right length, with a space: bytes.fromhex skips it, then fails on what follows
        "0" * 30 + "  ",  # two spaces: bytes.fromhex skips both and succeeds, one byte short
        "0" * 30 + "0g",  # not hexadecimal
        "0x" + "0" * 30,
        "0" * 31,
    ],
)
def test_malformed_probe_among_good_ones_is_named(bad: str) -> None:
    """Probe values are decoded together; one bad value among good ones is still refused and named."""
    matcher = BankMatcher.build([MemoryBank.from_hex("b", [("md5", "0" * 32, "x")])])
    good = [Probe(f"md5-{i}", "md5", f"{i:032x}") for i in range(3)]
    with pytest.raises(UserError, match="probe md5-bad:"):
        matcher.match([*good, Probe("md5-bad", "md5", bad), *good])


def test_probe_values_in_any_case_and_padded_still_match() -> None:
    """What ``Signal.validate`` accepts (upper case, surrounding whitespace) matches as before."""
    value = "ab" * 16
    matcher = BankMatcher.build([MemoryBank.from_hex("b", [("md5", value, "x")])])
    for given in (value, value.upper(), f" {value}\n"):
        matches, _ = matcher.match([Probe("md5", "md5", "0" * 32), Probe("md5/2", "md5", given)])
        assert [m.probe for m in matches] == ["md5/2"]


def reference(banks: list[MemoryBank], probes: list[Probe], gate: int) -> tuple[list[Match], list[str]]:
    """The matching rules written out naively, in Python integers."""
    notes = [
        f"pdq probe {p.name} below quality gate: matched exactly only"
        for p in probes
        if p.signal == "pdq" and p.quality is not None and p.quality < gate
    ]

    def hits(bank: MemoryBank, p: Probe) -> list[tuple[str, int]]:
        if p.signal not in bank.rows:
            return []
        t = bank.threshold(p.signal) if p.signal in ("pdq", "phash") else 0
        if p.signal == "pdq" and p.quality is not None and p.quality < gate:
            t = 0
        vals, ids = bank.rows[p.signal]
        out = []
        for v, eid in zip(vals, ids, strict=True):
            d = dist(v.tobytes().hex(), p.value)
            if d <= t:
                out.append((eid, d))
        return out

    best: dict[tuple[str, str], tuple[int, int, Match]] = {}
    for pos, p in enumerate(probes):
        allowed = [(b.name, h[0]) for b in banks if b.allow for h in hits(b, p)]
        if allowed:
            notes.append(f"probe {p.name} is in allow bank {allowed[0][0]} (entry {allowed[0][1]}): not matched")
            continue
        for b in banks:
            if b.allow:
                continue
            for eid, d in hits(b, p):
                key = (b.name, eid)
                if key not in best or (d, pos) < best[key][:2]:
                    best[key] = (d, pos, Match(b.name, b.version, eid, p.signal, d, p.name))
    return sorted((m for *_, m in best.values()), key=lambda m: (m.distance, m.bank, m.entry_id)), notes


def test_batch_equals_single_equals_reference(rng: random.Random) -> None:
    centres = [rand_hex(rng, 256) for _ in range(30)]
    phashes = [rand_hex(rng, 64) for _ in range(30)]
    md5s = [rand_hex(rng, 128) for _ in range(30)]

    def rows(tag: str, k: int) -> list[tuple[str, str, str]]:
        out = [("pdq", near(rng, rng.choice(centres), rng.randrange(0, 20)), f"{tag}-p{i}") for i in range(k)]
        out += [("phash", near(rng, rng.choice(phashes), rng.randrange(0, 6)), f"{tag}-h{i}") for i in range(k)]
        out += [("md5", rng.choice(md5s), f"{tag}-m{i}") for i in range(k // 3)]
        return out

    a = MemoryBank.from_hex("a", rows("a", 60), version=2)
    b = MemoryBank.from_hex("b", rows("b", 40))
    b.thresholds.update({"pdq": 20, "phash": 4})
    fp = MemoryBank.from_hex("fp", rows("fp", 5), allow=True)
    fp.thresholds.update({"pdq": 6, "phash": 1})
    banks = [a, b, fp]
    items = []
    for _ in range(40):
        probes = []
        for j in range(rng.randrange(0, 10)):
            kind = rng.choice(["pdq", "pdq", "phash", "md5"])
            if kind == "pdq":
                value = near(rng, rng.choice(centres), rng.randrange(0, 45))
                probes.append(Probe(f"pdq/{j}", "pdq", value, rng.choice([None, 20, 49, 50, 90])))
            elif kind == "phash":
                probes.append(Probe(f"phash{j}", "phash", near(rng, rng.choice(phashes), rng.randrange(0, 12))))
            else:
                probes.append(Probe(f"md5{j}", "md5", rng.choice([*md5s, rand_hex(rng, 128)])))
        items.append(probes)
    matcher = BankMatcher.build(banks)
    batch = matcher.match_many(items)
    singles = [matcher.match(p) for p in items]
    assert batch == singles
    want = [reference(banks, p, 50) for p in items]
    assert batch == want
    assert sum(len(m) for m, _ in batch) > 40 and any(n for _, n in batch)


def test_repeated_probe_values_match_like_distinct_ones(rng: random.Random) -> None:
    """Probe values repeated within an item (a symmetric picture's rotations, dialects that agree) and across
    items are asked once; every probe holding the value still gets its matches, notes and tie-breaks."""
    centres = [rand_hex(rng, 256) for _ in range(8)]
    bank = MemoryBank.from_hex(
        "a", [("pdq", near(rng, rng.choice(centres), rng.randrange(0, 12)), f"e{i}") for i in range(40)]
    )
    fp = MemoryBank.from_hex("fp", [("pdq", near(rng, centres[0], 3), "fp0")], allow=True)
    fp.thresholds["pdq"] = 4
    banks = [bank, fp]
    shared = [near(rng, rng.choice(centres), rng.randrange(0, 40)) for _ in range(6)]
    items = []
    for _ in range(25):
        probes = []
        for k, t in enumerate(("original", "rotate90", "flipx", "flipy")):
            value = rng.choice(shared)
            quality = rng.choice([None, 30, 90])
            # names sort in position order, as the reference breaks ties by position
            probes.append(Probe(f"{2 * k}pdq/{t}", "pdq", value, quality))
            probes.append(Probe(f"{2 * k + 1}pdq512/{t}", "pdq", rng.choice([value, rng.choice(shared)]), quality))
        items.append(probes)
    matcher = BankMatcher.build(banks)
    batch = matcher.match_many(items)
    assert batch == [matcher.match(p) for p in items]
    assert batch == [reference(banks, p, 50) for p in items]
    assert sum(len(m) for m, _ in batch) > 25
