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
    limits = Limits(rate=0, max_body=2_000_000, max_pixels=1_000_000, timeout_s=20.0)  # as the served one's
    settings = Settings(banks=(BANK,), limits=limits, fast_path=False)
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
    answers = []
    for url in (served.url, routed):
        assert httpx.post(f"{url}/v1/check/hashes", json={"hashes": {"md5": "0" * 32}}).status_code == 401
        r = httpx.post(f"{url}/v1/check/hashes", json={}, headers={"X-API-Key": served.check_key})
        assert r.status_code == 422
        big = httpx.post(
            f"{url}/v1/check/hashes",
            content=b" " * 2_500_000,
            headers={"Authorization": f"Bearer {served.check_key}"},
        )
        assert big.status_code == 413, url
        answers.append(big.json())
    assert answers[0] == answers[1]


def _two_keys(first: str, second: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")]


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (b'{"hashes": {"pdq": "' + b"f" * 64 + b'"}, "thresholds": {"standin": {"pdq": "0"}}}', None),
        (b'{"hashes": {"md5": "' + b"0" * 32 + b'"}}', [("Content-Type", "text/plain")]),
        (b'{"hashes": {"md5": "' + b"0" * 32 + b'"}}', [("Content-Type", "application/json; charset=utf-8")]),
        (b'{"hashes": {"md5": "' + b"0" * 32 + b'"}}', "check-then-bad"),
        (b'{"hashes": {"md5": "' + b"0" * 32 + b'"}}', "bad-then-check"),
        (b'{"hashes": {"md5": "' + b"0" * 32 + b'"}, "thresholds": {"standin": {"pdq": 1e3}}}', None),
        (b"", None),
    ],
)
def test_fast_path_and_route_agree_on_edge_cases(served: Served, routed: str, raw: bytes, headers: object) -> None:
    """The same status and the same body from both, whatever the body, its type or the headers' order."""
    if headers == "check-then-bad":
        hs = _two_keys(served.check_key, "cs_00000000_nothing")
    elif headers == "bad-then-check":
        hs = _two_keys("cs_00000000_nothing", served.check_key)
    else:
        hs = [("Authorization", f"Bearer {served.check_key}"), *(headers or [("Content-Type", "application/json")])]
    got = []
    for url in (served.url, routed):
        r = httpx.post(f"{url}/v1/check/hashes", content=raw, headers=hs)  # type: ignore[arg-type]
        got.append((r.status_code, r.json()))
    assert got[0] == got[1]
    if headers == "check-then-bad":
        assert got[0][0] == 200  # the first Authorization header counts, on both
    if headers == "bad-then-check":
        assert got[0][0] == 401
    if headers == [("Content-Type", "text/plain")]:
        assert got[0][0] == 415
