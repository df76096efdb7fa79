"""The one place verdicts are made: probes, a matcher over banks and a policy give matches, a verdict and reasons.

Every path that decides about an item (the image scan, the URL column path, rematch, ``cleanset match``, the
robustness benchmark) comes through here, so a rule changed here changes for all of them at once. Matching itself
(indexes, quality gating, allow-list suppression, one match per entry) is the matcher's; this layer sits above it
and below everything that stores or acts on a verdict.
"""

from cleanset.assess.core import Assessment, assess, assess_many, matcher_for
from cleanset.assess.policy import (
    EXACT_SIGNALS,
    UNSCREENED_FRAMES,
    Judgement,
    Policy,
    Rule,
    decide,
    judge,
    judgement,
    load_policy,
    match_verdict,
)

__all__ = [
    "EXACT_SIGNALS",
    "UNSCREENED_FRAMES",
    "Assessment",
    "Judgement",
    "Policy",
    "Rule",
    "assess",
    "assess_many",
    "decide",
    "judge",
    "judgement",
    "load_policy",
    "match_verdict",
    "matcher_for",
]
