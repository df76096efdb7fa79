"""No answer and no access-log line holds a list value: not for a match, a no-match, an error or a listing."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image
from service_fixtures import BANK, LISTED_URL, Served, running

from cleanset.api import hash_bytes
from cleanset.service import Settings
from cleanset.service.limits import Limits


def _texts(served: Served, url: str | None = None) -> list[str]:
    h = hash_bytes(served.listed, probes=False).hashes
    png = io.BytesIO()
    Image.open(io.BytesIO(served.listed)).save(png, "PNG")
    out = []
    with httpx.Client(base_url=url or served.url, headers=_auth(served.check_key), timeout=30) as c:
        calls = [
            c.post("/v1/check/image", content=served.listed),
            c.post("/v1/check/image", content=png.getvalue()),
            c.post("/v1/check/image", content=served.other),
            c.post("/v1/check/image", files={"file": ("a.jpg", served.listed, "image/jpeg")}),
            c.post("/v1/check/hashes", json={"hashes": {"md5": h["md5"], "pdq": h["pdq"], "sha256": h["sha256"]}}),
            c.post("/v1/check/hashes", json={"items": [{"pdq": h["pdq"]}, {"md5": h["md5"]}]}),
            # errors: malformed, wrong types, loosening without admin, all carrying list values as input
            c.post("/v1/check/hashes", json={"hashes": {"pdq": h["pdq"] + "00"}}),
            c.post("/v1/check/hashes", json={"hashes": [h["pdq"]]}),
            c.post("/v1/check/hashes", json={"hashes": {"pdq": h["pdq"]}, "thresholds": {"standin": {"pdq": 99}}}),
            c.post("/v1/check/hashes", json={"items": h["md5"]}),
            c.post("/v1/check/url", json={"url": LISTED_URL}),
            c.post("/v1/check/url", json={"url": h["md5"]}),
            c.post("/v1/check/text", json={"text": h["pdq"]}),
            c.get("/v1/banks"),
            c.get("/metrics"),
            c.get("/openapi.json"),
            # list values in the path: a 404, and a value where a bank name goes
            c.get(f"/v1/check/{h['pdq']}"),
            c.post(f"/v1/banks/{h['md5']}/reload"),
            c.get(f"/{h['sha256']}/x", params={"q": h["pdq"]}),
        ]
        out += [r.text for r in calls]
        assert {r.status_code for r in calls} >= {200, 403, 422}
    with httpx.Client(base_url=url or served.url, headers=_auth(served.admin_key), timeout=30) as c:
        out.append(c.post("/v1/banks/standin/reload").text)
        out.append(c.post(f"/v1/banks/{h['md5']}/reload").text)
        out.append(c.get("/metrics").text)  # after the paths above: routes only, never a path's contents
    return out


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def routed(served: Served) -> Iterator[str]:
    """The fast path off: hash lookups through FastAPI, whose errors must hold no value either."""
    limits = Limits(rate=0, max_body=2_000_000, max_pixels=1_000_000, timeout_s=20.0)
    with running(Settings(banks=(BANK,), limits=limits, fast_path=False, stage_imports=False), served.live) as url:
        yield url


@pytest.mark.parametrize("fast", [True, False])
def test_no_list_value_in_any_answer_or_log_line(served: Served, routed: str, fast: bool) -> None:
    values = served.bank_values()
    assert len(values) >= 9
    n = len(served.log)
    answers = _texts(served, None if fast else routed)
    time.sleep(0.3)  # each line is written just after its answer is sent
    log = list(served.log)[n:]
    assert len(log) >= len(answers) - 1  # one answer is the metrics text
    for text in [*answers, *log]:
        low = text.lower()
        leaked = [v for v in values if v in low]
        assert not leaked, f"list value in: {text[:200]}"


def test_access_log_lines_are_structured(served: Served) -> None:
    import json

    n = len(served.log)
    with served.client(served.check_key) as c:
        c.post("/v1/check/image", content=served.listed)
    deadline = time.monotonic() + 5
    while len(served.log) == n:  # the line is written just after the answer is sent
        assert time.monotonic() < deadline, "no access-log line for the request"
        time.sleep(0.01)
    rec = json.loads(served.log[n])
    assert rec["path"] == "/v1/check/image" and rec["status"] == 200 and rec["verdict"] == "remove"
    assert rec["matches"] >= 3 and rec["key"] and len(rec["key"]) == 8
    assert set(rec) == {"ts", "id", "method", "path", "status", "ms", "key", "bytes_in", "verdict", "matches", "client"}
