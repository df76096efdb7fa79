"""The guard in front of every route: the key before the body, the body limit before FastAPI parses anything, and
metrics and the access log named by route, never by what a caller put in the path."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from service_fixtures import BANK, Served

from cleanset.service.app import route_of


def raw_request(url: str, head: str, timeout: float = 3.0) -> str:
    """Send only a request's head (a large body declared, none sent) and read the status line: a server that
    reads the body before answering never answers within ``timeout``."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head.encode("latin-1"))
        try:
            return s.recv(4096).decode("latin-1").split("\r\n", 1)[0]
        except TimeoutError:
            return "no answer"


@pytest.mark.parametrize("path", ["/v1/check/url", "/v1/check/text", "/v1/check/hashes", "/v1/check/image"])
def test_no_key_is_401_before_the_body_is_read(served: Served, path: str) -> None:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
    assert raw_request(served.url, head) == "HTTP/1.1 401 Unauthorized"


def test_declared_body_over_the_limit_is_413_before_it_is_read(served: Served) -> None:
    for path in ("/v1/check/url", "/v1/check/text", "/v1/check/hashes"):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {served.check_key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
        )
        assert raw_request(served.url, head) == "HTTP/1.1 413 Request Entity Too Large", path


def test_malformed_json_without_a_key_is_401_not_422(served: Served) -> None:
    with served.client() as c:
        for path in ("/v1/check/text", "/v1/check/url", "/v1/check/hashes"):
            r = c.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
            assert r.status_code == 401, path


@pytest.mark.parametrize("path", ["/v1/check/url", "/v1/check/text"])
def test_streamed_json_over_the_limit_is_413(served: Served, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(25):
            yield b"a" * 100_000

    with served.client(served.check_key) as c:
        r = c.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_unknown_paths_need_a_key_too(served: Served) -> None:
    with served.client() as c:
        assert c.get("/nothing-here").status_code == 401
    with served.client(served.check_key) as c:
        assert c.get("/nothing-here").status_code == 404


def test_metric_labels_come_from_the_route_not_the_path(served: Served) -> None:
    forged = "/zz%22%7D%201%0Acleanset_bank_version%7Bbank%3D%22standin%22%7D%20999%0A%23"
    hexes = [f"{i:064x}" for i in range(1, 4)]
    n = len(served.log)
    with served.client() as c:
        assert c.get(forged).status_code == 401
        for h in hexes:
            c.get(f"/rand/{h}")
    with served.client(served.check_key) as c:
        for h in hexes:
            c.get(f"/v1/check/{h}")
        text = c.get("/metrics").text
    lines = text.splitlines()
    assert not [line for line in lines if "999" in line.split()[-1:]]
    assert [line for line in lines if line.startswith("cleanset_bank_version")] == [
        line for line in lines if line.startswith(f'cleanset_bank_version{{bank="{BANK}"}}')
    ]
    assert not any(h in text for h in hexes) and "zz" not in text and "rand" not in text
    assert 'route="other"' in text
    logged = served.log[n:]
    assert logged and not any(h in line or "zz" in line for h in hexes for line in logged)


def test_route_of_is_a_fixed_list() -> None:
    assert route_of("/v1/banks/standin/reload") == "/v1/banks/{name}/reload"
    assert route_of("/v1/banks/a/b/reload") == "other"
    assert route_of("/v1/check/hashes/") == "other"
    assert route_of("/healthz") == "/healthz"


def test_access_log_counts_streamed_bytes(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"url": "https://example.org/'
        yield b"x" * 5000
        yield b'"}'

    n = len(served.log)
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/url", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200

    deadline = time.monotonic() + 5
    while len(served.log) == n and time.monotonic() < deadline:
        time.sleep(0.01)
    rec = json.loads(served.log[-1])
    assert rec["path"] == "/v1/check/url" and rec["bytes_in"] == 5000 + len(b'{"url": "https://example.org/"}')


def test_health_needs_no_key_and_reads_no_body(served: Served) -> None:
    assert httpx.get(f"{served.url}/healthz").status_code == 200
    assert httpx.get(f"{served.url}/readyz").status_code == 200
