"""One benign fixture every decision path is checked against: random hex values stand in for list entries, and
items whose probes hit them in each way the policy distinguishes (exact, near, far, review-only bank, allow-listed,
below the quality gate, unscreened frames, nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cleanset.assess import Policy
from cleanset.banks.base import MemoryBank
from cleanset.records import UNSCREENED_FRAMES, Probe

RNG = np.random.default_rng(20261202)


def rand_hex(nbytes: int) -> str:
    return RNG.integers(0, 256, nbytes, dtype=np.uint8).tobytes().hex()


def flip(hex_value: str, n: int, start: int = 0) -> str:
    """``hex_value`` with bits start..start+n-1 flipped: exactly n bits away."""
    b = bytearray(bytes.fromhex(hex_value))
    for i in range(start, start + n):
        b[i // 8] ^= 1 << (i % 8)
    return b.hex()


@dataclass
class Case:
    key: str
    probes: list[Probe]
    scores: dict[str, float] = field(default_factory=dict)
    expected: str = "keep"  # under POLICY


M1, M3, M9 = rand_hex(16), rand_hex(16), rand_hex(16)
P1, P2 = rand_hex(32), rand_hex(32)
P4 = flip(P1, 40, start=100)  # the allow entry: 40 bits from P1, so a probe between the two is near both

BLOCK = MemoryBank.from_hex("hotline", [("md5", M1, "m1"), ("pdq", P1, "p1"), ("pdq", P2, "p2")], version=3)
SOFT = MemoryBank.from_hex("soft", [("md5", M3, "s1")])
ALLOW = MemoryBank.from_hex("fp", [("pdq", P4, "a1")], allow=True)
BANKS = [BLOCK, SOFT, ALLOW]
POLICY = Policy(review_above=10, bank_actions={"soft": "review"}, allow_banks=frozenset({"fp"}))

CASES = [
    Case("exact", [Probe("md5", "md5", M1)], expected="remove"),
    Case("near", [Probe("pdq/original", "pdq", flip(P1, 5), 90)], expected="remove"),
    Case("far", [Probe("pdq/rotate90", "pdq", flip(P2, 20), 90)], expected="review"),
    Case("soft", [Probe("md5", "md5", M3)], expected="review"),
    Case("soft-and-near", [Probe("md5", "md5", M3), Probe("pdq/flipx", "pdq", flip(P1, 3), 90)], expected="remove"),
    Case("allowed", [Probe("pdq/original", "pdq", flip(P1, 20, start=100), 90)], expected="keep"),
    Case("gated", [Probe("pdq/original", "pdq", flip(P1, 5), 10)], expected="keep"),
    Case("gated-exact", [Probe("pdq/original", "pdq", P1, 10)], expected="remove"),
    Case("clean", [Probe("md5", "md5", M9), Probe("pdq/original", "pdq", rand_hex(32), 90)]),
    Case("unscreened", [Probe("md5", "md5", M9)], {UNSCREENED_FRAMES: 2.0}, expected="review"),
    Case("unscreened-exact", [Probe("md5", "md5", M1)], {UNSCREENED_FRAMES: 1.0}, expected="remove"),
]
