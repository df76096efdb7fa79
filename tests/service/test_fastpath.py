"""The plain-ASGI hash lookup answers exactly as the FastAPI route it stands in front of."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from service_fixtures import BANK, Served, running

from cleanset.api import hash_bytes
from cleanset.service import Settings
from cleanset.service.limits import Limits


@pytest.fixture(scope="module")
def routed(served: Served) -> Iterator[str]:
    """The same banks served with the fast path off: /v1/check/hashes goes through FastAPI."""
    settings = Settings(banks=(BANK,), limits=Limits(rate=0), fast_path=False)
    with running(settings, served.live) as url:
        yield url


def bodies(served: Served) -> list[object]:
    h = hash_bytes(served.listed, probes=False).hashes
    return [
        {"hashes": {"md5": h["md5"]}},
        {"hashes": {"pdq": h["pdq"], "sha256": h["sha256"]}},
        {"hashes": {"pdq": "f" * 64}},
        {"items": [{"md5": h["md5"]}, {"pdq": h["pdq"]}, {"md5": "0" * 32}]},
        {"hashes": {"pdq": h["pdq"]}, "thresholds": {BANK: {"pdq": 0}}},
        {"hashes": {"pdq": h["pdq"]}, "thresholds": {BANK: {"pdq": 99}}},
        {"hashes": {"pdq": h["pdq"]}, "thresholds": {"elsewhere": {"pdq": 1}}},
        {"hashes": {"pdq": "xyz"}},
        {"hashes": {}},
        {"items": [{"md5": h["md5"]}, {}]},
        {},
        {"hashes": {"md5": h["md5"]}, "items": []},
    ]


def test_fast_path_and_route_agree(served: Served, routed: str) -> None:
    auth = {"Authorization": f"Bearer {served.check_key}"}
    with httpx.Client(headers=auth) as c:
        for body in bodies(served):
            fast = c.post(f"{served.url}/v1/check/hashes", json=body)
            slow = c.post(f"{routed}/v1/check/hashes", json=body)
            assert fast.status_code == slow.status_code, body
            assert fast.json() == slow.json(), body
            assert fast.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not JSON"),
        (b'["a list"]', "JSON object"),
        (b'{"items": {"md5": "x"}}', "items"),
        (b'{"hashes": {"md5": 5}}', "hashes"),
        (b'{"hashes": {"md5": "' + b"0" * 32 + b'"}, "thresholds": {"standin": {"pdq": "7"}}}', "thresholds"),
    ],
)
def test_fast_path_names_what_is_wrong(served: Served, raw: bytes, needle: str) -> None:
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/hashes", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_fast_path_refuses_like_the_route(served: Served, routed: str) -> None:
    for url in (served.url, routed):
        assert httpx.post(f"{url}/v1/check/hashes", json={"hashes": {"md5": "0" * 32}}).status_code == 401
        r = httpx.post(f"{url}/v1/check/hashes", json={}, headers={"X-API-Key": served.check_key})
        assert r.status_code == 422
        big = httpx.post(
            f"{url}/v1/check/hashes",
            content=b" " * 2_500_000,
            headers={"Authorization": f"Bearer {served.check_key}"},
        )
        assert big.status_code in (413, 422)
    big = httpx.post(f"{served.url}/v1/check/hashes", content=b" " * 2_500_000, headers={"X-API-Key": served.check_key})
    assert big.status_code == 413
