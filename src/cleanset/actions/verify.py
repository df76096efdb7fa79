"""Checking a dataset against an attestation: signature first, then every byte of the data in front of us.

Nothing from the run is needed: the verifier recomputes the Merkle roots from the dataset (items and files) and
compares them with the signed ones, using the signed leaves file to name what differs: an item added, removed or
altered (a renamed key shows as one removed and one added), and any file extra, missing or altered, sidecars and
metadata included. The leaves file is always checked against its signed digest, even when the data matches: a
bundle whose leaves file was swapped is not the one that was signed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleanset.actions import dsse
from cleanset.actions.attestation import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Leaves,
    leaves_path_for,
    read_leaves,
)
from cleanset.actions.merkle import SPEC, files_root, items_root, overall_root, shard_root
from cleanset.errors import VerificationError

MAX_NAMED = 20
_FILE_WORDS = {
    "file_extra": "extra file",
    "file_missing": "missing file",
    "file_altered": "altered file",
    "file_irregular": "not a regular file",
    "file_unreadable": "unreadable file",
}


@dataclass
class Difference:
    # added | removed | altered | unreadable | shard_added | shard_removed (items; ``key`` is the item key),
    # file_extra | file_missing | file_altered | file_irregular | file_unreadable (``key`` is the relative path),
    # files (the file list differs, unnamed), leaves (the leaves file is not the signed one)
    kind: str
    shard: str
    key: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        if self.kind in ("shard_added", "shard_removed"):
            return f"shard {self.shard!r} {self.kind.removeprefix('shard_')}"
        if self.kind in _FILE_WORDS:
            return f"{_FILE_WORDS[self.kind]} {self.key!r}{extra}"
        if self.kind == "files":
            return f"files differ from the attested file list{extra}"
        if self.kind == "leaves":
            return f"leaves file: {self.detail}"
        return f"{self.kind} item {self.key!r} in shard {self.shard!r}{extra}"


@dataclass
class VerifyResult:
    statement: dict[str, Any]
    keyid: str
    root: str
    items: int
    trusted_key: bool  # False when only the key embedded in the attestation was available
    files: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def _statement(payload: bytes) -> dict[str, Any]:
    try:
        st = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VerificationError(f"attestation payload is not JSON ({e})") from None
    if not isinstance(st, dict) or st.get("_type") != STATEMENT_TYPE:
        raise VerificationError(f"attestation payload is not an in-toto Statement ({STATEMENT_TYPE})")
    if st.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError(f"unsupported predicateType {st.get('predicateType')!r} (want {PREDICATE_TYPE})")
    pred = st.get("predicate")
    subj = st.get("subject")
    if not isinstance(pred, dict) or not isinstance(subj, list) or len(subj) != 1 or not isinstance(subj[0], dict):
        raise VerificationError("attestation statement must have one subject and a predicate")
    merkle = pred.get("merkle")
    spec = merkle.get("spec") if isinstance(merkle, dict) else None
    if spec != SPEC:
        older = f" (it uses {spec}, which covers items only: attest the dataset again)" if isinstance(spec, str) else ""
        raise VerificationError(f"attestation predicate has no {SPEC} merkle section{older}")
    return st


def _hex_root(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise VerificationError(f"attestation {what} is not a 64-digit hex root")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise VerificationError(f"attestation {what} is not hex") from None
    return value


def _diff_shard(sid: str, attested: list[tuple[str, str]], actual: list[tuple[str, str]]) -> list[Difference]:
    a = {k: s for k, s in attested}
    b = {k: s for k, s in actual}
    out = [Difference("removed", sid, k) for k in sorted(a.keys() - b.keys())]
    out += [Difference("added", sid, k) for k in sorted(b.keys() - a.keys())]
    out += [
        Difference("altered", sid, k, "bytes differ from the attested sha256")
        for k in sorted(a.keys() & b.keys())
        if a[k] != b[k]
    ]
    if not out:  # same key set and digests but different multiset: a duplicated key
        out.append(Difference("altered", sid, None, "duplicate keys differ"))
    return out


def _diff_files(attested: dict[bytes, str], actual: dict[bytes, str], bad: set[bytes]) -> list[Difference]:
    from cleanset.actions.dataset_digest import display_path

    out = [Difference("file_missing", "", display_path(p)) for p in sorted(attested.keys() - actual.keys() - bad)]
    out += [Difference("file_extra", "", display_path(p)) for p in sorted(actual.keys() - attested.keys())]
    out += [
        Difference("file_altered", "", display_path(p), "bytes differ from the attested sha256")
        for p in sorted(attested.keys() & actual.keys())
        if attested[p] != actual[p]
    ]
    return out


def _check_leaves(leaves: Leaves, shard_roots: dict[str, str], want_files_root: str) -> None:
    """The leaves file is trusted by its signed digest; that it also adds up to the signed roots is checked so a
    signer's inconsistent bundle can never make the named differences wrong."""
    for sid in leaves.items.keys() - shard_roots.keys():
        raise VerificationError(f"leaves file holds shard {sid!r}, which the attestation does not list")
    for sid, root in shard_roots.items():
        if shard_root(leaves.items.get(sid, [])) != root:
            raise VerificationError(f"leaves file does not add up to the attested root of shard {sid!r}")
    if files_root(leaves.files) != want_files_root:
        raise VerificationError("leaves file does not add up to the attested files root")


def verify(
    dataset: Sequence[Path],
    attestation: Path,
    public_key: Ed25519PublicKey | None = None,
    leaves: Path | None = None,
) -> VerifyResult:
    """Raises VerificationError for a bad signature or statement; returns the data differences (empty = verified)."""
    from cleanset.actions.dataset_digest import IRREGULAR, digest_dataset, display_path, source_options

    env = dsse.open_envelope(attestation)
    if env.payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"payloadType {env.payload_type!r} is not {PAYLOAD_TYPE}")
    trusted = public_key is not None
    if public_key is None:
        # Integrity only: the statement names its own signer. Who signed is only established with --pubkey.
        try:
            embedded = json.loads(env.payload)["predicate"]["signer"]["publicKey"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise VerificationError("attestation names no signer key; pass --pubkey") from None
        public_key = dsse.parse_public_pem(embedded)
    kid = dsse.verify_envelope(env, public_key)
    st = _statement(env.payload)
    pred = st["predicate"]
    merkle = pred["merkle"]
    want_root = (st["subject"][0].get("digest") or {}).get("sha256")
    if want_root != merkle.get("root"):
        raise VerificationError("attestation subject digest and predicate merkle root disagree")
    want_items = _hex_root(merkle.get("itemsRoot"), "itemsRoot")
    want_files = _hex_root(merkle.get("filesRoot"), "filesRoot")
    attested_roots = _attested_shard_roots(merkle.get("shards"))
    # The per-shard roots and the two tree roots are only evidence once they are bound to the signed root;
    # otherwise a statement whose shard list matches the data but whose subject does not would verify.
    if items_root(attested_roots) != want_items or overall_root(want_items, want_files) != want_root:
        raise VerificationError("attestation shard roots do not add up to its signed root")
    # The name recorded at signing, beside the attestation; or <attestation>.leaves.parquet if it was renamed.
    candidates = [leaves] if leaves else [*_recorded_leaves(attestation, merkle), leaves_path_for(attestation)]
    leaves_file = next((p for p in candidates if p.is_file()), candidates[0])
    section = merkle.get("leaves")
    attested: Leaves | None = None
    leaves_error = ""
    try:
        attested = read_leaves(leaves_file, str(section.get("sha256") if isinstance(section, dict) else None))
    except VerificationError as e:
        leaves_error = str(e)
    if attested is not None:
        _check_leaves(attested, attested_roots, want_files)

    described = pred.get("dataset") or {}
    digest, _ = digest_dataset(dataset, described.get("format"), source_options(described.get("sourceOptions")))
    result = VerifyResult(st, kid, digest.root, digest.items, trusted, files=len(digest.files))
    diffs = result.differences
    if leaves_error:
        diffs.append(Difference("leaves", "", None, leaves_error))
    for sid, key, reason in digest.unreadable:
        diffs.append(Difference("unreadable", sid, key, reason))
    for p, why in digest.bad_files:
        kind = "file_irregular" if why in IRREGULAR else "file_unreadable"
        diffs.append(Difference(kind, "", display_path(p), why))

    if digest.files_root != want_files:
        if attested is not None:
            diffs += _diff_files(attested.files, digest.files, {p for p, _ in digest.bad_files})
        else:
            diffs.append(Difference("files", ""))
    actual_roots = digest.shard_roots
    changed = [
        s for s in sorted(attested_roots.keys() | actual_roots.keys()) if attested_roots.get(s) != actual_roots.get(s)
    ]
    for s in changed:
        if attested is None:
            diffs.append(Difference("altered", s, None, "shard root differs"))
        elif s not in actual_roots:
            diffs.append(Difference("shard_removed", s))
            diffs += [Difference("removed", s, k) for k, _ in sorted(attested.items.get(s, []))]
        elif s not in attested_roots:
            diffs.append(Difference("shard_added", s))
            diffs += [Difference("added", s, k) for k, _ in sorted(digest.leaves[s])]
        else:
            diffs += _diff_shard(s, attested.items.get(s, []), digest.leaves[s])
    if digest.root != want_root and not diffs:  # cannot happen once the roots add up; fail closed all the same
        diffs.append(Difference("altered", "*", None, "dataset root differs from the attested root"))
    return result


def _attested_shard_roots(shards: Any) -> dict[str, str]:
    """``{shard id: root}`` from the signed shard list; a malformed or repeated entry is a bad statement."""
    if shards is None:
        shards = []
    if not isinstance(shards, list):
        raise VerificationError("attestation merkle shards is not a list")
    out: dict[str, str] = {}
    for i, s in enumerate(shards):
        sid = s.get("id") if isinstance(s, dict) else None
        root = s.get("root") if isinstance(s, dict) else None
        if not isinstance(sid, str) or not isinstance(root, str) or len(root) != 64:
            raise VerificationError(f"attestation merkle shards[{i}] needs a string id and a 64-digit hex root")
        try:
            bytes.fromhex(root)
        except ValueError:
            raise VerificationError(f"attestation merkle shards[{i}] root is not hex") from None
        if sid in out:
            raise VerificationError(f"attestation merkle shards name {sid!r} twice")
        out[sid] = root
    return out


def _recorded_leaves(attestation: Path, merkle: dict[str, Any]) -> list[Path]:
    """The leaves file named in the statement, beside the attestation: only its last path part is used (the name
    is the signer's, but a path must not steer the verifier elsewhere)."""
    section = merkle.get("leaves")
    recorded = section.get("name", "") if isinstance(section, dict) else ""
    name = Path(str(recorded)).name
    if not name or name in (".", ".."):
        raise VerificationError(f"attestation names no usable leaves file ({str(recorded)!r})")
    return [attestation.with_name(name)]


def describe_failure(result: VerifyResult) -> str:
    lines = [str(d) for d in result.differences[:MAX_NAMED]]
    more = len(result.differences) - MAX_NAMED
    if more > 0:
        lines.append(f"... and {more} more")
    return "dataset does not match the attestation:\n  " + "\n  ".join(lines)
