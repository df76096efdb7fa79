"""The run directory: what a scan was asked to do (manifest + fingerprint) and where its pieces live.

The fingerprint is what makes resume safe: re-running the same command continues the run, while a scan with other
sources, banks, bank versions, signals, probes or policy is refused, so one RUN never mixes results of two
configurations.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanset import storage
from cleanset.atomic import PRIVATE_FILE_MODE, atomic_output, make_private, private_dir
from cleanset.errors import InputFormatError, UserError

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
ITEMS_DIR = "items"
LEDGER_DIR = "ledger"
REVISIONS_DIR = "revisions"  # rematch's numbered revisions (runs.store)
CLEAN_RECORD = "clean.json"  # what the last clean of the run wrote (actions.clean)
LOCK = ".lock"  # held by a running scan (pipeline.scan.run_lock)

# Keys of the manifest that define the scan; everything else (version, timestamps) is informational.
FINGERPRINT_KEYS = (
    "sources",
    "format",
    "source_options",
    "banks",
    "signals",
    "probes",
    "quality_gate",
    "max_pixels",
    "policy",
)
# Keys that define the scan when present (screening, issue 13), left out when absent so a scan without them keeps
# the fingerprint it always had.
OPTIONAL_FINGERPRINT_KEYS = ("screen",)


def _defining(config: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: config.get(k) for k in FINGERPRINT_KEYS}
    out.update({k: config[k] for k in OPTIONAL_FINGERPRINT_KEYS if config.get(k) is not None})
    return out


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 over the scan-defining part of the config, in canonical JSON."""
    return hashlib.sha256(canonical_json(_defining(config))).hexdigest()


def write_json_atomic(path: Path, obj: Any) -> None:
    """Temp file, fsync, rename, fsync directory: the file is either the old one or the complete new one."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputFormatError(str(path), f"not valid JSON: {e.msg}", e.lineno) from None


@dataclass(frozen=True)
class RunDir:
    """A run folder. ``remote``: the object-store URL it lives at, ``path`` then being its local working copy.

    Remote runs (``cleanset.storage``): commits land in the working copy atomically and are then pushed
    write-then-marker (items, then the ledger entry); :meth:`pull` makes the working copy what the store holds, the
    store's ledger being the only truth. So a scan killed anywhere, on any machine, resumes from the store."""

    path: Path
    remote: str | None = None

    @classmethod
    def at(cls, where: Path | str) -> RunDir:
        """The run at a local path or a URL; a remote one is pulled into its working copy first."""
        loc = storage.location(where)
        if isinstance(loc, Path):
            return cls(loc)
        run = cls(storage.mirror_path(loc), loc)
        run.pull()
        return run

    @property
    def shown(self) -> str:
        """How messages name the run: the URL for a remote run, not the working copy."""
        return self.remote or str(self.path)

    def push(self, *relative: str) -> None:
        """Upload files of the working copy to the store, in the order given (a marker last)."""
        if self.remote is None:
            return
        for rel in relative:
            storage.upload(self.path / rel, storage.join(self.remote, rel))

    def pull(self) -> None:
        """Make the working copy hold what the store holds: the manifest, the summary and every shard whose ledger
        entry is there (with its items). A working copy's own entry the store lacks was never pushed whole: it is
        dropped, and the shard is scanned again."""
        if self.remote is None:
            return
        for d in (self.path, self.items_dir, self.ledger_dir):
            private_dir(d)
        stored = set(storage.list_names(storage.join(self.remote, LEDGER_DIR)))
        for name in (MANIFEST, SUMMARY, CLEAN_RECORD):
            url = storage.join(self.remote, name)
            if storage.exists(url):
                storage.download(url, self.path / name)
            else:  # the store is the truth: a working copy of a run the store no longer holds starts afresh
                (self.path / name).unlink(missing_ok=True)
        for p in self.ledger_dir.glob("*.json"):
            if p.name not in stored:
                p.unlink()
        items = set(storage.list_names(storage.join(self.remote, ITEMS_DIR)))
        names = sorted(n for n in stored if n.endswith(".json"))
        entries = storage.read_many([storage.join(self.remote, LEDGER_DIR, n) for n in names])  # concurrently
        for name, entry_bytes in zip(names, entries, strict=True):
            local_entry = self.ledger_dir / name
            shard = json.loads(entry_bytes)["shard"]
            if local_entry.is_file() and local_entry.read_bytes() == entry_bytes and self.items_path(shard).is_file():
                continue  # the working copy has this commit already
            if f"{shard}.parquet" not in items:  # a marker without its items: the shard is redone
                local_entry.unlink(missing_ok=True)
                continue
            storage.download(storage.join(self.remote, ITEMS_DIR, f"{shard}.parquet"), self.items_path(shard))
            with atomic_output(local_entry) as tmp:
                tmp.write_bytes(entry_bytes)
        self._pull_revisions()

    def _pull_revisions(self) -> None:
        """Make the working copy's rematch revisions the ones the store holds whole (their ``summary.json``,
        uploaded last, is the marker). A local revision the store lacks (the store's run was deleted and scanned
        anew, a rematch was killed while pushing) or whose summary differs from the store's (another machine
        rematched the same run) is removed first: otherwise it would be the "latest revision" clean and report use.
        """
        assert self.remote is not None
        fs, root = storage.filesystem(storage.join(self.remote, REVISIONS_DIR))
        fs.invalidate_cache()
        try:
            numbers = [e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(root, detail=False, refresh=True)]
        except FileNotFoundError:
            numbers = []
        whole = [n for n in sorted(x for x in numbers if x.isdigit()) if fs.exists(f"{root}/{n}/{SUMMARY}")]
        urls = [storage.join(self.remote, REVISIONS_DIR, n, SUMMARY) for n in whole]
        summaries = dict(zip(whole, storage.read_many(urls), strict=True))
        local_root = self.path / REVISIONS_DIR
        if local_root.is_dir():
            for d in local_root.iterdir():
                mine = d / SUMMARY
                if d.name in summaries and mine.is_file() and mine.read_bytes() == summaries[d.name]:
                    continue
                if d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d)
                else:
                    d.unlink()
        for n in whole:
            local = local_root / n
            if local.is_dir():
                continue  # the same revision as the store's (checked above)
            base = f"{root}/{n}/"
            files = sorted(f for f in fs.find(base) if f.startswith(base))
            for f in [*(f for f in files if not f.endswith("/" + SUMMARY)), f"{root}/{n}/{SUMMARY}"]:
                storage.download(storage.join(self.remote, REVISIONS_DIR, n, f[len(base) :]), local / f[len(base) :])

    def push_revision(self, number: int) -> None:
        """A finished rematch revision to the store, its ``summary.json`` last (the marker :meth:`pull` trusts)."""
        if self.remote is not None:
            rel = f"{REVISIONS_DIR}/{number}"
            storage.upload_tree(self.path / rel, storage.join(self.remote, rel), last=[SUMMARY])

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def items_dir(self) -> Path:
        return self.path / ITEMS_DIR

    @property
    def ledger_dir(self) -> Path:
        return self.path / LEDGER_DIR

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    def _private_lock(self) -> None:
        """The scan's lock file is made here, 0600: whoever opens it later with O_CREAT keeps that mode."""
        fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
        finally:
            os.close(fd)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.path).as_posix()

    def items_path(self, shard_id: str) -> Path:
        return self.items_dir / f"{shard_id}.parquet"

    def ledger_path(self, shard_id: str) -> Path:
        return self.ledger_dir / f"{shard_id}.json"

    def check(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The run's manifest when it holds this very scan, None when the directory is free for it.

        Refuses a used directory that holds another scan, or anything that is not a run: writing beside foreign
        files would make the run's contents ambiguous. Reads only, so it can run before any costly preparation.
        """
        fp = fingerprint(config)
        if self.manifest_path.exists():
            old: dict[str, Any] = read_json(self.manifest_path)
            if old.get("fingerprint") != fp:
                diff = [k for k in (*FINGERPRINT_KEYS, *OPTIONAL_FINGERPRINT_KEYS) if old.get(k) != config.get(k)]
                raise UserError(
                    f"{self.shown} already holds a different scan (differs in: {', '.join(diff) or 'fingerprint'}); "
                    "use a new --out directory, or `cleanset rematch` for new bank versions"
                )
            return old
        if self.remote is not None:
            if not storage.is_empty(self.remote):
                raise UserError(f"{self.remote} is not empty and holds no scan ({MANIFEST} missing)")
            return None
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise UserError(f"{self.path} exists, is not empty and holds no scan ({MANIFEST} missing)")
        return None

    def open_for_scan(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the run, or reopen it when it holds the same scan. Returns (manifest, resumed)."""
        old = self.check(config)
        if old is not None:
            make_private(self.path)  # a run begun before runs were private is closed up as it resumes
            self._private_lock()
            return old, True
        # Owner-only from the start: a matched item's hashes are list values. Files written into these folders
        # through atomic_output are owner-only too (see cleanset.atomic); the folders above the run are the user's.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for d in (self.path, self.items_dir, self.ledger_dir):
            private_dir(d)
        self._private_lock()
        from cleanset import __version__

        manifest = {
            "cleanset_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **_defining(config),
            "fingerprint": fingerprint(config),
        }
        write_json_atomic(self.manifest_path, manifest)
        self.push(MANIFEST)
        return manifest, False
