"""Prometheus text exposition, written by hand: a handful of counters and one histogram do not need a client
library, and the request path only does dictionary increments under the GIL (no lock, no allocation per sample).
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cleanset.service.live import BankSet

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.verdicts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: defaultdict[str, float] = defaultdict(float)
        self.reloads = 0

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        counts = self.latency.get(route)
        if counts is None:
            counts = self.latency[route] = [0] * (len(BUCKETS) + 1)
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[route] += seconds

    def verdict(self, route: str, verdict: str | None) -> None:
        self.verdicts[(route, verdict or "failed")] += 1

    def render(self, banks: BankSet) -> str:
        out = [
            "# HELP cleanset_requests_total HTTP requests by route and status.",
            "# TYPE cleanset_requests_total counter",
        ]
        out += [
            f'cleanset_requests_total{{route="{esc(r)}",status="{s}"}} {n}'
            for (r, s), n in sorted(self.requests.items())
        ]
        out += [
            "# HELP cleanset_request_seconds Request latency in the service, by route.",
            "# TYPE cleanset_request_seconds histogram",
        ]
        for route, counts in sorted(self.latency.items()):
            acc = 0
            for le, n in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
                acc += n
                out.append(f'cleanset_request_seconds_bucket{{route="{esc(route)}",le="{le}"}} {acc}')
            out.append(f'cleanset_request_seconds_sum{{route="{esc(route)}"}} {self.latency_sum[route]:.6f}')
            out.append(f'cleanset_request_seconds_count{{route="{esc(route)}"}} {acc}')
        out += [
            "# HELP cleanset_verdicts_total Answers by route and verdict.",
            "# TYPE cleanset_verdicts_total counter",
        ]
        out += [
            f'cleanset_verdicts_total{{route="{esc(r)}",verdict="{esc(v)}"}} {n}'
            for (r, v), n in sorted(self.verdicts.items())
        ]
        out += [
            "# HELP cleanset_bank_version Version of each served bank (entries as a label-free gauge beside it).",
            "# TYPE cleanset_bank_version gauge",
        ]
        for b in banks.described:
            out.append(f'cleanset_bank_version{{bank="{esc(b["name"])}"}} {b["version"]}')
        out += ["# TYPE cleanset_bank_entries gauge"]
        for b in banks.described:
            out.append(f'cleanset_bank_entries{{bank="{esc(b["name"])}"}} {b["entry_count"]}')
        out += [
            "# TYPE cleanset_bank_generation gauge",
            f"cleanset_bank_generation {banks.generation}",
            "# TYPE cleanset_bank_reloads_total counter",
            f"cleanset_bank_reloads_total {self.reloads}",
            "# TYPE cleanset_process_resident_bytes gauge",
            f"cleanset_process_resident_bytes {resident_bytes()}",
        ]
        return "\n".join(out) + "\n"


def esc(value: str) -> str:
    """A label value as the exposition format quotes it (backslash, double quote, newline), so no value can end
    its label and write a line of its own. Routes come from a fixed list (``app.route_of``); this is the second
    fence."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resident_bytes() -> int:
    """Current RSS (Linux ``/proc``; 0 elsewhere): what the reload test and the bench watch."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
