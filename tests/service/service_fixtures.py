"""A real server on a free loopback port, over a stand-in bank made from benign pictures, with keys of each
scope. Tests talk HTTP to it; the access log is captured in memory so tests can read every line of it."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from cleanset.api import hash_bytes, hasher
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.service import Settings, create_app
from cleanset.service.keys import KeyStore
from cleanset.service.limits import Limits
from cleanset.service.live import LiveBanks
from pictures import encode, picture

BANK = "standin"
LISTED_URL = "https://example.org/listed/picture.jpg"


@dataclass
class Served:
    url: str
    home: Path
    check_key: str
    admin_key: str
    listed: bytes  # a benign picture whose hashes the stand-in bank holds
    other: bytes  # a benign picture the bank does not hold
    live: LiveBanks
    log: list[str] = field(default_factory=list)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def bank_values(self) -> set[str]:
        """Every value of every version of the stand-in bank: none may appear in an answer or a log line."""
        store = BankStore(self.home)
        out: set[str] = set()
        for m in store.versions(BANK):
            snap = store.open(BANK, m.version)
            for sig in snap.signals():
                out |= {bytes(r).hex() for r in snap.values(sig)}
        return out


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


def bank_rows(listed: bytes, seed: int) -> list[BankRow]:
    """The listed picture's md5, sha256 and pdq, a listed URL, and filler pdq entries from other benign pictures."""
    h = hash_bytes(listed).hashes
    url = hasher(["url_sha1"]).hash_url(LISTED_URL).hashes["url_sha1"]
    rows = [
        BankRow("md5", h["md5"], "e-md5"),
        BankRow("sha256", h["sha256"], "e-sha256"),
        BankRow("pdq", h["pdq"], "e-pdq"),
        BankRow("url_sha1", url, "e-url"),
    ]
    for i in range(5):
        hh = hash_bytes(encode(picture(seed * 100 + i)), ["pdq"], probes=False).hashes
        rows.append(BankRow("pdq", hh["pdq"], f"filler-{seed}-{i}"))
    return rows


def free_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


@contextmanager
def running(settings: Settings, live: LiveBanks) -> Iterator[str]:
    """uvicorn serving ``create_app(settings)`` in a thread on a free loopback port; yields the base URL."""
    sock = free_socket()
    config = uvicorn.Config(create_app(settings, live), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        t.join(10)
        sock.close()


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("service-home")
    old = os.environ.get("CLEANSET_HOME")
    os.environ["CLEANSET_HOME"] = str(home)
    sink: list[str] = []
    handler = _ListHandler(sink)
    log = logging.getLogger("cleanset.access")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        listed, other = encode(picture(7, 256)), encode(picture(8, 256))
        BankStore(home).create_from_rows(BANK, bank_rows(listed, 1))
        keys = KeyStore()
        check_key, _ = keys.create("tests", "check")
        admin_key, _ = keys.create("ops", "admin")
        settings = Settings(
            banks=(BANK,), limits=Limits(rate=0, max_body=2_000_000, max_pixels=1_000_000, timeout_s=20.0)
        )
        live = LiveBanks(settings.banks)
        with running(settings, live) as url:
            yield Served(url, home, check_key, admin_key, listed, other, live, sink)
    finally:
        log.removeHandler(handler)
        if old is None:
            os.environ.pop("CLEANSET_HOME", None)
        else:
            os.environ["CLEANSET_HOME"] = old
