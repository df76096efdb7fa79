"""``assess``: probes against banks under a policy, in one call or a batch.

The batch form exists for the scan: the matcher answers a whole batch with one query per (bank, signal) index,
which is where its speed comes from, so callers hand over every item of a batch at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cleanset.assess.policy import Policy, judgement
from cleanset.records import Match, Probe, Status, Verdict
from cleanset.signals import DEFAULT_QUALITY_GATE as DEFAULT_QUALITY_GATE

if TYPE_CHECKING:
    from cleanset.matching.matcher import BankMatcher


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the banks and the policy say about one item.

    ``reasons`` explain the verdict (one line per counted match, unscreened frames, scores); ``notes`` are the
    matcher's remarks about probes (below the quality gate, inside an allow bank) that changed what could match.
    ``rules``: names of the rules that fired (``bank-match``, screening rules, ``strict``), stored with the item.
    """

    matches: tuple[Match, ...]
    verdict: Verdict | None
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()


def matcher_for(matcher_or_banks: Any, quality_gate: int = DEFAULT_QUALITY_GATE) -> BankMatcher:
    """A matcher as given, or one built over bank snapshots: callers with a few banks need not build it."""
    if hasattr(matcher_or_banks, "match_many"):
        return matcher_or_banks
    from cleanset.matching.matcher import BankMatcher

    return BankMatcher.build(list(matcher_or_banks), quality_gate=quality_gate)


def assess_many(
    probe_lists: Sequence[Sequence[Probe]],
    matcher_or_banks: Any,
    policy: Policy | None = None,
    *,
    statuses: Sequence[Status | str] | None = None,
    scores: Sequence[Mapping[str, float] | None] | None = None,
    quality_gate: int = DEFAULT_QUALITY_GATE,
) -> list[Assessment]:
    """One ``Assessment`` per probe list, matched in one batch. ``statuses`` (default all ok) and ``scores`` run
    alongside: a failed item's file digests are still matched, but it gets no verdict."""
    policy = policy or Policy()
    matcher = matcher_for(matcher_or_banks, quality_gate)
    matched = matcher.match_many(probe_lists) if probe_lists else []
    out: list[Assessment] = []
    for i, (matches, notes) in enumerate(matched):
        status = statuses[i] if statuses is not None else Status.OK
        j = judgement(status, matches, scores[i] if scores is not None else None, policy)
        out.append(Assessment(tuple(matches), j.verdict, tuple(j.reasons), tuple(notes), tuple(j.rules)))
    return out


def assess(
    probes: Sequence[Probe],
    matcher_or_banks: Any,
    policy: Policy | None = None,
    *,
    status: Status | str = Status.OK,
    scores: Mapping[str, float] | None = None,
    quality_gate: int = DEFAULT_QUALITY_GATE,
) -> Assessment:
    """One item's probes against the banks under ``policy``."""
    return assess_many(
        [probes], matcher_or_banks, policy, statuses=[status], scores=[scores], quality_gate=quality_gate
    )[0]
