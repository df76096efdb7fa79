"""The client (sync and async) and the gate, against the running server and in-process."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image
from service_fixtures import BANK, LISTED_URL, Served

from cleanset import api
from cleanset.client import AsyncClient, Client, ServiceError
from cleanset.gate import Blocked, Gate, LocalChecker, ServiceChecker, Verdict

ROOT = Path(__file__).resolve().parents[2]


def test_sync_client(served: Served) -> None:
    h = api.hash_bytes(served.listed, probes=False).hashes
    with Client(served.url, served.check_key) as c:
        hit = c.check_image(served.listed)
        assert hit.verdict == "remove" and hit.blocked
        assert {m["entry_id"] for m in hit.matches} >= {"e-md5", "e-pdq"}
        assert c.check_image(served.other).verdict == "keep"
        assert c.check_hashes({"md5": h["md5"]}).matches[0]["entry_id"] == "e-md5"
        assert [r.verdict for r in c.check_many([{"md5": h["md5"]}, {"md5": "0" * 32}])] == ["remove", "keep"]
        assert c.check_url(LISTED_URL).verdict == "remove"
        assert c.check_text("a lighthouse at dusk").verdict == api.check_text("a lighthouse at dusk").verdict
        assert [b["name"] for b in c.banks()] == [BANK]
        # a tighter threshold is honoured, a looser one refused for a check key
        assert c.check_image(served.listed, thresholds={BANK: {"pdq": 0}}).verdict == "remove"
        with pytest.raises(ServiceError) as e:
            c.check_hashes({"pdq": h["pdq"]}, thresholds={BANK: {"pdq": 200}})
        assert e.value.status == 403
        with pytest.raises(ServiceError) as e:
            c.reload(BANK)
        assert e.value.status == 403


def test_client_errors_are_raised_never_verdicts(served: Served) -> None:
    with Client(served.url, "cs_deadbeef_wrong") as c, pytest.raises(ServiceError) as e:
        c.check_image(served.other)
    assert e.value.status == 401
    with Client("http://127.0.0.1:9", served.check_key, timeout=2) as c, pytest.raises(ServiceError) as e:
        c.check_hashes({"md5": "0" * 32})
    assert e.value.status == 0


def test_async_client(served: Served) -> None:
    async def go() -> list[str | None]:
        async with AsyncClient(served.url, served.check_key) as c:
            answers = await asyncio.gather(
                c.check_image(served.listed), c.check_image(served.other), c.check_url(LISTED_URL)
            )
            assert (await c.banks())[0]["name"] == BANK
            with pytest.raises(ServiceError):
                await c.reload(BANK)
            return [a.verdict for a in answers]

    assert asyncio.run(go()) == ["remove", "keep", "remove"]


def _draw(prompt: str, seed: int = 0) -> Image.Image:
    from pictures import picture

    return picture(seed, 256)


def _listed_seed_checker(tmp_path: Path) -> LocalChecker:
    from pictures import picture

    img = picture(5, 256)
    data = Gate(lambda p: img, LocalChecker(api.banks_from_rows(tmp_path / "a", "none", [("md5", "0" * 32, "x")])))(
        "p"
    )[0]
    rows = [("md5", hashlib.md5(data).hexdigest(), "listed-md5")]
    return LocalChecker(api.banks_from_rows(tmp_path / "b", "standin", rows))


def test_gate_blocks_what_the_library_says_to_remove(tmp_path: Path) -> None:
    gate = Gate(_draw, _listed_seed_checker(tmp_path))
    assert len(gate("a field", seed=1)) == 1
    with pytest.raises(Blocked) as e:
        gate("a field", seed=5)
    assert e.value.what == "image[0]" and "listed-md5" in str(e.value)


class _Says:
    """A checker that answers as told, to pin the gate's rule: anything but keep blocks."""

    def __init__(self, image: Verdict, prompt: Verdict) -> None:
        self.image, self.prompt = image, prompt
        self.asked: list[str] = []

    def check_image(self, data: bytes) -> Verdict:
        self.asked.append("image")
        return self.image

    def check_prompt(self, text: str) -> Verdict:
        self.asked.append("prompt")
        return self.prompt


KEEP = Verdict("keep", ())


@pytest.mark.parametrize(
    "bad",
    [Verdict("remove", ("listed",)), Verdict("review", ("score",)), Verdict(None, (), "decode: broken")],
)
def test_gate_blocks_remove_review_and_unchecked(bad: Verdict) -> None:
    with pytest.raises(Blocked, match="image"):
        Gate(_draw, _Says(bad, KEEP))("x", seed=1)
    calls: list[str] = []
    checker = _Says(KEEP, bad)
    with pytest.raises(Blocked, match="prompt"):
        Gate(lambda p, **k: calls.append(p), checker)("x")
    assert calls == [] and checker.asked == ["prompt"]  # nothing was generated


def test_gate_checks_every_image_of_a_batch() -> None:
    checker = _Says(KEEP, KEEP)
    out = Gate(lambda p: [_draw(p, 1), _draw(p, 2), b"\x89PNG raw"], checker)("x")
    assert len(out) == 3 and checker.asked == ["prompt", "image", "image", "image"]


def test_gate_over_the_service(served: Served) -> None:
    from pictures import encode, picture

    listed = served.listed
    with Client(served.url, served.check_key) as c:
        gate = Gate(lambda p, which: listed if which == "listed" else encode(picture(8, 256)), ServiceChecker(c))
        assert gate("a meadow", which="other")
        with pytest.raises(Blocked) as e:
            gate("a meadow", which="listed")
    assert "standin" in str(e.value)


def test_gate_fails_closed_when_the_service_is_unreachable() -> None:
    with Client("http://127.0.0.1:9", "cs_x", timeout=2) as c, pytest.raises(Blocked) as e:
        Gate(_draw, ServiceChecker(c))("a meadow", seed=1)
    assert e.value.what == "prompt" and "not checked" in str(e.value)


def _answering(status: int, body: bytes, ctype: str = "application/json") -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": ctype}
        if 300 <= status < 400:
            headers["location"] = "https://login.example.org/"
        return httpx.Response(status, content=body, headers=headers)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "body", "ctype"),
    [
        (302, b"", "text/html"),  # a proxy's login redirect
        (200, b"<html>sign in</html>", "text/html"),  # a captive portal's page
        (200, b'{"status": "ok"}', "application/json"),  # JSON without a verdict
        (200, b'{"verdict": "fine", "matches": [], "reasons": []}', "application/json"),  # a verdict unknown here
        (200, b'["keep"]', "application/json"),
        (204, b"", "application/json"),
    ],
)
def test_unexpected_answers_are_service_errors_and_the_gate_blocks(status: int, body: bytes, ctype: str) -> None:
    with Client("http://cleanset.invalid", "cs_x", transport=_answering(status, body, ctype)) as c:
        with pytest.raises(ServiceError):
            c.check_image(b"\x89PNG")
        with pytest.raises(ServiceError):
            c.check_many([{"md5": "0" * 32}])
        with pytest.raises(Blocked) as e:
            Gate(_draw, ServiceChecker(c))("a meadow", seed=1)
    assert e.value.verdict.verdict is None


def test_a_bug_in_the_checker_blocks_not_escapes(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    with Client(served.url, served.check_key) as c:
        monkeypatch.setattr(c, "check_text", lambda text: 1 / 0)
        with pytest.raises(Blocked) as e:
            Gate(_draw, ServiceChecker(c))("a meadow", seed=1)
    assert "ZeroDivisionError" in str(e.value)


def test_example_runs_and_blocks_the_listed_picture(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("gate_example", ROOT / "examples" / "gate_example.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gate_example"] = mod
    spec.loader.exec_module(mod)
    assert mod.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("published") == 3
    assert f"seed {mod.LISTED_SEED}: blocked image[0]: remove" in out
