"""Merkle roots over a cleaned dataset, so one 32-byte value in a signed statement pins every item and every file.

Two trees, because they answer different questions: the *item tree* ties each item to the run that screened it
(shard, key and the content digest the scan recorded) and lets a verifier name the item that changed; the *file
tree* covers every byte of the output, so nothing can be added beside the items (a stray image, a caption edited
inside a tar, an altered ``removed.parquet``) without changing the root.

Specification (``cleanset-merkle-v2``; everything is SHA-256, written H; hex is lower-case):

* Item digest. The content digest the scan records per item (results column ``content_sha256``,
  ``cleanset.sources.base.content_digest``): the source's own digest of the item when it defines one (a Parquet
  image row: a digest over the whole row, defined by that source); else, for an item with one byte stream,
  ``H(item bytes)``; for an item with several streams (``data`` then each named part), H over, per stream,
  ``u64be(len(name)) || name || u64be(len(bytes)) || bytes`` with the name UTF-8 and ``""`` for the first. For a
  URL-only row (LAION-style metadata, no bytes) it is ``H(canonical row)`` where the canonical row is the UTF-8
  JSON of ``{"url": url, "meta": meta}`` with sorted keys, separators ``,`` and ``:``, non-ASCII kept as UTF-8,
  bytes written as lower-case hex and any other non-JSON value as ``str(value)``.
* Item leaf data: ``UTF8(key) || 0x00 || item digest`` (32 raw bytes). The digest has a fixed length at the end,
  so the data parses unambiguously even when a key contains a NUL byte.
* Shard root: the RFC 6962 Merkle Tree Hash over the shard's leaf data, ordered by ``(UTF8(key), item digest)``:
  ``MTH({}) = H()``, ``MTH({d}) = H(0x00 || d)``, ``MTH(D[n]) = H(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` with
  ``k`` the largest power of two smaller than ``n``. Ordering by key makes the root independent of the order the
  source yields items in, so the same files read by a different reader give the same root.
* Items root: the same tree over one leaf per shard, ``UTF8(shard id) || 0x00 || shard root``, ordered by shard id.
* File leaf data: ``P || 0x00 || H(file bytes)`` for every regular file under the dataset folder, at any depth,
  hidden files included. ``P`` is the path relative to the dataset folder as the file system spells it (raw name
  bytes, UTF-8 for text names), components joined by ``/``, no leading ``./``; NUL cannot occur in it.
  Directories have no leaf (an empty directory is not covered). Anything else (a symbolic link, fifo, socket or
  device) has no leaf either: ``attest`` refuses it and ``verify`` reports it; it is never followed or opened.
* Files root: the same tree over the file leaf data ordered by ``P`` (bytes).
* Dataset folder: the one folder given; given several paths, their deepest common folder (a named file counts by
  its folder, a named folder by itself), and only the named files and what lies under the named folders count.
* Root: ``H(0x02 || items root || files root)`` (32 raw bytes each). The 0x02 prefix is neither a leaf's (0x00)
  nor a node's (0x01), so the root cannot be passed off as a node of either tree, nor one tree's root as the other.

RFC 6962's 0x00/0x01 prefixes keep leaves and interior nodes apart (no second-preimage trick can pass an interior
node off as an item). The whole thing is small on purpose: anyone can re-implement it from this docstring.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SPEC = "cleanset-merkle-v2"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def item_digest(data: bytes) -> str:
    """Hex SHA-256 of an item's bytes."""
    return hashlib.sha256(data).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def canonical_row(url: str | None, meta: Mapping[str, Any]) -> bytes:
    """The bytes that stand for a URL-only row (see the module docstring)."""
    doc = {"url": url, "meta": dict(meta)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable).encode()


def leaf_data(key: str, digest_hex: str) -> bytes:
    return key.encode("utf-8") + b"\x00" + bytes.fromhex(digest_hex)


def file_leaf_data(path: bytes, digest_hex: str) -> bytes:
    return path + b"\x00" + bytes.fromhex(digest_hex)


def tree_hash(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash over already-ordered leaf data; iterative, so deep trees do not recurse."""
    if not leaves:
        return _h(b"")
    level = [_h(b"\x00" + d) for d in leaves]
    # Pairing left to right and carrying an odd last node up unchanged builds exactly RFC 6962's tree, whose left
    # subtree is always the largest power of two.
    while len(level) > 1:
        nxt = [_h(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def shard_root(entries: Iterable[tuple[str, str]]) -> str:
    """Hex root of one shard from ``(key, item digest hex)`` pairs in any order."""
    ordered = sorted(entries, key=lambda kv: (kv[0].encode("utf-8"), kv[1]))
    return tree_hash([leaf_data(k, d) for k, d in ordered]).hex()


def items_root(shard_roots: Mapping[str, str]) -> str:
    """Hex items root from ``{shard id: shard root hex}``."""
    ordered = sorted(shard_roots.items(), key=lambda kv: kv[0].encode("utf-8"))
    return tree_hash([sid.encode("utf-8") + b"\x00" + bytes.fromhex(r) for sid, r in ordered]).hex()


# The items root is what cleanset-merkle-v1 called the dataset root.
dataset_root = items_root


def files_root(files: Mapping[bytes, str]) -> str:
    """Hex files root from ``{relative path bytes: file digest hex}``."""
    return tree_hash([file_leaf_data(p, files[p]) for p in sorted(files)]).hex()


def overall_root(items_root_hex: str, files_root_hex: str) -> str:
    """Hex root that commits to both trees (see the module docstring)."""
    return _h(b"\x02" + bytes.fromhex(items_root_hex) + bytes.fromhex(files_root_hex)).hex()


@dataclass
class DatasetDigest:
    """Every leaf of a dataset, plus anything that could not be read or is not a regular file (fail closed)."""

    leaves: dict[str, list[tuple[str, str]]]  # shard id -> [(key, item digest hex)]
    unreadable: list[tuple[str, str, str]]  # (shard id, key, reason)
    files: dict[bytes, str] = field(default_factory=dict)  # relative path -> file digest hex
    bad_files: list[tuple[bytes, str]] = field(default_factory=list)  # (relative path, why it has no leaf)
    # URL-only items, (shard id, key) -> URL: attest matches them to the run by URL, having no bytes to compare.
    urls: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def shard_roots(self) -> dict[str, str]:
        return {sid: shard_root(entries) for sid, entries in self.leaves.items()}

    @property
    def items_root(self) -> str:
        return items_root(self.shard_roots)

    @property
    def files_root(self) -> str:
        return files_root(self.files)

    @property
    def root(self) -> str:
        return overall_root(self.items_root, self.files_root)

    @property
    def items(self) -> int:
        return sum(len(v) for v in self.leaves.values())
