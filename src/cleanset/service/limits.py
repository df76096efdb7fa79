"""Per-key rate limits and the service's size limits.

A token bucket per key: ``rate`` requests a second on average, bursts of ``burst``. Checked in the event loop
thread only (no lock): one float compare and two assignments per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Everything a caller can be refused for, with the defaults a 2-core machine copes with."""

    rate: float = 2000.0  # requests per second per key, sustained (0: unlimited)
    burst: int = 4000  # requests a key may send at once
    max_body: int = 32 * 1024 * 1024  # bytes of one request body
    max_pixels: int = 50_000_000  # pixels of one frame (read from its header before it is decoded, every frame)
    max_frames: int = 8  # frames of one file decoded and hashed; more are reported as unscreened (review)
    timeout_s: float = 10.0  # an image check that takes longer is answered 503, never "keep"
    max_batch: int = 1000  # hash sets in one /v1/check/hashes request
    max_checks: int = 0  # image checks running at once (0: one per core); a timed-out one holds its slot
    queue_s: float = 1.0  # longest wait for a free check slot before 503 (busy)
    max_waiting: int = 64  # image checks waiting for a slot, and their bodies at most 8 x max_body; more: 503
    max_matches: int = 32  # matches named in one answer (the verdict counts them all)
    loosen_factor: int = 2  # an admin may loosen a threshold to at most this many times the bank's


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self._buckets: dict[str, list[float]] = {}

    def allow(self, key_id: str, now: float | None = None) -> float:
        """0.0 when the request may go ahead; otherwise the seconds until it could (for ``Retry-After``)."""
        if self.rate <= 0:
            return 0.0
        t = time.monotonic() if now is None else now
        b = self._buckets.get(key_id)
        if b is None:
            b = self._buckets[key_id] = [self.burst, t]
        tokens = min(self.burst, b[0] + (t - b[1]) * self.rate)
        b[1] = t
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            return 0.0
        b[0] = tokens
        return (1.0 - tokens) / self.rate
