"""Signed statement of what a cleaned dataset is and how it was checked (in-toto Statement v1 in a DSSE envelope).

The subject is the cleaned dataset, named by its Merkle root (``cleanset.actions.merkle``: every item *and* every
file of the output); the predicate records how it was screened: cleanset version, signals, probes and thresholds,
policy, the bank versions used (name, version, entry count and content digest, never content), counts, failures by
reason, and time. Anyone holding the data and the public key can recompute the root (``cleanset verify``).

What is signed must be what the run kept, and nothing else, so ``attest`` refuses:

- a folder that is not a finished ``cleanset clean`` output (no completion marker), one cleaned from another run
  (fingerprint), or one cleaned before the run's latest revision (a rematch since: the copy may hold items the
  new lists flag);
- any entry that is not a regular file or a folder (a link could change what it points at after signing);
- any item the run did not keep, or whose content digest is not the one the scan recorded (an item swapped
  between scan and clean), and a copy holding more items than the clean wrote.

Pinpointing: a root only says *that* something differs. So that a verifier can say *which* item or file, ``attest``
also writes a leaves file (``<attestation>.leaves.parquet``: one row per item leaf and per file leaf) whose SHA-256
is in the signed predicate. The statement stays small for any dataset size, and the leaves file is trusted exactly
as far as the signature: a swapped leaves file is detected by its digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanset.actions import dsse
from cleanset.actions.clean import CLEAN_JSON, CLEAN_MARKER, MARKER_FIELDS, read_clean_marker
from cleanset.actions.merkle import SPEC, DatasetDigest, files_root
from cleanset.atomic import atomic_output
from cleanset.errors import UserError, VerificationError
from cleanset.runs.store import RunStore

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://cleanset.dev/attestation/scan/v1"
LEAVES_SUFFIX = ".leaves.parquet"
ITEM_LEAF, FILE_LEAF = "item", "file"
# One table for both trees: item rows carry shard and key, file rows the relative path (raw bytes, as hashed).
LEAVES_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("shard", pa.string()),
        pa.field("key", pa.string()),
        pa.field("path", pa.binary()),
        pa.field("sha256", pa.string(), nullable=False),
    ]
)
RUN_COLUMNS = ("shard", "key", "status", "verdict", "content_sha256", "url")


def leaves_path_for(attestation: Path) -> Path:
    return attestation.with_name(attestation.name + LEAVES_SUFFIX)


def write_leaves(path: Path, digest: DatasetDigest) -> str:
    """Write the leaves file; returns its SHA-256 (of the bytes written, which is what the verifier re-hashes)."""
    kinds: list[str] = []
    shards: list[str | None] = []
    keys: list[str | None] = []
    paths: list[bytes | None] = []
    shas: list[str] = []
    for sid in sorted(digest.leaves, key=lambda s: s.encode("utf-8")):
        for key, sha in sorted(digest.leaves[sid], key=lambda kv: (kv[0].encode("utf-8"), kv[1])):
            kinds.append(ITEM_LEAF)
            shards.append(sid)
            keys.append(key)
            paths.append(None)
            shas.append(sha)
    for p in sorted(digest.files):
        kinds.append(FILE_LEAF)
        shards.append(None)
        keys.append(None)
        paths.append(p)
        shas.append(digest.files[p])
    table = pa.Table.from_pydict(
        {"kind": kinds, "shard": shards, "key": keys, "path": paths, "sha256": shas}, schema=LEAVES_SCHEMA
    )
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Leaves:
    items: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # shard id -> [(key, sha256)]
    files: dict[bytes, str] = field(default_factory=dict)  # relative path -> sha256


def read_leaves(path: Path, want_sha256: str) -> Leaves:
    """The attested leaves, only if the file is the one the signed predicate names."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VerificationError(f"{path}: leaves file missing, cannot name what differs") from None
    except OSError as e:
        raise VerificationError(f"{path}: leaves file cannot be read ({e.strerror or e})") from None
    got = hashlib.sha256(data).hexdigest()
    if got != want_sha256:
        raise VerificationError(f"{path}: leaves file does not match the attestation (sha256 {got})")
    try:
        table = pq.read_table(pa.BufferReader(data))
        cols = table.select([f.name for f in LEAVES_SCHEMA]).to_pydict()
    except (pa.ArrowException, KeyError) as e:
        raise VerificationError(f"{path}: leaves file is not a {SPEC} leaves table ({e})") from None
    out = Leaves()
    for kind, sid, key, p, sha in zip(
        cols["kind"], cols["shard"], cols["key"], cols["path"], cols["sha256"], strict=True
    ):
        if kind == ITEM_LEAF and isinstance(sid, str) and isinstance(key, str):
            out.items.setdefault(sid, []).append((key, sha))
        elif kind == FILE_LEAF and isinstance(p, bytes) and p not in out.files:
            out.files[p] = sha
        else:
            raise VerificationError(f"{path}: malformed leaves row ({kind!r})")
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
        "dataset": {
            "format": dataset_format,
            "items": digest.items,
            "files": len(digest.files),
            "sourceOptions": dict((clean or {}).get("source_options") or {}),
        },
        "merkle": {
            "spec": SPEC,
            "root": digest.root,
            "itemsRoot": digest.items_root,
            "filesRoot": digest.files_root,
            "shards": [
                {"id": sid, "items": len(digest.leaves[sid]), "root": roots[sid]}
                for sid in sorted(roots, key=lambda s: s.encode("utf-8"))
            ],
            "files": len(digest.files),
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
        "clean": {k: v for k, v in (clean or {}).items() if k in MARKER_FIELDS},
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


class _Row(NamedTuple):
    shard: str
    status: str | None
    verdict: str | None
    content: str | None
    url: str | None
    matched: bool


def _rows(items: pa.Table) -> list[tuple[str, _Row]]:
    n = items.num_rows

    def col(name: str) -> list[Any]:
        return items.column(name).to_pylist() if name in items.column_names else [None] * n

    if "matched" in items.column_names:
        matched = [bool(m) for m in items.column("matched").to_pylist()]
    elif "matches" in items.column_names:
        lengths = pc.fill_null(pc.list_value_length(items.column("matches")), 0)
        matched = [bool(m) for m in pc.greater(lengths, 0).to_pylist()]
    else:
        matched = [False] * n
    return [
        (k, _Row(sid, st, v, c, u, m))
        for sid, k, st, v, c, u, m in zip(
            col("shard"), col("key"), col("status"), col("verdict"), col("content_sha256"), col("url"), matched,
            strict=True,
        )
    ]  # fmt: skip


def check_dataset_against_run(
    digest: DatasetDigest, items: pa.Table, keep_failed: bool = False, keep_review: bool = False
) -> None:
    """Refuse to attest a dataset that is not what the run kept: an attestation must never vouch for an item the
    scan removed, failed (unless cleaned with keep_failed, and then only if nothing matched it), sent to review
    (unless cleaned with keep_review) or never saw, nor for content other than what it screened.

    Content is compared by the digest the scan always records (``content_sha256``), whatever signals were asked
    for. A URL-only row has no bytes: it must carry a URL the run screened.

    Finding an item's run row: keys repeat across shards (tar and parquet sources), so the run is keyed by
    ``(shard, key)``. A cleaned dataset may not keep the run's shard ids (a folder's chunks shift when files are
    dropped), so an item whose ``(shard, key)`` is not in the run falls back to its key where that key is in exactly
    one run shard. Failing both, an item with bytes may still be matched by its content digest, but only when every
    run row with that content was kept; a URL-only row (whose row-number key shifts when rows before it were
    dropped) is matched by its URL under the same rule.
    """
    if digest.unreadable:
        sid, key, reason = digest.unreadable[0]
        raise UserError(f"cleaned dataset item {key!r} (shard {sid}) cannot be read: {reason}")
    run: dict[tuple[str, str], _Row] = {}
    by_key: dict[str, list[_Row]] = {}
    by_content: dict[str, list[_Row]] = {}
    by_url: dict[str, list[_Row]] = {}
    for k, r in _rows(items):
        run[(r.shard, k)] = r
        by_key.setdefault(k, []).append(r)
        if r.content is not None:
            by_content.setdefault(r.content, []).append(r)
        elif r.url is not None:
            by_url.setdefault(r.url, []).append(r)

    def allowed(r: _Row) -> bool:
        if r.status == "failed":
            return keep_failed and not r.matched
        return r.status == "ok" and (r.verdict == "keep" or (r.verdict == "review" and keep_review))

    def refuse(key: str, sid: str, why: str) -> UserError:
        return UserError(f"cleaned dataset item {key!r} (shard {sid}) {why}")

    def dropped(rows: Sequence[_Row]) -> str:
        return "/".join(sorted({str(r.verdict or r.status) for r in rows if not allowed(r)}))

    for sid, entries in digest.leaves.items():
        for key, sha in entries:
            row: _Row | None = run.get((sid, key))
            if row is None and len(by_key.get(key, ())) == 1:
                row = by_key[key][0]
            url = digest.urls.get((sid, key))
            if url is None:  # an item with bytes: its content must be what the scan screened
                if row is not None:
                    if row.content is None:
                        raise refuse(key, sid, "has bytes but the run recorded no content digest for it")
                    if row.content == sha:
                        if not allowed(row):
                            raise refuse(
                                key, sid, f"was {row.verdict or row.status} in the run; clean the dataset again"
                            )
                        continue
                # Not under this key with this content (a key that shifted when a same-named item before it went):
                # the content itself must be what the run screened and kept, wherever it stood.
                same = by_content.get(sha, [])
                if not same and row is not None:
                    raise refuse(key, sid, "has other bytes than the run scanned")
                if not same:
                    where = (
                        f"is in {len(by_key[key])} shards of the run and in none of them under this shard id, "
                        "and no run item has its content"
                        if key in by_key
                        else "is not in the run"
                    )
                    raise refuse(key, sid, where)
                if not all(allowed(r) for r in same):
                    raise refuse(
                        key, sid, f"is not in the run under this shard and key, and its content was {dropped(same)} "
                        "in the run; clean the dataset again",
                    )  # fmt: skip
                continue
            if row is not None and row.content is None and row.url == url:
                if not allowed(row):
                    raise refuse(key, sid, f"was {row.verdict or row.status} in the run; clean the dataset again")
                continue
            same = by_url.get(url, [])
            if not same:
                raise refuse(key, sid, "holds a URL the run did not screen")
            if not all(allowed(r) for r in same):
                raise refuse(key, sid, f"holds a URL that was {dropped(same)} in the run; clean the dataset again")


def run_items(store: RunStore, revision: int) -> pa.Table:
    """The revision's rows in the columns the check needs, ``matches`` reduced to whether anything matched."""
    parts: list[pa.Table] = []
    for f in store.item_files(revision):
        present = set(pq.read_schema(f).names)
        if "content_sha256" not in present:
            raise UserError(f"{f}: results without content digests (an older cleanset); scan again before attesting")
        t = pq.read_table(f, columns=[c for c in (*RUN_COLUMNS, "matches") if c in present])
        matched = (
            pc.greater(pc.fill_null(pc.list_value_length(t.column("matches")), 0), 0)
            if "matches" in present
            else pa.array([False] * t.num_rows)
        )
        cols = {c: t.column(c) if c in present else pa.nulls(t.num_rows, pa.string()) for c in RUN_COLUMNS}
        parts.append(pa.table({**cols, "matched": matched}))
    if not parts:
        return pa.table({**{c: pa.array([], pa.string()) for c in RUN_COLUMNS}, "matched": pa.array([], pa.bool_())})
    return pa.concat_tables(parts)


def check_marker(marker: Mapping[str, Any] | None, folder: Path, store: RunStore) -> tuple[int, Mapping[str, Any]]:
    """The revision the copy was cleaned at and the marker, once it shows the copy is this run's finished clean of
    the run's latest revision."""
    if marker is None:
        raise UserError(
            f"{folder} is not a finished `cleanset clean` output (no valid {CLEAN_MARKER}); clean the dataset with "
            "`cleanset clean` and attest its --out as it is"
        )
    revision = marker.get("revision")
    latest = store.latest_revision()
    if not isinstance(revision, int) or isinstance(revision, bool) or not 0 <= revision <= latest:
        raise UserError(f"{folder}: its {CLEAN_MARKER} names revision {revision!r}, which {store.path} does not have")
    if revision < latest:
        raise UserError(
            f"{folder} was cleaned at revision {revision}, but {store.path} is at revision {latest} (rematched "
            "since): the copy may hold items the run now drops; run `cleanset clean` again, then attest"
        )
    fingerprint = store.manifest.get("fingerprint")
    if not fingerprint or marker.get("run_fingerprint") != fingerprint:
        raise UserError(f"{folder} was cleaned from another run than {store.path} (run fingerprints differ)")
    for flag in ("keep_review", "keep_failed", "written"):
        if flag not in marker:
            raise UserError(f"{folder}: its {CLEAN_MARKER} has no {flag!r}")
    return revision, marker


def _marker_of(folder: Path) -> dict[str, Any] | None:
    """The marker, only when it is a regular file (a link could point at another copy's marker)."""
    try:
        if not stat.S_ISREG(os.lstat(folder / CLEAN_MARKER).st_mode):
            return None
    except OSError:
        return None
    return read_clean_marker(folder)


def attest(
    *,
    run: Path,
    dataset: Sequence[Path],
    key: Ed25519PrivateKey,
    out: Path,
    format: str | None = None,
) -> dict[str, Any]:
    """Check the cleaned dataset against the run and its clean, hash it, write ``out`` (the envelope) and its
    leaves file; returns the statement."""
    from cleanset.actions.dataset_digest import dataset_folder, digest_dataset, display_path, source_options

    store = RunStore(run)
    if len(dataset) != 1 or not Path(dataset[0]).is_dir():
        raise UserError(
            "attest the cleaned folder itself (the --out of `cleanset clean`): an attestation covers every file "
            "of it, so a selection of files cannot be attested"
        )
    folder = dataset_folder(dataset)
    revision, marker = check_marker(_marker_of(folder), folder, store)
    fmt = format or marker.get("format")
    if format is not None and marker.get("format") not in (None, format):
        raise UserError(f"{folder} was cleaned as {marker.get('format')!r}, not {format!r}")
    leaves = leaves_path_for(out)
    for target in (out, leaves):
        forms = (Path(os.path.abspath(target)), target.resolve())
        if any(a.is_relative_to(f) for a in forms for f in (folder, folder.resolve())):
            raise UserError(f"{target} lies inside the dataset {folder}: write the attestation beside it, not into it")
    options = source_options(marker.get("source_options"))
    digest, fmt = digest_dataset(dataset, fmt, options)
    if digest.bad_files:
        p, why = digest.bad_files[0]
        raise UserError(
            f"{folder}: {display_path(p)!r} is not a regular file ({why}); an attestation covers regular files only"
        )
    check_dataset_against_run(
        digest,
        run_items(store, revision),
        keep_failed=bool(marker.get("keep_failed")),
        keep_review=bool(marker.get("keep_review")),
    )
    # The marker records the files root of everything the clean wrote but itself: the copy must be exactly that,
    # and nothing (an image no reader looks at, an archive) can have been added or changed since.
    # The marker travels with the data and anyone can rewrite it, so its files root must also be the one the run
    # itself recorded when it cleaned (RUN/clean.json, owner-only).
    recorded = marker.get("files_root")
    if not isinstance(recorded, str):
        raise UserError(f"{folder}: {CLEAN_MARKER} records no files root; clean the dataset again with this cleanset")
    try:
        run_clean = json.loads((store.path / CLEAN_JSON).read_text())
    except (OSError, ValueError):
        run_clean = {}
    if not isinstance(run_clean, dict) or run_clean.get("files_root") != recorded:
        raise UserError(
            f"{folder} is not the output of this run's latest `cleanset clean` ({store.path / CLEAN_JSON} records "
            "other files); clean again and attest that output"
        )
    marker_path = CLEAN_MARKER.encode()
    if files_root({p: d for p, d in digest.files.items() if p != marker_path}) != recorded:
        raise UserError(
            f"{folder}: its files are not the ones `cleanset clean` wrote (files root differs from the one in "
            f"{CLEAN_MARKER}): the copy changed after the clean; clean again"
        )
    # More items than the clean wrote were added since (a kept image copied under a new name passes the content
    # check); fewer is a subset of what was kept, which the attestation then describes as it is.
    written = marker.get("written")
    if not isinstance(written, int) or digest.items > written:
        raise UserError(
            f"{folder} holds {digest.items} items but `cleanset clean` wrote {written}: the copy changed after the "
            "clean; clean again"
        )
    leaves_sha = write_leaves(leaves, digest)
    statement = build_statement(
        dataset_name=folder.name or str(folder),
        dataset_format=fmt,
        digest=digest,
        leaves_name=leaves.name,
        leaves_sha256=leaves_sha,
        manifest=store.manifest_of(revision),
        summary=store.summary_of(revision),
        revision=revision,
        clean=marker,
        signer_pem=dsse.public_pem(key.public_key()),
        signer_keyid=dsse.keyid(key.public_key()),
    )
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    envelope = dsse.sign_envelope(payload, PAYLOAD_TYPE, key)
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(envelope, indent=2) + "\n")
    return statement
