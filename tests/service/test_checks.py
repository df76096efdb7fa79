"""The check endpoints answer exactly as the Python API does, a match and a no-match in the same shape."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from service_fixtures import BANK, LISTED_URL, Served

from cleanset import api
from cleanset.signals import get_signal

ANSWER_KEYS = set(api.Check(None, (), ()).to_dict()) | {"generation"}
MATCH_KEYS = {"bank", "version", "entry_id", "signal", "probe", "distance"}


def post_image(served: Served, data: bytes, key: str | None = None, **kw: object) -> dict:
    with served.client(key or served.check_key) as c:
        r = c.post("/v1/check/image", content=data, **kw)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    return r.json()


def test_listed_image_is_removed_with_named_matches(served: Served) -> None:
    a = post_image(served, served.listed, headers={"Content-Type": "image/jpeg"})
    assert a["verdict"] == "remove"
    assert {m["entry_id"] for m in a["matches"]} >= {"e-md5", "e-sha256", "e-pdq"}
    for m in a["matches"]:
        assert set(m) == MATCH_KEYS
        assert m["bank"] == BANK and m["version"] >= 1
    assert a["reasons"] and a["failure"] is None


def test_match_and_no_match_answer_in_the_same_shape(served: Served) -> None:
    hit, miss = post_image(served, served.listed), post_image(served, served.other)
    assert set(hit) == set(miss) == ANSWER_KEYS
    assert miss["verdict"] == "keep" and miss["matches"] == []


def test_service_decides_as_the_python_api(served: Served) -> None:
    banks = served.live.current.banks
    for data in (served.listed, served.other, b"not an image at all"):
        mine = api.check_bytes(data, banks).to_dict()
        theirs = post_image(served, data)
        theirs.pop("generation")
        assert theirs == mine


def test_multipart_upload(served: Served) -> None:
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/image", files={"file": ("x.jpg", served.listed, "image/jpeg")})
        bad = c.post("/v1/check/image", files={"other": ("x.jpg", served.listed, "image/jpeg")})
    assert r.status_code == 200 and r.json()["verdict"] == "remove"
    assert bad.status_code == 422 and "file" in bad.json()["detail"]


def test_undecodable_bytes_fail_closed(served: Served) -> None:
    a = post_image(served, b"\x00\x01 definitely not an image")
    assert a["verdict"] is None
    assert a["failure"]["code"] == "decode"


def test_empty_body_is_422(served: Served) -> None:
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/image", content=b"")
    assert r.status_code == 422


def test_hashes_single_and_batch(served: Served) -> None:
    h = api.hash_bytes(served.listed, probes=False).hashes
    with served.client(served.check_key) as c:
        one = c.post("/v1/check/hashes", json={"hashes": {"pdq": h["pdq"]}}).json()
        batch = c.post("/v1/check/hashes", json={"items": [{"md5": h["md5"]}, {"md5": "f" * 32}]}).json()
    assert one["verdict"] == "remove" and one["matches"][0]["entry_id"] == "e-pdq"
    assert [r["verdict"] for r in batch["results"]] == ["remove", "keep"]
    assert batch["results"][0]["matches"][0]["entry_id"] == "e-md5"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"hashes": {"pdq": "zz"}}, "pdq"),
        ({"hashes": {"md5": "0" * 31}}, "md5"),
        ({"hashes": {"nosuchsignal": "00"}}, "nosuchsignal"),
        ({"hashes": {}}, "hashes"),
        ({}, "exactly one"),
        ({"hashes": {"md5": "0" * 32}, "items": []}, "exactly one"),
        ({"items": [{"md5": "0" * 32}, {}]}, "items[1]"),
    ],
)
def test_bad_hashes_are_422_naming_the_field(served: Served, body: dict, needle: str) -> None:
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/hashes", json=body)
    assert r.status_code == 422
    assert needle in r.text


def test_url(served: Served) -> None:
    with served.client(served.check_key) as c:
        hit = c.post("/v1/check/url", json={"url": LISTED_URL}).json()
        miss = c.post("/v1/check/url", json={"url": "https://example.org/fine.jpg"}).json()
    assert hit["verdict"] == "remove" and hit["matches"][0]["entry_id"] == "e-url"
    assert miss["verdict"] == "keep"


def _near(served: Served) -> tuple[str, int]:
    """A PDQ value a few bits from the listed one, and its distance."""
    h = api.hash_bytes(served.listed, probes=False).hashes["pdq"]
    b = bytearray(bytes.fromhex(h))
    b[0] ^= 0b1111
    b[5] ^= 0b11
    return bytes(b).hex(), 6


def test_a_caller_may_tighten_a_threshold(served: Served) -> None:
    near, d = _near(served)
    with served.client(served.check_key) as c:
        as_loaded = c.post("/v1/check/hashes", json={"hashes": {"pdq": near}}).json()
        tight = c.post("/v1/check/hashes", json={"hashes": {"pdq": near}, "thresholds": {BANK: {"pdq": d - 1}}}).json()
        exact = c.post("/v1/check/hashes", json={"hashes": {"pdq": near}, "thresholds": {BANK: {"pdq": d}}}).json()
    assert as_loaded["verdict"] == "remove" and as_loaded["matches"][0]["distance"] == d
    assert tight["verdict"] == "keep" and tight["matches"] == []
    assert exact["verdict"] == "remove"
    # the view did not change the loaded banks
    assert served.live.current.threshold(BANK, "pdq") == get_signal("pdq").default_threshold


def test_only_admin_may_loosen_a_threshold_and_only_so_far(served: Served) -> None:
    pdq = api.hash_bytes(served.listed, probes=False).hashes["pdq"]
    near = f"{int(pdq, 16) ^ ((1 << 40) - 1):064x}"  # 40 bits off: past the bank's 31, within twice that
    have = served.live.current.threshold(BANK, "pdq")
    assert have is not None and have < 40
    loose = {"hashes": {"pdq": near}, "thresholds": {BANK: {"pdq": 2 * have}}}
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/hashes", json=loose)
        assert c.post("/v1/check/hashes", json={"hashes": {"pdq": near}}).json()["verdict"] == "keep"
    assert r.status_code == 403 and "looser" in r.json()["detail"]
    with served.client(served.admin_key) as c:
        r = c.post("/v1/check/hashes", json=loose)
        # past the cap, even for an admin: at 256 bits every entry would come back with its distance
        over = [
            c.post("/v1/check/hashes", json={"hashes": {"pdq": near}, "thresholds": {BANK: {"pdq": bits}}})
            for bits in (2 * have + 1, 256, 2**62)
        ]
    assert r.status_code == 200
    assert r.json()["verdict"] == "remove" and r.json()["matches"][0]["distance"] == 40
    assert [o.status_code for o in over] == [422, 422, 422]
    assert all("cap" in o.json()["detail"] for o in over)


def test_threshold_on_an_image_check_and_unknown_bank(served: Served) -> None:
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/image", content=served.listed, params={"thresholds": '{"standin": {"pdq": 0}}'})
        unknown = c.post("/v1/check/hashes", json={"hashes": {"md5": "0" * 32}, "thresholds": {"nobank": {"pdq": 1}}})
        badjson = c.post("/v1/check/image", content=served.listed, params={"thresholds": "{not json"})
    assert r.status_code == 200 and r.json()["verdict"] == "remove"
    assert unknown.status_code == 422 and "nobank" in unknown.json()["detail"]
    assert badjson.status_code == 422 and "thresholds" in badjson.json()["detail"]


def test_text_endpoint_answers_as_the_python_api(served: Served) -> None:
    texts = ["a watercolour of a lighthouse at dusk", "", "a red bicycle by the lake"]
    with served.client(served.check_key) as c:
        for text in texts:
            for policy in ("default", "strict"):
                r = c.post("/v1/check/text", json={"text": text, "policy": policy})
                assert r.status_code == 200, r.text
                got = r.json()
                got.pop("generation")
                assert got == api.check_text(text, None, policy).to_dict()
        assert c.post("/v1/check/text", json={"text": "x", "policy": "/etc/passwd"}).status_code == 422
        assert c.post("/v1/check/text", json={"text": "x", "lists": ["no-such-list"]}).status_code == 422


def test_banks_lists_versions_sizes_thresholds(served: Served) -> None:
    with served.client(served.check_key) as c:
        d = c.get("/v1/banks").json()
    (b,) = [b for b in d["banks"] if b["name"] == BANK]
    assert b["entry_count"] == sum(b["counts"].values()) >= 9
    assert b["thresholds"]["pdq"] == get_signal("pdq").default_threshold
    assert b["version"] >= 1 and b["digest"].startswith("sha256:")


def test_metrics_count_requests_verdicts_and_banks(served: Served) -> None:
    post_image(served, served.other)
    with served.client(served.check_key) as c:
        text = c.get("/metrics").text
    assert 'cleanset_verdicts_total{route="image",verdict="keep"}' in text
    assert 'cleanset_requests_total{route="/v1/check/image",status="200"}' in text
    assert f'cleanset_bank_version{{bank="{BANK}"}}' in text
    assert 'cleanset_request_seconds_bucket{route="/v1/check/image",le="+Inf"}' in text


def test_openapi_is_published(served: Served) -> None:
    with served.client() as c:  # published to key holders only, as every route but health
        assert c.get("/openapi.json").status_code == 401
        assert c.get("/docs").status_code == 401
    with served.client(served.check_key) as c:
        spec = c.get("/openapi.json").json()
        docs = c.get("/docs")
    paths = set(spec["paths"])
    assert {
        "/v1/check/image",
        "/v1/check/hashes",
        "/v1/check/url",
        "/v1/check/text",
        "/v1/banks",
        "/v1/banks/{name}/reload",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    assert "multipart/form-data" in spec["paths"]["/v1/check/image"]["post"]["requestBody"]["content"]
    assert spec["components"]["securitySchemes"]
    assert docs.status_code == 200


def test_png_and_jpeg_of_one_picture_agree_on_pdq(served: Served) -> None:
    """A re-encoded listed picture is still found by its PDQ (not only its file digest)."""
    img = Image.open(io.BytesIO(served.listed))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    a = post_image(served, buf.getvalue())
    assert a["verdict"] == "remove"
    assert "e-pdq" in {m["entry_id"] for m in a["matches"]}
    assert "e-md5" not in {m["entry_id"] for m in a["matches"]}
