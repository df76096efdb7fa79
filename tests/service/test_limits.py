"""Body, pixel, batch and rate limits, and the timeout: each refusal is its own status with a clear reason."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image
from service_fixtures import Served, running

from cleanset.service import Settings
from cleanset.service.limits import Limits, RateLimiter


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (90, 140, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_body_over_the_limit_is_413(served: Served) -> None:
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/image", content=b"\xff" * 2_500_000)
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


def test_streamed_body_over_the_limit_is_413(served: Served) -> None:
    """No Content-Length to trust: the limit holds on what arrives."""

    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"\x00" * 100_000

    with served.client(served.check_key) as c:
        r = c.post("/v1/check/image", content=chunks())
    assert r.status_code == 413


def test_too_many_pixels_is_413_before_decoding(served: Served) -> None:
    data = png(1200, 1000)  # 1.2 MP, a few KB: over the 1 MP limit by its header alone
    assert len(data) < 100_000
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/image", content=data)
        ok = c.post("/v1/check/image", content=png(1000, 1000))
    assert r.status_code == 413
    assert "1200x1000" in r.json()["detail"]
    assert ok.status_code == 200 and ok.json()["verdict"] == "keep"


def test_batch_over_the_limit_is_413(served: Served) -> None:
    items = [{"md5": f"{i:032x}"} for i in range(Limits().max_batch + 1)]
    with served.client(served.check_key) as c:
        assert c.post("/v1/check/hashes", json={"items": items}).status_code == 413
        assert c.post("/v1/check/hashes", json={"items": items[:10]}).status_code == 200


@pytest.fixture(scope="module")
def strict(served: Served) -> Iterator[str]:
    """A second server over the same banks with a tight rate and a timeout no image check can meet."""
    settings = Settings(banks=tuple(served.live.current.pinned), limits=Limits(rate=2.0, burst=3, timeout_s=0.0005))
    with running(settings, served.live) as url:
        yield url


def test_rate_limit_is_429_per_key(served: Served, strict: str) -> None:
    import httpx

    body = {"hashes": {"md5": "0" * 32}}
    with httpx.Client(base_url=strict, headers={"Authorization": f"Bearer {served.check_key}"}) as c:
        codes = [c.post("/v1/check/hashes", json=body).status_code for _ in range(6)]
        assert codes[:3] == [200, 200, 200]
        assert 429 in codes[3:]
        r = c.post("/v1/check/hashes", json=body)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
    # another key has its own bucket
    with httpx.Client(base_url=strict, headers={"Authorization": f"Bearer {served.admin_key}"}) as c:
        assert c.get("/v1/banks").status_code == 200


def test_timeout_is_503_never_keep(served: Served, strict: str) -> None:
    import httpx

    with httpx.Client(base_url=strict, headers={"Authorization": f"Bearer {served.admin_key}"}) as c:
        r = c.post("/v1/check/image", content=served.other)
    assert r.status_code == 503
    assert "not checked" in r.json()["detail"]


def test_rate_limiter_refills_at_its_rate() -> None:
    rl = RateLimiter(rate=10.0, burst=2)
    assert rl.allow("k", now=0.0) == 0.0
    assert rl.allow("k", now=0.0) == 0.0
    wait = rl.allow("k", now=0.0)
    assert wait == pytest.approx(0.1)
    assert rl.allow("k", now=0.05) > 0  # half a token is not a request
    assert rl.allow("k", now=0.2) == 0.0
    assert RateLimiter(rate=0, burst=1).allow("k") == 0.0  # 0: unlimited
