"""Turning an item's status, matches and scores into a verdict, and saying why.

Kept apart from every caller so that the scan, the URL column path, ``rematch``, ``cleanset match`` and the
robustness benchmark decide exactly alike: one pure function (``judge``), one policy record that is stored in the
run's manifest and is part of its fingerprint.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cleanset.errors import UserError
from cleanset.records import UNSCREENED_FRAMES, Match, Status, Verdict
from cleanset.signals import exact_signals

__all__ = [
    "ACTIONS",
    "DEFAULT_RULES",
    "DEFAULT_THRESHOLDS",
    "EXACT_SIGNALS",
    "UNSCREENED_FRAMES",
    "Judgement",
    "Policy",
    "Rule",
    "decide",
    "judge",
    "judgement",
    "load_policy",
    "match_verdict",
]

ACTIONS = ("remove", "review")
RULE_ACTIONS = ("remove", "review", "keep")
# Names in the ``rules`` a verdict lists for what is not a screening rule: a counted bank match, frames never
# hashed, the strict policy turning review into remove.
BANK_RULE = "bank-match"
FRAMES_RULE = "unscreened-frames"
STRICT_RULE = "strict"
NON_FINITE_RULE = "non-finite-score"  # a score that is NaN or infinite: a broken model or column, never "keep"


@dataclass(frozen=True)
class Rule:
    """A screening rule: when every entry of ``when`` fires, the item gets at least ``action``.

    An entry names scores: a score name (``punsafe``), a glob (``classifier.*``) or alternatives joined by ``|``
    (``classifier.*|punsafe``); it fires when any score it names is at or above that score's threshold. Rules are
    how unknown material is handled (no list knows it yet), so every one that fires is recorded with the item and
    named in its reasons: a reviewer learns why an item is in the queue without being shown it.
    """

    name: str
    when: tuple[str, ...]
    action: str

    def __post_init__(self) -> None:
        if self.action not in RULE_ACTIONS:
            raise UserError(f"rule {self.name!r}: action must be one of {', '.join(RULE_ACTIONS)}, got {self.action!r}")
        if not self.when or not all(isinstance(w, str) and w.strip() for w in self.when):
            raise UserError(f"rule {self.name!r}: 'when' must list at least one score name")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "when": list(self.when), "action": self.action}


# Scores the screening stage writes: ``classifier.<model>`` (an image classifier's probability), ``punsafe`` and
# other dataset columns by name, ``text.minor`` / ``text.sexual`` / ``text.cooccur`` (caption or prompt terms, 1 when
# matched) and ``neighbour`` (cosine similarity to the nearest matched item).
CLASSIFIER = "classifier.*|punsafe"
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("classifier-and-minor-terms", (CLASSIFIER, "text.minor"), "remove"),
    Rule("classifier", (CLASSIFIER,), "review"),
    Rule("neighbour-of-hit", ("neighbour",), "review"),
    Rule("minor-and-sexual-terms", ("text.cooccur",), "review"),
)
# Yahoo's guidance for open_nsfw: above 0.8 is unsafe. ``punsafe`` (LAION's CLIP-based detector) is held to the same
# bar; a neighbour counts from cosine 0.9; a text score is 0 or 1.
DEFAULT_THRESHOLDS: Mapping[str, float] = {"classifier.*": 0.8, "punsafe": 0.8, "neighbour": 0.9, "text.*": 0.5}
FALLBACK_THRESHOLD = 0.5
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
    ``rules`` and ``thresholds``: screening rules (see ``Rule``; the defaults: a classifier over its threshold
    together with minor terms in the caption removes, a classifier alone or a neighbour of a hit is review).
    ``strict``: every review verdict becomes remove (nobody will review; keep nothing uncertain).
    ``name``: what reports call the policy (``default``, ``strict`` or the TOML file's ``name``).

    Not configurable: an item with ``UNSCREENED_FRAMES`` above zero (frames past the engine's cap, never hashed) is
    at least review, since keeping it would pass pictures nobody checked; a remove match still wins.
    """

    review_above: int | None = None
    bank_actions: Mapping[str, str] = field(default_factory=dict)
    allow_banks: frozenset[str] = frozenset()
    score_review: Mapping[str, float] = field(default_factory=dict)
    rules: tuple[Rule, ...] = DEFAULT_RULES
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    strict: bool = False
    name: str = "default"

    def __post_init__(self) -> None:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise UserError(f"policy {self.name!r}: two rules share a name ({', '.join(names)})")
        for key, t in self.thresholds.items():
            if not isinstance(t, int | float) or isinstance(t, bool):
                raise UserError(f"policy {self.name!r}: threshold {key!r} must be a number, got {t!r}")
        for bank, action in self.bank_actions.items():
            if action not in ACTIONS:
                raise UserError(f"bank {bank!r}: action must be one of {', '.join(ACTIONS)}, got {action!r}")
        if self.review_above is not None and self.review_above < 0:
            raise UserError(f"--review-above must be >= 0, got {self.review_above}")

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        """Canonical JSON form (sorted), stored in the manifest and hashed into its fingerprint. The screening keys
        are written only when they differ from the defaults, so a run made before screening existed keeps its
        fingerprint (and ``from_dict`` reads the defaults back); ``full`` writes them always, which a screened
        scan does: a later rematch then judges by the rules the scan used, not by whatever the defaults are then."""
        out: dict[str, Any] = {
            "review_above": self.review_above,
            "bank_actions": dict(sorted(self.bank_actions.items())),
            "allow_banks": sorted(self.allow_banks),
            "score_review": dict(sorted(self.score_review.items())),
        }
        if full or self.rules != DEFAULT_RULES:
            out["rules"] = [r.to_dict() for r in self.rules]
        if full or dict(self.thresholds) != dict(DEFAULT_THRESHOLDS):
            out["thresholds"] = dict(sorted(self.thresholds.items()))
        if self.strict:
            out["strict"] = True
        if self.name != "default":
            out["name"] = self.name
        return out

    def threshold(self, score: str) -> float:
        """The bar ``score`` must reach to fire: its own threshold, else the first glob that names it (longest
        first), else 0.5."""
        if score in self.thresholds:
            return float(self.thresholds[score])
        for pattern in sorted((k for k in self.thresholds if any(c in k for c in "*?[")), key=len, reverse=True):
            if fnmatch.fnmatchcase(score, pattern):
                return float(self.thresholds[pattern])
        return FALLBACK_THRESHOLD

    def fired(self, entry: str, scores: Mapping[str, float]) -> list[str]:
        """The scores that make ``entry`` (a rule's ``when`` item) fire: named by it and at or above threshold."""
        out = []
        for alt in entry.split("|"):
            alt = alt.strip()
            for name in sorted(scores):
                if (name == alt or fnmatch.fnmatchcase(name, alt)) and scores[name] >= self.threshold(name):
                    out.append(name)
        return out

    def with_allow_banks(self, names: Iterable[str]) -> Policy:
        """This policy with ``names`` counted as allow banks too (banks marked --allow in the store)."""
        extra = frozenset(names) - self.allow_banks
        return replace(self, allow_banks=self.allow_banks | extra) if extra else self

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Policy:
        rules = d.get("rules")
        return cls(
            review_above=d.get("review_above"),
            bank_actions=dict(d.get("bank_actions") or {}),
            allow_banks=frozenset(d.get("allow_banks") or ()),
            score_review={k: float(v) for k, v in (d.get("score_review") or {}).items()},
            rules=DEFAULT_RULES if rules is None else tuple(_rule(r, i) for i, r in enumerate(rules)),
            thresholds=dict(DEFAULT_THRESHOLDS) if d.get("thresholds") is None else dict(d["thresholds"]),
            strict=bool(d.get("strict", False)),
            name=str(d.get("name", "default")),
        )


def _rule(d: Any, i: int) -> Rule:
    if not isinstance(d, Mapping):
        raise UserError(f"rule {i + 1}: expected a table with name, when and action, got {d!r}")
    when = d.get("when")
    if isinstance(when, str):
        when = [when]
    if not isinstance(when, list | tuple):
        raise UserError(f"rule {i + 1} ({d.get('name', '?')}): 'when' must be a list of score names")
    return Rule(str(d.get("name") or f"rule{i + 1}"), tuple(str(w) for w in when), str(d.get("action", "")))


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


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict, the reasons a reviewer reads, and the names of the rules that fired (``bank-match``, a screening
    rule's name, ``unscreened-frames``, ``strict``): what an item keeps so a report can say why without showing it."""

    verdict: Verdict | None
    reasons: list[str]
    rules: list[str]


_RANK = {Verdict.KEEP: 0, Verdict.REVIEW: 1, Verdict.REMOVE: 2}


def judgement(
    status: Status | str,
    matches: Iterable[Match],
    scores: Mapping[str, float] | None = None,
    policy: Policy | None = None,
) -> Judgement:
    """The verdict, its reasons and the rules that fired; ``judge`` and ``decide`` are this, shortened.

    ``None`` exactly for failed items (they are accounted as failed, not kept); otherwise the strictest verdict any
    match or rule asks for: remove beats review beats keep. Unscreened frames or a score over its ``score_review``
    threshold turn keep into review. Reasons list every match that counted (nearest first, as the matcher orders
    them) and every screening rule that fired with the scores that made it fire, so a reviewer sees the removing
    match and the softened ones alike.
    """
    if status is Status.FAILED or status == "failed":
        return Judgement(None, ["item failed: no verdict, counted as failed"], [])
    policy = policy or Policy()
    verdict = Verdict.KEEP
    reasons: list[str] = []
    rules: list[str] = []

    def ask(v: Verdict) -> None:
        nonlocal verdict
        if _RANK[v] > _RANK[verdict]:
            verdict = v

    for m in matches:
        v = match_verdict(m, policy)
        reasons.append(match_reason(m, policy))
        if v is not None:
            ask(v)
            if BANK_RULE not in rules:
                rules.append(BANK_RULE)
    if scores:
        frames = scores.get(UNSCREENED_FRAMES, 0)
        if frames > 0:
            reasons.append(f"more frames than screened ({int(frames)} not hashed)")
            ask(Verdict.REVIEW)
            rules.append(FRAMES_RULE)
        broken = sorted(n for n, v in scores.items() if v is None or not math.isfinite(v))
        if broken:
            # A NaN fires no rule (every comparison is false), so without this it would be kept unscreened.
            reasons.append(f"score {', '.join(broken)} is not a finite number: screening gave no answer")
            ask(Verdict.REVIEW)
            rules.append(NON_FINITE_RULE)
        for name, threshold in sorted(policy.score_review.items()):
            s = scores.get(name)
            if s is not None and s >= threshold:
                reasons.append(f"score {name} {s:g} at or above {threshold:g}")
                ask(Verdict.REVIEW)
                rules.append(f"score:{name}")
        for rule in policy.rules:
            fired = [policy.fired(entry, scores) for entry in rule.when]
            if not all(fired):
                continue
            names = sorted({n for f in fired for n in f})
            shown = ", ".join(f"{n} {scores[n]:.3g}" if not n.startswith("text.") else n for n in names)
            reasons.append(f"rule {rule.name}: {shown} -> {rule.action}")
            rules.append(rule.name)
            if rule.action != "keep":
                ask(Verdict(rule.action))
    if policy.strict and verdict is Verdict.REVIEW:
        verdict = Verdict.REMOVE
        reasons.append("strict policy: review is removed")
        rules.append(STRICT_RULE)
    if not reasons:
        reasons.append("no match in any bank")
    return Judgement(verdict, reasons, rules)


def judge(
    status: Status | str,
    matches: Iterable[Match],
    scores: Mapping[str, float] | None = None,
    policy: Policy | None = None,
) -> tuple[Verdict | None, list[str]]:
    """The verdict and the reasons for it (see ``judgement``, which also names the rules that fired)."""
    j = judgement(status, matches, scores, policy)
    return j.verdict, j.reasons


def decide(
    status: Status | str,
    matches: Iterable[Match],
    scores: Mapping[str, float] | None = None,
    policy: Policy | None = None,
) -> Verdict | None:
    """The verdict alone (see ``judge``): for callers that store no reasons, e.g. the report's counts."""
    return judge(status, matches, scores, policy)[0]


POLICY_KEYS = frozenset({"name", "strict", "review_above", "banks", "thresholds", "rules", "score_review"})


def load_policy(spec: str | None, **overrides: Any) -> Policy:
    """The policy ``--policy`` names: ``default``, ``strict`` (default rules, review removed) or a TOML file.

    A file's keys: ``name``, ``strict``, ``review_above``, ``[banks] review = [...]`` / ``allow = [...]``,
    ``[thresholds]`` (merged over the defaults), ``[score_review]`` and ``[[rules]]`` tables with ``name``, ``when``
    and ``action`` (given rules replace the default ones). An unknown key or a bad value is an error naming the file
    and key, raised before the scan reads anything. ``overrides`` (the command line's ``review_above``,
    ``bank_actions``) win over the file where given."""
    given = {k: v for k, v in overrides.items() if v not in (None, {}, (), frozenset())}
    if spec is None or spec == "default":
        return Policy(**given)
    if spec == "strict":
        return Policy(strict=True, name="strict", **given)
    import tomllib
    from pathlib import Path

    from cleanset.errors import InputFormatError

    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--policy {spec!r}: not 'default', 'strict' or a TOML file that exists")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputFormatError(str(path), f"not a TOML policy: {e}") from None
    unknown = sorted(set(doc) - POLICY_KEYS)
    if unknown:
        raise InputFormatError(
            str(path), f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(POLICY_KEYS))})"
        )
    where = str(path)

    def bad(key: str, want: str, got: Any) -> InputFormatError:
        return InputFormatError(where, f"{key}: expected {want}, got {type(got).__name__} {got!r}")

    banks = doc.get("banks") or {}
    if not isinstance(banks, dict) or set(banks) - {"review", "allow"}:
        raise InputFormatError(where, "[banks] takes 'review' and 'allow' lists of bank names")
    for key in ("review", "allow"):
        names = banks.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise bad(f"banks.{key}", "a list of bank names", names)
    for key in ("thresholds", "score_review"):
        table = doc.get(key) or {}
        if not isinstance(table, dict):
            raise bad(key, "a table of score = number", table)
        for name, v in table.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise bad(f"{key}.{name}", "a finite number", v)
    thresholds = doc.get("thresholds") or {}
    if "name" in doc and not (isinstance(doc["name"], str) and doc["name"]):
        raise bad("name", "a non-empty string", doc["name"])
    ra = doc.get("review_above")
    if ra is not None and (isinstance(ra, bool) or not isinstance(ra, int)):
        raise bad("review_above", "a whole number of bits", ra)
    rules_doc = doc.get("rules")
    if rules_doc is not None:
        if not isinstance(rules_doc, list):
            raise bad("rules", "[[rules]] tables", rules_doc)
        for i, r in enumerate(rules_doc):
            if not isinstance(r, dict):
                raise bad(f"rules[{i + 1}]", "a table with name, when and action", r)
            for key in ("name", "action"):
                if key in r and not isinstance(r[key], str):
                    raise bad(f"rules[{i + 1}].{key}", "a string", r[key])
            when = r.get("when")
            if not (isinstance(when, str) or (isinstance(when, list) and all(isinstance(w, str) for w in when))):
                raise bad(f"rules[{i + 1}].when", "a score name or a list of them", when)
    d: dict[str, Any] = {
        "name": doc.get("name", path.stem),
        "strict": doc.get("strict", False),
        "review_above": doc.get("review_above"),
        "bank_actions": {b: "review" for b in banks.get("review", [])},
        "allow_banks": list(banks.get("allow", [])),
        "score_review": doc.get("score_review") or {},
        "thresholds": {**DEFAULT_THRESHOLDS, **thresholds},
        "rules": doc.get("rules"),
    }
    if not isinstance(d["strict"], bool):
        raise InputFormatError(str(path), f"strict must be true or false, got {d['strict']!r}")
    try:
        policy = Policy.from_dict(d)
    except UserError as e:
        raise InputFormatError(str(path), str(e)) from None
    except (TypeError, ValueError) as e:
        raise InputFormatError(str(path), f"bad value: {e}") from None
    return replace(policy, **given) if given else policy
