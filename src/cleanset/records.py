"""Value types that travel with an item through the flow: source -> hash -> match -> screen -> decide -> act.

A later stage never reaches back into an earlier one: everything it needs is on these records. Failures are data
(status + reason), never sentinels and never exceptions escaping a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"


# Score the hashing engine sets to the number of frames past its cap (``HashConfig.max_frames``). Any such frame was
# never looked at, so the item cannot be called clean: the policy sends it to review whatever else it says. Defined
# here, with the records, because the engine (below the policy) writes it and the policy reads it.
UNSCREENED_FRAMES = "unscreened_frames"


class Verdict(StrEnum):
    KEEP = "keep"
    REMOVE = "remove"
    REVIEW = "review"


# Names of the eight PDQ rotations/flips, in the order Meta's reference emits them.
DIHEDRAL_NAMES: tuple[str, ...] = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)


@dataclass(frozen=True, slots=True)
class Probe:
    """One hash of an item that is matched against banks.

    ``signal`` is the bank signal it is compared with (``pdq`` for both PDQ dialects); ``name`` says which view of
    the item produced it, e.g. ``md5``, ``pdq/original``, ``pdq/rotate90``, ``pdq512/flipx``, ``trim/original``,
    ``grid2x2.3/original``, ``url_sha1``. ``quality`` is set for perceptual probes only; a PDQ probe below the quality
    gate is still matched exactly but never by distance.
    """

    name: str
    signal: str
    value: str
    quality: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A hit of one probe against one bank entry. Never carries the bank's value, only where it came from."""

    bank: str
    version: int
    entry_id: str
    signal: str
    distance: int
    probe: str


@dataclass(slots=True)
class HashOutcome:
    """What the hashing stage knows about one item's bytes.

    ``hashes`` holds the item's own primary values by signal name (md5, sha1, sha256, pdq, pdq512, phash); they are
    the item's hashes, not list values, so they may be stored and reported.
    """

    status: Status
    reason: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    pdq_quality: int | None = None
    pdq512_quality: int | None = None
    probes: list[Probe] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    format: str | None = None
    # Figures the policy may act on, stored with the item (e.g. ``unscreened_frames``: frames past the cap).
    scores: dict[str, float] = field(default_factory=dict)

    @classmethod
    def failed(cls, reason: str, **known: object) -> HashOutcome:
        out = cls(status=Status.FAILED, reason=reason)
        for k, v in known.items():
            setattr(out, k, v)
        return out


@dataclass(slots=True)
class ItemResult:
    """The one row per item that a scan commits (see ``cleanset.runs.schema``)."""

    key: str
    shard: str
    status: Status
    reason: str | None
    verdict: Verdict | None  # None exactly when status is failed
    hashes: dict[str, str] = field(default_factory=dict)
    pdq_quality: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    url: str | None = None
    caption: str | None = None
    # digest of what clean would write: for a file alone that is its sha256, a list value when the item is flagged
    content_sha256: str | None = None
    probes: list[Probe] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # screening: the rules that fired (``assess.Judgement.rules``) and the term lists that matched the caption,
    # named ``category:list@version`` (never the term)
    rules: list[str] = field(default_factory=list)
    text_lists: list[str] = field(default_factory=list)


# Failure reason codes: first rule that fits wins. The free text stays beside the code; the code is what groups.
FAILURE_CODES: dict[str, str] = {
    "decode": "bytes that could not be decoded as an image",
    "read": "the file or row could not be read",
    "truncated": "a tar archive ends early; the items in the damaged part are unknown",
    "unscreenable": "content that cannot be screened (SVG, PAM, or a sidecar that is not plain text or JSON)",
    "not-regular": "a link, device or other non-regular file",
    "url": "an empty or unparsable URL",
    "empty": "a file or image member of 0 bytes",
    "no-image": "an entry with no image in it",
    "too-large": "a member over the size limit",
    "missing": "a shard or member that vanished",
    "unreadable": "a shard or Parquet file that could not be opened",
    "hash": "hashing failed (out of memory, bad pixels)",
    "not-screened": "a picture --screen asked for that a classifier did not score",
    "internal": "a worker crashed or raised",
    "other": "any other reason, including download errors recorded in metadata",
}
_CODE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (code, re.compile(rx))
    for code, rx in (
        ("unscreenable", r"SVG is not rasterised|PAM \(P7\) is not decoded|^sidecar |^member .* is not an image, text"),
        ("not-regular", r"^not a regular file"),
        ("truncated", r"^truncated tar"),
        ("decode", r"^decode:"),
        ("read", r"^read:"),
        ("url", r"^url:"),
        ("hash", r"^hash:"),
        ("not-screened", r"^not screened:"),
        ("empty", r"^empty (file|image)"),
        ("no-image", r"^no image (member|bytes|column)"),
        ("too-large", r"^member of \d+ bytes refused"),
        ("missing", r"^shard vanished|missing from the tar$"),
        ("unreadable", r"^shard unreadable|^unreadable (Parquet|row group)"),
        ("internal", r"^internal:|^worker "),
    )
)
_PART_PREFIX = re.compile(r"^[^\s:]+: ")  # "<column>: decode: ..." from a row's second image column


def failure_code(reason: str | None) -> str:
    """A short stable code for a free-text failure reason, so failures group by kind, not by file name.

    Here, beside the records, because the summary (runs), the scan's closing screen (pipeline), the report
    (actions) and the API all group by it, and a code defined in one of them would be imported upward by the rest.
    """
    if not reason:
        return "other"
    for code, rule in _CODE_RULES:
        if rule.search(reason):
            return code
    part = _PART_PREFIX.match(reason)
    if part is not None:
        inner = failure_code(reason[part.end() :])
        if inner != "other":
            return inner
    return "other"
