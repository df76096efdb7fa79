"""The Source seam: readers for the ways people store datasets, each able to write its own format back.

A source splits a dataset into shards (the unit of work, commit and resume) and yields one ``SourceItem`` per item.
Reading never raises for bad data: an unreadable item, a truncated tar or a vanished shard is yielded as an item
with ``error`` set, so the pipeline records it as failed with that reason (fail closed, nothing silently skipped).

Damage that hides an unknown number of items (a truncated tar, a shard that vanished, a Parquet file whose footer
cannot be read) is reported as one *marker item* whose key is ``"<shard id>#<what>"`` (see :func:`marker_key`):
the items it hides cannot be named, but the shard still shows up as failed and the cleaned output leaves it out.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cleanset.errors import UserError
from cleanset.registry import Registry

# Extensions read as images. Anything else in a folder or a tar group is a sidecar (caption, json) or ignored.
IMAGE_EXTS: frozenset[str] = frozenset(
    {
        "jpg", "jpeg", "jpe", "jfif", "png", "apng", "webp", "gif", "bmp", "dib", "tif", "tiff",
        "ppm", "pgm", "pbm", "pnm", "pam", "svg", "svgz", "ico", "jxl", "avif", "heic", "heif",
    }
)  # fmt: skip

MARKER_SEP = "#"


MARKER_KINDS = ("missing", "unreadable", "truncated", "unread")


def marker_key(shard_id: str, what: str) -> str:
    """Key of the one failed item that stands for damage hiding an unknown number of items."""
    return f"{shard_id}{MARKER_SEP}{what}"


def marker_keys(shard_id: str) -> list[str]:
    """Every marker key a shard may hold: sources keep them out of real items' keys (a member named
    ``00000#unread.jpg`` must not make clean take its shard for unreadable)."""
    return [marker_key(shard_id, w) for w in MARKER_KINDS]


@dataclass(frozen=True)
class Shard:
    """One unit of work. ``id`` is stable across runs and unique within a scan (used for file names)."""

    id: str
    path: str


@dataclass
class SourceItem:
    key: str
    data: bytes | None = None  # the stored image bytes, when the source holds images
    url: str | None = None  # the item's URL, when the source holds URLs (LAION-style metadata)
    meta: dict[str, Any] = field(default_factory=dict)  # caption, original columns, sidecar json
    given_hashes: dict[str, str] = field(default_factory=dict)  # e.g. md5/sha256 columns of metadata parquet
    error: str | None = None  # set when the item could not be read; the reason recorded as failed
    # More image byte streams of the same item (a Parquet row's other image columns, list elements): each is
    # hashed and matched like ``data``, its probes named ``<part name>/<probe>``; one that fails fails the item.
    parts: list[tuple[str, bytes]] = field(default_factory=list)
    # Bytes written with the item that are not screened as images: its sidecars (caption, JSON with its URL).
    # They are part of its content digest, so a caption or URL swapped between scan and clean is refused too.
    extras: list[tuple[str, bytes]] = field(default_factory=list)
    # sha256 of what ``clean`` writes for this item, when that is not ``data`` alone (a Parquet row: every cell).
    # None: :func:`content_digest` hashes ``data``, ``parts`` and ``extras``.
    digest: str | None = None


def content_digest(item: SourceItem) -> str | None:
    """The digest ``scan`` records and ``clean`` recomputes for an item: bytes are copied only when they agree.

    The source's own ``digest`` when it sets one, else SHA-256 over ``data``, every part and every extra
    (length-prefixed, so moving bytes between them changes it); None for an item without bytes (a URL-only row)."""
    if item.digest is not None:
        return item.digest
    if item.data is None and not item.parts and not item.extras:
        return None
    if not item.parts and not item.extras:
        return hashlib.sha256(item.data or b"").hexdigest()
    h = hashlib.sha256()
    for name, data in [("", item.data or b""), *item.parts, *(("extra:" + n, d) for n, d in item.extras)]:
        raw = name.encode("utf-8", "surrogatepass")
        h.update(len(raw).to_bytes(8, "big") + raw + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


# Text that could carry a picture in a form no decoder sees: the ways bytes are written as text. Each pattern is
# RE2-compatible, so Arrow (``pyarrow.compute.match_substring_regex``) checks whole string columns with them, and
# the same list serves sidecars, Parquet cells and metadata values.
EMBEDDED_IMAGE_PATTERNS: dict[str, str] = {
    "SVG markup": r"(?i)<svg",
    "a data URI": r"(?i)data:[^,]{0,100};base64,",
    "a base64 run": r"[A-Za-z0-9+/_-]{512,}",
    "wrapped base64": r"(?:[A-Za-z0-9+/]{40,}={0,2}\s+){8,}",
    "hex-encoded bytes": r"(?:(?:0[xX]|\\x|%)?[0-9A-Fa-f][0-9A-Fa-f][\s,:;]*){400,}",
    "a byte array": r"(?:[0-9][0-9]?[0-9]?\s*,\s*){400,}",
}

SHORTEST_EMBEDDED_RUN = 8 * 41  # characters the shortest match of any pattern but SVG and data URI takes


def text_may_embed_image(text: str) -> str | None:
    """What in ``text`` could be an image written as text, or None: such text is never copied unscreened.

    Matched with RE2 (through Arrow), whose time is linear in the text: a backtracking engine can be made to spend
    seconds on a megabyte crafted for it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    low = text.lower()
    if "<svg" in low:
        return "SVG markup"
    if len(text) < SHORTEST_EMBEDDED_RUN:  # a caption: too short for any of the run patterns
        return "a data URI" if "data:" in low and ";base64," in low else None
    arr = pa.array([text], pa.large_string())
    for what, rx in EMBEDDED_IMAGE_PATTERNS.items():
        if pc.match_substring_regex(arr, rx)[0].as_py():
            return what
    return None


# A sidecar (caption, JSON) travels with its item into the cleaned output without being screened, so only content
# that cannot be an image may pass: valid UTF-8 text or JSON, small, with no image signature and nothing
# :func:`text_may_embed_image` finds. Anything else is a failed item of its own and is left out.
SIDECAR_MAX_BYTES = 1 << 20
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def sidecar_kind(data: bytes) -> tuple[str | None, str]:
    """(``"json"`` | ``"text"``, "") for a sidecar that may be copied unscreened, else (None, why not)."""
    from cleanset.imaging.decode import sniff

    if len(data) > SIDECAR_MAX_BYTES:
        return None, f"sidecar larger than {SIDECAR_MAX_BYTES} bytes"
    fmt = sniff(data)
    if fmt is not None:
        return None, f"{fmt} image bytes"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "binary content (not UTF-8 text)"
    if _CONTROL.search(text):
        return None, "binary content (control characters)"
    embedded = text_may_embed_image(text)
    if embedded is not None:
        return None, f"text that may embed an image ({embedded})"
    try:
        json.loads(text)
    except ValueError:
        return "text", ""
    return "json", ""


class UnaccountedItem(UserError):
    """The source holds an item the run never recorded: cleaning it would pass an unchecked item through."""


class ContentChanged(UserError):
    """Bytes ``clean`` was about to write differ from the bytes the scan screened: the output is not finished."""


@dataclass
class CleanGate:
    """What ``clean`` may write of one shard, from the scan's own record of it: closed-world by construction.

    ``recorded`` maps every key the scan recorded to its content digest; ``keep`` is the keys to write. A source's
    ``write_clean`` calls :meth:`admit` for every item it reads, in order, and writes an item's bytes only when it
    returns True: that is after the bytes' digest was recomputed and found equal to what the scan hashed.
    ``shard_digest`` is the scan's digest of the whole shard file, for sources that record one
    (:meth:`Source.shard_digest`); they call :meth:`check_shard` with the digest of the bytes they write from.

    A kept item that cannot be written as it was screened (gone or unreadable now, or a cell that may carry an
    unscreened image) is never silently missing: the source calls :meth:`drop` with the reason, and
    :meth:`unwritten` names every kept item that was not written, so ``clean`` counts it as failed.
    """

    shard: Shard
    recorded: Mapping[str, str | None]
    keep: Collection[str]
    shard_digest: str | None = None
    seen: set[str] = field(default_factory=set)
    admitted: set[str] = field(default_factory=set)
    dropped: dict[str, str] = field(default_factory=dict)

    def drop(self, key: str, reason: str) -> None:
        """An admitted item the source will not write after all (its reason is recorded as the item's failure)."""
        self.admitted.discard(key)
        self.dropped[key] = reason

    def unwritten(self) -> dict[str, str]:
        """Kept items that were not written, with why: dropped, unreadable, or never met when cleaning."""
        out = {k: self.dropped.get(k, "not found when cleaning (gone since the scan)") for k in self.keep}
        return {k: why for k, why in out.items() if k not in self.admitted}

    def admit(self, item: SourceItem) -> bool:
        check_expected(self.shard, item.key, self.recorded)
        if item.key in self.seen:
            raise UnaccountedItem(f"shard {self.shard.id} ({self.shard.path}) yields item {item.key!r} twice")
        self.seen.add(item.key)
        if item.key not in self.keep:
            return False
        if item.error is not None:
            self.dropped[item.key] = f"unreadable when cleaning: {item.error}"
            return False
        got, want = content_digest(item), self.recorded[item.key]
        if got != want:
            raise ContentChanged(
                f"item {item.key!r} of shard {self.shard.id} ({self.shard.path}) is not the content the scan "
                "screened (its digest differs): the dataset changed since the scan; the item is failed and the "
                "cleaned output was not finished. Scan it again before cleaning"
            )
        self.admitted.add(item.key)
        return True

    def admit_keys(self, keys: Sequence[str], failed: Sequence[bool] | None = None) -> list[bool]:
        """:meth:`admit` for many items in order that carry no content of their own (rows of a file that
        :meth:`check_shard` vouches for as a whole), ``failed`` marking those read with an error: the same checks
        and answers as set operations, because a call per row would cost more than reading a metadata file."""
        fails = failed if failed is not None else [False] * len(keys)
        batch = set(keys)
        recorded = self.recorded
        if len(batch) == len(keys) and self.seen.isdisjoint(batch) and all(k in recorded for k in keys):
            keep = self.keep
            out = [k in keep and not f for k, f in zip(keys, fails, strict=True)]
            if all(recorded[k] is None for k, o in zip(keys, out, strict=True) if o) and not any(
                f and k in keep for k, f in zip(keys, fails, strict=True)
            ):
                self.seen |= batch
                self.admitted.update(k for k, o in zip(keys, out, strict=True) if o)
                return out
        # something is off: admit finds it item by item and raises as it would
        return [self.admit(SourceItem(key=k, error="failed" if f else None)) for k, f in zip(keys, fails, strict=True)]

    def check_shard(self, digest: str) -> None:
        if self.shard_digest is not None and digest != self.shard_digest:
            raise ContentChanged(
                f"shard {self.shard.id} ({self.shard.path}) is not the file the scan read (its digest differs): "
                "the cleaned output was not finished. Scan it again before cleaning"
            )


class Source(ABC):
    """A dataset on disk. Constructed from the user's paths; validates them before the first item is read."""

    name: ClassVar[str]
    # Whether an item's own bytes are what clean writes for it. False for URL metadata rows (LAION), whose file
    # clean rewrites as a whole and checks by :meth:`shard_digest`: their items then record no content digest.
    item_content: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        """True when these paths look like this kind of source (used when --format is not given)."""

    @abstractmethod
    def shards(self) -> list[Shard]: ...

    @abstractmethod
    def read(self, shard: Shard) -> Iterator[SourceItem]: ...

    def item_counts(self) -> dict[str, int] | None:
        """Items per shard id when the source knows them before reading (a folder listing, Parquet footers), so
        progress has an honest ETA from the first second; None when it would have to read to tell."""
        return None

    def shard_digest(self, shard: Shard) -> str | None:
        """SHA-256 of what ``clean`` copies for the shard beyond its items, as the last ``read`` saw it: the whole
        file for sources whose items are rows of it (LAION metadata), shard-level metadata files otherwise
        (img2dataset's sibling Parquet). The scan records it and ``clean`` checks it. None: nothing of the kind."""
        return None

    @abstractmethod
    def write_clean(self, shard: Shard, gate: CleanGate, out_dir: Path) -> int:
        """Write ``shard`` into ``out_dir`` in this source's own format and layout, holding only items the gate
        admits (every item read goes through :meth:`CleanGate.admit`, which raises when the data changed since
        the scan) and sidecars that :func:`sidecar_kind` accepts, re-checked as they are written.

        Returns the number of items written. Writes to a temporary name and renames, so a crash never leaves a
        half-written shard under its final name. Regular files are written as regular files, never as links.
        """


def check_expected(shard: Shard, key: str, expect: Collection[str] | None) -> None:
    if expect is not None and key not in expect:
        raise UnaccountedItem(
            f"shard {shard.id} ({shard.path}) holds item {key!r} that the run never recorded; "
            "the dataset changed since the scan: scan it again before cleaning"
        )


SOURCES: Registry[type[Source]] = Registry("source format", group="cleanset.sources")
