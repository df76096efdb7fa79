"""Reloading while requests are in flight: none fails, none sees half an index, and the old index is freed."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import httpx
from service_fixtures import BANK, Served, bank_rows

from cleanset.api import hash_bytes
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from pictures import encode, picture


def test_reload_under_load(served: Served) -> None:
    h = hash_bytes(served.listed, probes=False).hashes
    newcomers = [hash_bytes(encode(picture(900 + i)), ["pdq"], probes=False).hashes["pdq"] for i in range(2)]
    body = {"items": [{"md5": h["md5"]}, {"pdq": newcomers[0]}, {"pdq": newcomers[1]}]}
    start = served.live.current
    old = weakref.ref(start.banks.matcher)
    first_version = start.banks.snapshots[0].version
    del start

    answers: list[tuple[int, dict]] = []
    stop = threading.Event()
    failures: list[str] = []

    def hammer() -> None:
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.check_key}"}) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/check/hashes", json=body)
                    answers.append((r.status_code, r.json()))
                except httpx.HTTPError as e:
                    failures.append(repr(e))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    store = BankStore(served.home)
    rows = bank_rows(served.listed, 1)
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.admin_key}"}) as admin:
        # version +1 adds the first newcomer, version +2 the second: each is whole or not there
        for i in range(2):
            rows = [*rows, BankRow("pdq", newcomers[i], f"new-{i}")]
            store.create_from_rows(BANK, rows)
            r = admin.post(f"/v1/banks/{BANK}/reload")
            assert r.status_code == 200, r.text
            assert r.json()["banks"][0]["version"] == first_version + 1 + i
            n = len(answers)
            deadline = time.monotonic() + 30
            while len(answers) < n + 20:  # let requests run on the new set too
                assert time.monotonic() < deadline and any(t.is_alive() for t in threads), failures[-3:]
                time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()

    assert not failures
    assert all(code == 200 for code, _ in answers), {code for code, _ in answers}
    seen_versions = set()
    by_generation: dict[int, set[int]] = {}
    for _, d in answers:
        md5, new0, new1 = d["results"]
        v = md5["matches"][0]["version"]  # the listed md5 is in every version
        seen_versions.add(v)
        by_generation.setdefault(d["generation"], set()).add(v)
        # a version holds exactly its entries: never the next one's, never missing its own
        assert bool(new0["matches"]) == (v >= first_version + 1)
        assert bool(new1["matches"]) == (v >= first_version + 2)
        for r in (new0, new1):
            assert all(m["version"] == v for m in r["matches"])
    assert seen_versions == {first_version, first_version + 1, first_version + 2}
    assert all(len(vs) == 1 for vs in by_generation.values())  # one generation, one version
    gc.collect()
    assert old() is None, "the first generation's matcher is still alive after the reloads"


def test_reload_needs_a_served_bank(served: Served) -> None:
    with served.client(served.admin_key) as c:
        r = c.post("/v1/banks/not-served/reload")
    assert r.status_code == 404
    assert BANK in r.json()["detail"]


def test_sibling_workers_follow_a_reload(served: Served) -> None:
    """Two servers over one store, as `serve --workers 2` runs them: a reload sent to one is live on both."""
    from dataclasses import replace

    from service_fixtures import running

    from cleanset.service import Settings
    from cleanset.service.limits import Limits
    from cleanset.service.live import LiveBanks

    settings = Settings(banks=(BANK,), limits=Limits(rate=0), follow_reloads=True, access_log=False, launch="t1")
    a_live, b_live = LiveBanks(settings.banks), LiveBanks(settings.banks)
    store = BankStore(served.home)
    newcomer = hash_bytes(encode(picture(950)), ["pdq"], probes=False).hashes["pdq"]
    body = {"hashes": {"pdq": newcomer}}
    with running(settings, a_live) as a, running(replace(settings), b_live) as b:
        auth = {"Authorization": f"Bearer {served.admin_key}"}
        with httpx.Client(headers=auth) as c:
            assert c.post(f"{b}/v1/check/hashes", json=body).json()["verdict"] == "keep"  # starts b's follower
            rows = [*bank_rows(served.listed, 1), BankRow("pdq", newcomer, "sibling-new")]
            store.create_from_rows(BANK, rows)
            made = c.post(f"{a}/v1/banks/{BANK}/reload").json()["banks"][0]["version"]
            deadline = time.monotonic() + 10
            while c.get(f"{b}/v1/banks").json()["banks"][0]["version"] != made:
                assert time.monotonic() < deadline, "the sibling did not follow the reload"
                time.sleep(0.1)
            answer = c.post(f"{b}/v1/check/hashes", json=body).json()
    assert answer["verdict"] == "remove" and answer["matches"][0]["entry_id"] == "sibling-new"


def test_an_imported_version_is_staged_and_its_reload_only_swaps(served: Served) -> None:
    newcomer = hash_bytes(encode(picture(960)), ["pdq"], probes=False).hashes["pdq"]
    with served.client(served.admin_key) as c:
        c.get("/v1/banks")  # the first request starts the store watcher
        store = BankStore(served.home)
        rows = [*bank_rows(served.listed, 1), BankRow("pdq", newcomer, "staged-new")]
        made = store.create_from_rows(BANK, rows).version
        deadline = time.monotonic() + 20
        while c.get("/v1/banks").json()["staged"] != {BANK: made}:
            assert time.monotonic() < deadline, "the new version was not staged"
            time.sleep(0.1)
        # staged is not live: answers still come from the loaded version
        before = c.post("/v1/check/hashes", json={"hashes": {"pdq": newcomer}}).json()
        assert before["verdict"] == "keep"
        staged = served.live._staged[BANK].banks
        assert staged is not None
        built = {id(b.index) for b in staged.matcher.indexes}
        r = c.post(f"/v1/banks/{BANK}/reload").json()
        # the reload swapped in the very indexes staged on import, it did not build again
        assert built <= {id(b.index) for b in served.live.current.banks.matcher.indexes}
        after = c.post("/v1/check/hashes", json={"hashes": {"pdq": newcomer}}).json()
        assert c.get("/v1/banks").json()["staged"] == {}
    assert r["banks"][0]["version"] == made
    assert after["verdict"] == "remove" and after["matches"][0]["version"] == made
