"""API keys: created once, shown once, stored only as a digest in an owner-only file under ``CLEANSET_HOME``.

A key reads ``cs_<id>_<secret>``: the id (8 hex characters) finds the record without comparing digests of every
key, the secret is 32 random bytes. The store keeps the SHA-256 of the whole key, never the key: a copy of the
file does not let anyone call the service. Compared in constant time, so a caller cannot learn a digest byte by byte.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cleanset.atomic import atomic_output, private_dir
from cleanset.banks.layout import home
from cleanset.errors import InputFormatError, UserError

SCOPES = ("check", "admin")
PREFIX = "cs_"
KEYS_FILE = "keys.json"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the store knows about a key: never the key itself."""

    id: str
    name: str
    scope: str
    digest: str
    created: str
    revoked: str | None = None

    def allows(self, scope: str) -> bool:
        """admin covers check; check covers only check."""
        return self.revoked is None and (self.scope == "admin" or self.scope == scope)

    def public(self) -> dict[str, str | None]:
        return {"id": self.id, "name": self.name, "scope": self.scope, "created": self.created, "revoked": self.revoked}


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def default_path() -> Path:
    return home() / "service" / KEYS_FILE


class KeyStore:
    """The key file, re-read when it changes on disk, so ``cleanset keys revoke`` takes effect on a running
    service within a second without a restart."""

    RECHECK_S = 1.0

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._records: dict[str, KeyRecord] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._load()

    # -- reading ----------------------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = {}, None
            return
        if st.st_mode & 0o022:
            # Whoever may write the file may give themselves an admin key: refuse it, and every key in it, rather
            # than trust it.
            self._records, self._stamp = {}, None
            raise InputFormatError(
                str(self.path), f"key file is writable by group or others (mode {st.st_mode & 0o777:o}); chmod 600 it"
            )
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            records = {r["id"]: KeyRecord(**r) for r in raw["keys"]}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputFormatError(str(self.path), f"unreadable key file ({e})") from None
        self._records, self._stamp = records, stamp

    def refresh(self, now: float) -> None:
        """Re-read the file at most once a second (one ``stat``), from the request path: the only read a request
        causes, so an unknown key, sent as often as anyone likes, costs a dictionary lookup."""
        if now - self._checked >= self.RECHECK_S:
            self._checked = now
            self._load()

    def records(self) -> list[KeyRecord]:
        self._load()
        return sorted(self._records.values(), key=lambda r: (r.created, r.id))

    def verify(self, key: str) -> KeyRecord | None:
        """The record of a valid, unrevoked key; None for anything else (malformed, unknown, revoked)."""
        if not key.startswith(PREFIX) or len(key) > 128:
            return None
        kid = key[len(PREFIX) : len(PREFIX) + 8]
        rec = self._records.get(kid)  # a key made since the last look works after the next ``refresh``
        if rec is None or rec.revoked is not None:
            return None
        return rec if hmac.compare_digest(rec.digest, digest_of(key)) else None

    # -- writing ----------------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The thread lock and an ``flock`` on a lock file beside the key file: two ``cleanset keys`` commands
        (processes) read-modify-write one at a time, so neither loses the other's key or revocation."""
        private_dir(self.path.parent)
        with self._lock:
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._stamp = None  # re-read under the lock, whatever was read before
                self._load()
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def _write(self, records: dict[str, KeyRecord]) -> None:
        private_dir(self.path.parent)
        body = json.dumps({"keys": [asdict(r) for r in records.values()]}, indent=2, sort_keys=True)
        with atomic_output(self.path) as tmp:
            tmp.write_text(body + "\n", encoding="utf-8")
        self._stamp = None
        self._load()

    def create(self, name: str, scope: str) -> tuple[str, KeyRecord]:
        """A new key and its record; the key is returned once and stored nowhere."""
        if scope not in SCOPES:
            raise UserError(f"--scope {scope!r}: use one of {', '.join(SCOPES)}")
        if not name.strip():
            raise UserError("a key needs a name (who or what uses it)")
        with self._locked():
            kid = secrets.token_hex(4)
            while kid in self._records:
                kid = secrets.token_hex(4)
            key = f"{PREFIX}{kid}_{secrets.token_urlsafe(32)}"
            rec = KeyRecord(kid, name, scope, digest_of(key), _now())
            self._write({**self._records, kid: rec})
        return key, rec

    def revoke(self, ident: str) -> KeyRecord:
        """Revoke by id or by name (a name must be unique among live keys)."""
        with self._locked():
            hits = [r for r in self._records.values() if r.revoked is None and ident in (r.id, r.name)]
            if not hits:
                raise UserError(f"no live key with id or name {ident!r} (see `cleanset keys list`)")
            if len(hits) > 1:
                raise UserError(f"{len(hits)} live keys are named {ident!r}: revoke by id")
            rec = KeyRecord(**{**asdict(hits[0]), "revoked": _now()})
            self._write({**self._records, rec.id: rec})
        return rec


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
