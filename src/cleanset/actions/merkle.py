"""Merkle roots over a dataset's items, so one 32-byte value in a signed statement pins every item's key and bytes.

Specification (``cleanset-merkle-v1``; everything is SHA-256, written H):

* Item digest. For an item that holds bytes (image files, tar members, parquet image cells) it is
  ``H(item bytes)``. For a URL-only row (LAION-style metadata, no bytes) it is ``H(canonical row)`` where the
  canonical row is the UTF-8 JSON of ``{"url": url, "meta": meta}`` with sorted keys, separators ``,`` and ``:``,
  non-ASCII kept as UTF-8, bytes written as lower-case hex and any other non-JSON value as ``str(value)``.
* Leaf of one item: ``H(0x00 || UTF8(key) || 0x00 || item digest)`` (32 raw digest bytes). The digest has a fixed
  length at the end, so the leaf data parses unambiguously even when a key contains a NUL byte.
* Shard root: the RFC 6962 Merkle Tree Hash over the shard's leaf data, ordered by ``(UTF8(key), item digest)``:
  ``MTH({}) = H()``, ``MTH({d}) = H(0x00 || d)``, ``MTH(D[n]) = H(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` with
  ``k`` the largest power of two smaller than ``n``. Ordering by key makes the root independent of the order the
  source yields items in, so the same files read by a different reader give the same root.
* Overall root: the same tree over one leaf per shard, ``UTF8(shard id) || 0x00 || shard root``, ordered by
  shard id. An empty dataset has root ``H()``.

RFC 6962's 0x00/0x01 prefixes keep leaves and interior nodes apart (no second-preimage trick can pass an interior
node off as an item). The whole thing is small on purpose: anyone can re-implement it from this docstring.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SPEC = "cleanset-merkle-v1"
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


def dataset_root(shard_roots: Mapping[str, str]) -> str:
    """Hex overall root from ``{shard id: shard root hex}``."""
    ordered = sorted(shard_roots.items(), key=lambda kv: kv[0].encode("utf-8"))
    return tree_hash([sid.encode("utf-8") + b"\x00" + bytes.fromhex(r) for sid, r in ordered]).hex()


@dataclass
class DatasetDigest:
    """Every leaf of a dataset, grouped by shard, plus anything that could not be read (fail closed)."""

    leaves: dict[str, list[tuple[str, str]]]  # shard id -> [(key, item digest hex)]
    unreadable: list[tuple[str, str, str]]  # (shard id, key, reason)

    @property
    def shard_roots(self) -> dict[str, str]:
        return {sid: shard_root(entries) for sid, entries in self.leaves.items()}

    @property
    def root(self) -> str:
        return dataset_root(self.shard_roots)

    @property
    def items(self) -> int:
        return sum(len(v) for v in self.leaves.values())
