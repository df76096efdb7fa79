"""Every endpoint but health needs a key; a key's scope bounds what it may do; a revoked key stops working."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from service_fixtures import BANK, Served

from cleanset.service.keys import KeyStore

CHECK_ENDPOINTS = [
    ("POST", "/v1/check/hashes", {"json": {"hashes": {"md5": "0" * 32}}}),
    ("POST", "/v1/check/url", {"json": {"url": "https://example.org/x"}}),
    ("POST", "/v1/check/text", {"json": {"text": "a cat on a mat"}}),
    ("POST", "/v1/check/image", {"content": b"\x89PNG"}),
    ("GET", "/v1/banks", {}),
    ("GET", "/metrics", {}),
    ("POST", f"/v1/banks/{BANK}/reload", {}),
]


@pytest.mark.parametrize(("method", "path", "kw"), CHECK_ENDPOINTS)
def test_missing_key_is_401(served: Served, method: str, path: str, kw: dict) -> None:
    with served.client() as c:
        r = c.request(method, path, **kw)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "kw"), CHECK_ENDPOINTS)
def test_wrong_key_is_401(served: Served, method: str, path: str, kw: dict) -> None:
    forged = served.check_key[:-4] + ("AAAA" if not served.check_key.endswith("AAAA") else "BBBB")
    for bad in (forged, "cs_00000000_nothing", "not-a-key", "Bearer"):
        with served.client(bad) as c:
            assert c.request(method, path, **kw).status_code == 401, bad


def test_key_in_x_api_key_header_works(served: Served) -> None:
    with served.client() as c:
        r = c.get("/v1/banks", headers={"X-API-Key": served.check_key})
    assert r.status_code == 200


def test_check_scope_cannot_reload(served: Served) -> None:
    with served.client(served.check_key) as c:
        r = c.post(f"/v1/banks/{BANK}/reload")
    assert r.status_code == 403
    assert "admin" in r.json()["detail"]


def test_admin_scope_can_check(served: Served) -> None:
    with served.client(served.admin_key) as c:
        assert c.post("/v1/check/hashes", json={"hashes": {"md5": "0" * 32}}).status_code == 200


def test_health_needs_no_key(served: Served) -> None:
    with served.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        r = c.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_revoked_key_stops_working_on_the_running_server(served: Served) -> None:
    store = KeyStore()
    key, rec = store.create("short-lived", "check")
    time.sleep(KeyStore.RECHECK_S + 0.2)  # the service reads the key file at most once a second
    with served.client(key) as c:
        assert c.get("/v1/banks").status_code == 200
        store.revoke(rec.id)
        time.sleep(KeyStore.RECHECK_S + 0.2)
        assert c.get("/v1/banks").status_code == 401


def test_key_file_holds_digests_only(served: Served) -> None:
    path = KeyStore().path
    text = path.read_text()
    assert served.check_key not in text and served.admin_key not in text
    assert served.check_key[len("cs_12345678_") :] not in text  # not even the secret part
    assert path.stat().st_mode & 0o077 == 0
    assert path.parent.stat().st_mode & 0o077 == 0


def test_keys_made_concurrently_are_all_kept(tmp_path: Path) -> None:
    """Separate stores on one file (as separate `cleanset keys create` processes): none loses another's key."""
    path = tmp_path / "service" / "keys.json"
    made: list[str] = []

    def make(i: int) -> None:
        store = KeyStore(path)
        for j in range(4):
            made.append(store.create(f"k{i}-{j}", "check")[1].id)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.id for r in KeyStore(path).records()) == sorted(made) and len(made) == 24


def test_a_key_file_others_can_write_is_refused(served: Served, tmp_path: Path) -> None:
    from service_fixtures import running

    from cleanset.errors import InputFormatError
    from cleanset.service import Settings
    from cleanset.service.limits import Limits

    path = tmp_path / "service" / "keys.json"
    key, _ = KeyStore(path).create("mine", "check")
    settings = Settings(banks=(BANK,), limits=Limits(rate=0), keys_path=path, stage_imports=False)
    with running(settings, served.live) as url, httpx.Client(base_url=url, headers={"X-API-Key": key}) as c:
        assert c.get("/v1/banks").status_code == 200
        path.chmod(0o620)
        time.sleep(KeyStore.RECHECK_S + 0.2)
        refused = c.get("/v1/banks")
        path.chmod(0o600)
        time.sleep(KeyStore.RECHECK_S + 0.2)
        assert c.get("/v1/banks").status_code == 200
    assert refused.status_code == 503 and str(path) in refused.json()["detail"]
    path.chmod(0o660)
    with pytest.raises(InputFormatError, match="writable by group"):
        KeyStore(path)


def test_unknown_key_ids_do_not_touch_the_key_file(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ``refresh`` reads the file (at most once a second): a flood of unknown keys costs no file access."""
    svc_keys = KeyStore  # the class: every store of the process counts
    loads = [0]
    real = svc_keys._load

    def counting(self: KeyStore) -> None:
        loads[0] += 1
        real(self)

    monkeypatch.setattr(svc_keys, "_load", counting)
    with served.client() as c:
        for i in range(50):
            assert c.get("/v1/banks", headers={"X-API-Key": f"cs_{i:08x}_nothing"}).status_code == 401
    assert loads[0] <= 2
