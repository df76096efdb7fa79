"""Which version a service serves: never an older one from a stamp (a stale stamp would fail open), and never a
second index kept after a reload overtook its staging."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from service_fixtures import Served, bank_rows, running

from cleanset.api import hash_bytes
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.service import Settings
from cleanset.service.limits import Limits
from cleanset.service.live import LiveBanks, write_stamp
from pictures import encode, picture


def _versions(url: str, key: str, name: str) -> tuple[int, dict]:
    d = httpx.get(f"{url}/v1/banks", headers={"Authorization": f"Bearer {key}"}).json()
    return next(b["version"] for b in d["banks"] if b["name"] == name), d["staged"]


def test_a_stale_or_older_stamp_never_takes_a_worker_back(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exp3 of the review: an earlier run left stamp 1, version 2 was imported while stopped; a worker that
    follows its siblings serves 2 and stays on 2, also when a stamp of its own launch says 1."""
    monkeypatch.setenv("CLEANSET_HOME", str(tmp_path))
    name, launch = "stale", "launch7"
    store = BankStore(tmp_path)
    rows = bank_rows(served.listed, 1)
    store.create_from_rows(name, rows)
    write_stamp(launch, name, 1)  # an earlier run, same launch id even
    newcomer = hash_bytes(encode(picture(970)), ["pdq"], probes=False).hashes["pdq"]
    store.create_from_rows(name, [*rows, BankRow("pdq", newcomer, "only-in-2")])
    time.sleep(0.05)  # the stamp is older than the worker
    keys = served.home / "service" / "keys.json"
    settings = Settings(
        banks=(name,), limits=Limits(rate=0), keys_path=keys, follow_reloads=True, stage_imports=False, launch=launch
    )
    with running(settings, LiveBanks(settings.banks)) as url:
        auth = {"Authorization": f"Bearer {served.check_key}"}
        body = {"hashes": {"pdq": newcomer}}
        assert httpx.post(f"{url}/v1/check/hashes", json=body, headers=auth).json()["verdict"] == "remove"
        write_stamp(launch, name, 1)  # a sibling of this launch stamping an older version: not followed either
        time.sleep(2.5)  # the follower looks once a second
        assert _versions(url, served.check_key, name)[0] == 2
        answer = httpx.post(f"{url}/v1/check/hashes", json=body, headers=auth).json()
    assert answer["verdict"] == "remove" and answer["matches"][0]["entry_id"] == "only-in-2"


def test_a_staging_overtaken_by_a_reload_is_dropped(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging reads the live version without the reload lock: a reload can make the version live while its
    staging builds. The build must then be dropped, not kept beside the live index for good."""
    monkeypatch.setenv("CLEANSET_HOME", str(tmp_path))
    name = "race"
    store = BankStore(tmp_path)
    rows = bank_rows(served.listed, 2)
    store.create_from_rows(name, rows)
    keys = served.home / "service" / "keys.json"
    settings = Settings(banks=(name,), limits=Limits(rate=0), keys_path=keys, stage_imports=False)
    live = LiveBanks(settings.banks)
    store.create_from_rows(name, [*rows, BankRow("md5", "1" * 32, "v2")])

    building = threading.Event()
    real = live.version_of
    calls = [0]

    def late(n: str) -> int | None:  # stage's first look at the live version, answered before a reload runs
        have = real(n)
        calls[0] += 1
        if calls[0] == 1:
            building.set()
            time.sleep(0.8)
        return have

    monkeypatch.setattr(live, "version_of", late)
    with running(settings, live) as url:
        staged: list[object] = []
        t = threading.Thread(target=lambda: staged.append(live.stage(name)))
        t.start()
        assert building.wait(10)
        r = httpx.post(f"{url}/v1/banks/{name}/reload", headers={"Authorization": f"Bearer {served.admin_key}"})
        assert r.status_code == 200 and r.json()["banks"][0]["version"] == 2
        t.join(20)
        version, on_wait = _versions(url, served.check_key, name)
    assert version == 2 and on_wait == {} and staged == [None]
    assert live._staged == {}
