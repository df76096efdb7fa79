"""The run directory: what a scan was asked to do (manifest + fingerprint) and where its pieces live.

The fingerprint is what makes resume safe: re-running the same command continues the run, while a scan with other
sources, banks, bank versions, signals, probes or policy is refused, so one RUN never mixes results of two
configurations.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanset.atomic import PRIVATE_FILE_MODE, atomic_output, make_private, private_dir
from cleanset.errors import InputFormatError, UserError

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
ITEMS_DIR = "items"
LEDGER_DIR = "ledger"
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


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 over the scan-defining part of the config, in canonical JSON."""
    return hashlib.sha256(canonical_json({k: config.get(k) for k in FINGERPRINT_KEYS})).hexdigest()


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
    path: Path

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
                diff = [k for k in FINGERPRINT_KEYS if old.get(k) != config.get(k)]
                raise UserError(
                    f"{self.path} already holds a different scan (differs in: {', '.join(diff) or 'fingerprint'}); "
                    "use a new --out directory, or `cleanset rematch` for new bank versions"
                )
            return old
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
            **{k: config.get(k) for k in FINGERPRINT_KEYS},
            "fingerprint": fingerprint(config),
        }
        write_json_atomic(self.manifest_path, manifest)
        return manifest, False
