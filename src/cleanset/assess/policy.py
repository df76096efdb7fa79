"""Turning an item's status, matches and scores into a verdict, and saying why.

Kept apart from every caller so that the scan, the URL column path, ``rematch``, ``cleanset match`` and the
robustness benchmark decide exactly alike: one pure function (``judge``), one policy record that is stored in the
run's manifest and is part of its fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cleanset.errors import UserError
from cleanset.records import UNSCREENED_FRAMES, Match, Status, Verdict
from cleanset.signals import exact_signals

__all__ = ["ACTIONS", "EXACT_SIGNALS", "UNSCREENED_FRAMES", "Policy", "decide", "judge", "match_verdict"]

ACTIONS = ("remove", "review")
# Bank signals matched by equality, as the signals declare them (``cleanset.signals.exact_signals``, which the
# rules below ask, so a registered plugin counts too); this name is that table at import.
EXACT_SIGNALS: frozenset[str] = exact_signals()


@dataclass(frozen=True)
class Policy:
    """What a match means.

    ``review_above``: a perceptual match farther than this many bits goes to human review instead of removal
    (near-threshold hits are where false positives live); exact-hash matches are never softened by it.
    ``bank_actions``: per bank, ``remove`` (default) or ``review`` (e.g. a lower-confidence list).
    ``allow_banks``: banks whose matches never count (the matcher already uses them to suppress hits; ignoring
    their own records here keeps a stray allow match from removing an item).
    ``score_review``: screening scores at or above these thresholds send an otherwise kept item to review.

    Not configurable: an item with ``UNSCREENED_FRAMES`` above zero (frames past the engine's cap, never hashed) is
    at least review, since keeping it would pass pictures nobody checked; a remove match still wins.
    """

    review_above: int | None = None
    bank_actions: Mapping[str, str] = field(default_factory=dict)
    allow_banks: frozenset[str] = frozenset()
    score_review: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for bank, action in self.bank_actions.items():
            if action not in ACTIONS:
                raise UserError(f"bank {bank!r}: action must be one of {', '.join(ACTIONS)}, got {action!r}")
        if self.review_above is not None and self.review_above < 0:
            raise UserError(f"--review-above must be >= 0, got {self.review_above}")

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form (sorted), stored in the manifest and hashed into its fingerprint."""
        return {
            "review_above": self.review_above,
            "bank_actions": dict(sorted(self.bank_actions.items())),
            "allow_banks": sorted(self.allow_banks),
            "score_review": dict(sorted(self.score_review.items())),
        }

    def with_allow_banks(self, names: Iterable[str]) -> Policy:
        """This policy with ``names`` counted as allow banks too (banks marked --allow in the store)."""
        extra = frozenset(names) - self.allow_banks
        return replace(self, allow_banks=self.allow_banks | extra) if extra else self

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Policy:
        return cls(
            review_above=d.get("review_above"),
            bank_actions=dict(d.get("bank_actions") or {}),
            allow_banks=frozenset(d.get("allow_banks") or ()),
            score_review={k: float(v) for k, v in (d.get("score_review") or {}).items()},
        )


def match_verdict(m: Match, policy: Policy) -> Verdict | None:
    """The verdict one match asks for, or None when it does not count (allow bank)."""
    if m.bank in policy.allow_banks:
        return None
    if policy.bank_actions.get(m.bank, "remove") == "review":
        return Verdict.REVIEW
    if policy.review_above is not None and m.signal not in exact_signals() and m.distance > policy.review_above:
        return Verdict.REVIEW
    return Verdict.REMOVE


def match_reason(m: Match, policy: Policy) -> str:
    """One line a reviewer reads next to the verdict: which bank entry, how close, and what softened it."""
    where = f"bank {m.bank} v{m.version} entry {m.entry_id}"
    if m.bank in policy.allow_banks:
        return f"{m.signal} match in allow bank {m.bank} ignored"
    if m.signal in exact_signals():
        head = f"{m.signal} exact match in {where}"
    else:
        head = f"{m.signal} {m.distance} bits from {where} (probe {m.probe})"
    if policy.bank_actions.get(m.bank, "remove") == "review":
        return f"{head} (bank {m.bank} is review-only)"
    if policy.review_above is not None and m.signal not in exact_signals() and m.distance > policy.review_above:
        return f"{head} (review above {policy.review_above})"
    return head


def judge(
    status: Status | str,
    matches: Iterable[Match],
    scores: Mapping[str, float] | None = None,
    policy: Policy | None = None,
) -> tuple[Verdict | None, list[str]]:
    """The verdict and the reasons for it; ``decide`` is this without the reasons.

    ``None`` exactly for failed items (they are accounted as failed, not kept); otherwise the strictest verdict any
    match asks for: remove beats review beats keep. Unscreened frames or a score over its threshold turn keep into
    review. Reasons list every match that counted (nearest first, as the matcher orders them), so a reviewer sees
    the removing match and the softened ones alike.
    """
    if status is Status.FAILED or status == "failed":
        return None, ["item failed: no verdict, counted as failed"]
    policy = policy or Policy()
    verdict = Verdict.KEEP
    reasons: list[str] = []
    for m in matches:
        v = match_verdict(m, policy)
        reasons.append(match_reason(m, policy))
        if v is Verdict.REMOVE:
            verdict = Verdict.REMOVE
        elif v is Verdict.REVIEW and verdict is Verdict.KEEP:
            verdict = Verdict.REVIEW
    if scores:
        frames = scores.get(UNSCREENED_FRAMES, 0)
        if frames > 0:
            reasons.append(f"more frames than screened ({int(frames)} not hashed)")
            if verdict is Verdict.KEEP:
                verdict = Verdict.REVIEW
        for name, threshold in sorted(policy.score_review.items()):
            s = scores.get(name)
            if s is not None and s >= threshold:
                reasons.append(f"score {name} {s:g} at or above {threshold:g}")
                if verdict is Verdict.KEEP:
                    verdict = Verdict.REVIEW
    if not reasons:
        reasons.append("no match in any bank")
    return verdict, reasons


def decide(
    status: Status | str,
    matches: Iterable[Match],
    scores: Mapping[str, float] | None = None,
    policy: Policy | None = None,
) -> Verdict | None:
    """The verdict alone (see ``judge``): for callers that store no reasons, e.g. the report's counts."""
    return judge(status, matches, scores, policy)[0]
