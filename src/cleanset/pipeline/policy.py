"""Turning an item's status and matches into a verdict.

Kept apart from the scan so that ``rematch`` (new bank versions against stored probes) decides exactly as the scan
did: one pure function, one policy record that is stored in the run's manifest and is part of its fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cleanset.errors import UserError
from cleanset.records import Match, Status, Verdict

ACTIONS = ("remove", "review")
EXACT_SIGNALS = frozenset({"md5", "sha1", "sha256", "url_md5", "url_sha1"})
# Score the hashing engine sets to the number of frames past its cap (``HashConfig.max_frames``). Any such frame was
# never looked at, so the item cannot be called clean: it goes to review whatever ``score_review`` says.
UNSCREENED_FRAMES = "unscreened_frames"


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
    if policy.review_above is not None and m.signal not in EXACT_SIGNALS and m.distance > policy.review_above:
        return Verdict.REVIEW
    return Verdict.REMOVE


def decide(
    status: Status,
    matches: Iterable[Match],
    scores: Mapping[str, float] | None = None,
    policy: Policy | None = None,
) -> Verdict | None:
    """``None`` exactly for failed items (they are accounted as failed, not kept); otherwise the strictest verdict
    any match asks for: remove beats review beats keep. Unscreened frames or a score over its threshold turn keep
    into review."""
    if status is Status.FAILED or status == "failed":
        return None
    policy = policy or Policy()
    verdict = Verdict.KEEP
    for m in matches:
        v = match_verdict(m, policy)
        if v is Verdict.REMOVE:
            return Verdict.REMOVE
        if v is Verdict.REVIEW:
            verdict = Verdict.REVIEW
    if verdict is Verdict.KEEP and scores:
        if scores.get(UNSCREENED_FRAMES, 0) > 0:
            return Verdict.REVIEW
        for name, threshold in policy.score_review.items():
            s = scores.get(name)
            if s is not None and s >= threshold:
                return Verdict.REVIEW
    return verdict
