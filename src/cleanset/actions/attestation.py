"""Signed statement of what a cleaned dataset is and how it was checked (in-toto Statement v1 in a DSSE envelope).

The subject is the cleaned dataset, named by its Merkle root (``cleanset.actions.merkle``); the predicate records
how it was screened: cleanset version, signals, probes and thresholds, policy, the bank versions used (name,
version, entry count and content digest, never content), counts, failures by reason, and time. Anyone holding the
data and the public key can recompute the root (``cleanset verify``).

Pinpointing: a root only says *that* something differs. So that a verifier can say *which* item, ``attest`` also
writes a leaves file (``<attestation>.leaves.parquet``: shard, key, sha256 per kept item) whose SHA-256 is in the
signed predicate. The statement stays small for any dataset size, and the leaves file is trusted exactly as far as
the signature: a swapped leaves file is detected by its digest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanset.actions import dsse
from cleanset.actions.merkle import SPEC, DatasetDigest
from cleanset.errors import UserError, VerificationError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://cleanset.dev/attestation/scan/v1"
LEAVES_SUFFIX = ".leaves.parquet"
# What the predicate repeats from RUN/clean.json: counts and choices, never local paths (sources, out, run).
CLEAN_FIELDS = (
    "format",
    "revision",
    "shards",
    "items",
    "kept",
    "written",
    "removed",
    "review_dropped",
    "failed_dropped",
    "review_kept",
    "failed_kept",
    "keep_review",
    "keep_failed",
    "created",
)
LEAVES_SCHEMA = pa.schema(
    [
        pa.field("shard", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
    ]
)


def leaves_path_for(attestation: Path) -> Path:
    return attestation.with_name(attestation.name + LEAVES_SUFFIX)


def write_leaves(path: Path, digest: DatasetDigest) -> str:
    """Write the leaves file; returns its SHA-256 (of the bytes written, which is what the verifier re-hashes)."""
    shards, keys, shas = [], [], []
    for sid in sorted(digest.leaves, key=lambda s: s.encode("utf-8")):
        for key, sha in sorted(digest.leaves[sid], key=lambda kv: (kv[0].encode("utf-8"), kv[1])):
            shards.append(sid)
            keys.append(key)
            shas.append(sha)
    table = pa.Table.from_pydict({"shard": shards, "key": keys, "sha256": shas}, schema=LEAVES_SCHEMA)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_leaves(path: Path, want_sha256: str) -> dict[str, list[tuple[str, str]]]:
    """The attested leaves, only if the file is the one the signed predicate names."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VerificationError(f"{path}: leaves file missing, cannot name the items that differ") from None
    got = hashlib.sha256(data).hexdigest()
    if got != want_sha256:
        raise VerificationError(f"{path}: leaves file does not match the attestation (sha256 {got})")
    table = pq.read_table(path)
    out: dict[str, list[tuple[str, str]]] = {}
    for sid, key, sha in zip(
        table.column("shard").to_pylist(),
        table.column("key").to_pylist(),
        table.column("sha256").to_pylist(),
        strict=True,
    ):
        out.setdefault(sid, []).append((key, sha))
    return out


def _banks(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for b in manifest.get("banks") or []:
        digest = str(b.get("digest") or "")
        algo, _, value = digest.rpartition(":")
        out.append(
            {
                "name": b.get("name"),
                "version": b.get("version"),
                "allow": bool(b.get("allow", False)),
                "entryCount": b.get("entry_count"),
                "digest": {(algo or "sha256"): value},
                "thresholds": b.get("thresholds") or {},
            }
        )
    return out


def build_statement(
    *,
    dataset_name: str,
    dataset_format: str,
    digest: DatasetDigest,
    leaves_name: str,
    leaves_sha256: str,
    manifest: Mapping[str, Any],
    summary: Mapping[str, Any],
    revision: int | None,
    clean: Mapping[str, Any] | None,
    signer_pem: str,
    signer_keyid: str,
) -> dict[str, Any]:
    from cleanset import __version__

    roots = digest.shard_roots
    counts = {k: summary.get(k) for k in ("items", "kept", "removed", "review", "failed")}
    predicate: dict[str, Any] = {
        "cleanset": {"version": __version__, "scanVersion": manifest.get("cleanset_version")},
        "dataset": {"format": dataset_format, "items": digest.items},
        "merkle": {
            "spec": SPEC,
            "root": digest.root,
            "shards": [
                {"id": sid, "items": len(digest.leaves[sid]), "root": roots[sid]}
                for sid in sorted(roots, key=lambda s: s.encode("utf-8"))
            ],
            "leaves": {"name": leaves_name, "sha256": leaves_sha256},
        },
        "scan": {
            "fingerprint": manifest.get("fingerprint"),
            "created": manifest.get("created"),
            "started": summary.get("started"),
            "finished": summary.get("finished"),
            "format": manifest.get("format"),
            "revision": revision,
            "shards": summary.get("shards"),
        },
        "signals": manifest.get("signals"),
        "probes": manifest.get("probes"),
        "qualityGate": manifest.get("quality_gate"),
        "policy": manifest.get("policy"),
        "banks": _banks(manifest),
        "counts": counts,
        "failuresByReason": dict(summary.get("failures_by_reason") or {}),
        "clean": {k: v for k, v in (clean or {}).items() if k in CLEAN_FIELDS},
        "attestedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "signer": {"keyid": signer_keyid, "publicKey": signer_pem},
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": dataset_name,
                "digest": {"sha256": digest.root},
                "annotations": {"digestMethod": SPEC},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def check_dataset_against_run(
    digest: DatasetDigest, items: pa.Table, keep_failed: bool = False, keep_review: bool = False
) -> None:
    """Refuse to attest a dataset that is not what the run kept: an attestation must never vouch for an item the
    scan removed, failed (unless cleaned with keep_failed), sent to review (unless cleaned with keep_review) or never
    saw, nor for bytes other than the ones it hashed.

    Keys repeat across shards (tar and parquet sources), so the run is keyed by ``(shard, key)``. A cleaned dataset
    may not keep the run's shard ids (a folder's chunks shift when files are dropped), so an item whose
    ``(shard, key)`` is not in the run falls back to its key only where that key is in exactly one run shard; a key
    the run holds in several shards must be found under its own shard."""
    if digest.unreadable:
        sid, key, reason = digest.unreadable[0]
        raise UserError(f"cleaned dataset item {key!r} (shard {sid}) cannot be read: {reason}")
    cols = items.select(["shard", "key", "status", "verdict", "sha256"]).to_pydict()
    run: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}
    by_key: dict[str, list[tuple[str, str | None, str | None]]] = {}
    for shard, k, st, v, sha in zip(
        cols["shard"], cols["key"], cols["status"], cols["verdict"], cols["sha256"], strict=True
    ):
        run[(shard, k)] = (st, v, sha)
        by_key.setdefault(k, []).append((st, v, sha))
    for sid, entries in digest.leaves.items():
        for key, sha in entries:
            if (sid, key) in run:
                status, verdict, run_sha = run[(sid, key)]
            elif len(by_key.get(key, ())) == 1:
                status, verdict, run_sha = by_key[key][0]
            elif key in by_key:
                raise UserError(
                    f"cleaned dataset item {key!r} (shard {sid}) is in {len(by_key[key])} shards of the run "
                    "and in none of them under this shard id; cannot tell which the run kept"
                )
            else:
                raise UserError(f"cleaned dataset item {key!r} (shard {sid}) is not in the run")
            allowed = (
                (status == "failed" and keep_failed)
                or (status == "ok" and verdict == "keep")
                or (status == "ok" and verdict == "review" and keep_review)
            )
            if not allowed:
                raise UserError(
                    f"cleaned dataset item {key!r} (shard {sid}) was {verdict or status} in the run; "
                    "clean the dataset again before attesting"
                )
            if run_sha is not None and run_sha != sha:
                raise UserError(f"cleaned dataset item {key!r} (shard {sid}) has other bytes than the run scanned")


def attest(
    *,
    manifest: Mapping[str, Any],
    summary: Mapping[str, Any],
    items: pa.Table,
    revision: int | None,
    clean: Mapping[str, Any] | None,
    dataset: Sequence[Path],
    key: Ed25519PrivateKey,
    out: Path,
    format: str | None = None,
) -> dict[str, Any]:
    """Hash the dataset, check it against the run, write ``out`` (the envelope) and its leaves file; returns the
    statement."""
    from cleanset.actions.dataset_digest import digest_dataset

    digest, fmt = digest_dataset(dataset, format)
    check_dataset_against_run(
        digest,
        items,
        keep_failed=bool((clean or {}).get("keep_failed")),
        keep_review=bool((clean or {}).get("keep_review")),
    )
    leaves = leaves_path_for(out)
    leaves_sha = write_leaves(leaves, digest)
    statement = build_statement(
        dataset_name=Path(dataset[0]).name or str(dataset[0]),
        dataset_format=fmt,
        digest=digest,
        leaves_name=leaves.name,
        leaves_sha256=leaves_sha,
        manifest=manifest,
        summary=summary,
        revision=revision,
        clean=clean,
        signer_pem=dsse.public_pem(key.public_key()),
        signer_keyid=dsse.keyid(key.public_key()),
    )
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    envelope = dsse.sign_envelope(payload, PAYLOAD_TYPE, key)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(envelope, indent=2) + "\n")
    tmp.replace(out)
    return statement
