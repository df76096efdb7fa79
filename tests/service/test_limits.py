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
    """A second server over the same banks with a tight rate."""
    settings = Settings(banks=tuple(served.live.current.pinned), limits=Limits(rate=2.0, burst=3))
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


def test_multi_frame_image_is_held_to_the_pixel_limit_on_every_frame(served: Served) -> None:
    """A small first frame in front of large ones: the header check sees 10x10, the decoder sees each frame and
    refuses the first over the limit, so the item fails closed (never keep) and no large frame is decoded."""
    buf = io.BytesIO()
    small, big = Image.new("RGB", (10, 10), (1, 2, 3)), Image.new("RGB", (1100, 1000), (5, 5, 5))
    small.save(buf, "TIFF", save_all=True, append_images=[big, big], compression="tiff_deflate")
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/image", content=buf.getvalue())
    assert r.status_code == 200
    d = r.json()
    assert d["verdict"] is None and d["failure"]["code"] == "decode"
    assert "1100x1000" in d["failure"]["detail"] and "1000000" in d["failure"]["detail"]


def test_frames_past_the_cap_are_not_decoded_and_not_kept(served: Served) -> None:
    frames = [Image.new("RGB", (64, 64), (i * 20, 90, 200 - i * 20)) for i in range(10)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    with served.client(served.check_key) as c:
        d = c.post("/v1/check/image", content=buf.getvalue()).json()
    assert Limits().max_frames < 10
    assert d["verdict"] == "review" and d["scores"]["unscreened_frames"] == 10 - Limits().max_frames


@pytest.fixture
def slow_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Image checks that take 1 s each; yields the most that ever ran at once."""
    import threading
    import time

    from cleanset import api as cs_api

    real = cs_api.check_bytes
    lock = threading.Lock()
    running, most = [0], [0]

    def slow(*a: object, **kw: object) -> object:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(1.0)
            return real(*a, **kw)  # type: ignore[arg-type]
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(cs_api, "check_bytes", slow)
    yield most
    deadline = time.monotonic() + 10
    while running[0] and time.monotonic() < deadline:  # let the last one finish before the real one is back
        time.sleep(0.05)


def test_timeout_is_503_and_timed_out_work_keeps_its_slot(served: Served, slow_checks: list[int]) -> None:
    """A check past the timeout is 503 (never keep); its thread runs on, and holds its slot until it is done, so
    further checks are refused as busy at once instead of piling up more threads beyond the slots."""
    import threading
    import time

    import httpx

    limits = Limits(rate=0, timeout_s=0.3, max_checks=1, queue_s=0.2, max_waiting=2)
    settings = Settings(banks=tuple(served.live.current.pinned), limits=limits, stage_imports=False)
    answers: list[tuple[int, float]] = []
    with running(settings, served.live) as url:
        auth = {"Authorization": f"Bearer {served.check_key}"}
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            r = c.post("/v1/check/image", content=served.other)
            assert r.status_code == 503 and "not checked" in r.json()["detail"]

            def ask() -> None:
                t = time.monotonic()
                code = httpx.post(f"{url}/v1/check/image", content=served.other, headers=auth, timeout=30).status_code
                answers.append((code, time.monotonic() - t))

            threads = [threading.Thread(target=ask) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert [code for code, _ in answers] == [503] * 6
    assert max(took for _, took in answers) < 0.9  # refused while the first check still runs, not after it
    assert slow_checks[0] == 1  # never more checks running than slots, timed-out ones included


def test_rate_limiter_refills_at_its_rate() -> None:
    rl = RateLimiter(rate=10.0, burst=2)
    assert rl.allow("k", now=0.0) == 0.0
    assert rl.allow("k", now=0.0) == 0.0
    wait = rl.allow("k", now=0.0)
    assert wait == pytest.approx(0.1)
    assert rl.allow("k", now=0.05) > 0  # half a token is not a request
    assert rl.allow("k", now=0.2) == 0.0
    assert RateLimiter(rate=0, burst=1).allow("k") == 0.0  # 0: unlimited
