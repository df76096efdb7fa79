"""`cleanset serve --screen`: image checks over HTTP run the screening classifier and answer as the Python API does
with the same screening and policy; the configured policy judges images, hashes and URLs alike; a missing model
config stops the start. Every picture here is drawn in code (benign colour fields)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_fixtures import BANK, LISTED_URL, Served, bank_rows, running
from typer.testing import CliRunner

from cleanset import api
from cleanset.assess import load_policy
from cleanset.banks.store import BankStore
from cleanset.cli.app import app as cli
from cleanset.errors import UserError
from cleanset.screening.stage import ScreenConfig
from cleanset.service import Settings, create_app
from cleanset.service.keys import KeyStore
from cleanset.service.limits import Limits
from cleanset.service.live import LiveBanks
from cleanset.service.run import SETTINGS_ENV, _to_env, settings_from_env
from pictures import encode, picture

SCORE = "classifier.open_nsfw"
# Any classifier score fires the default ``classifier`` rule (review), and the stand-in bank is review-only: the
# policy must reach the image, hash and URL answers alike for all three to say review.
ANY_SCORE_POLICY = """\
name = "any-score"

[thresholds]
"classifier.*" = 0.0

[banks]
review = ["standin"]
"""


@dataclass
class Screened:
    plain: str  # screening on, default policy
    strict: str  # screening on, ANY_SCORE_POLICY
    policy_file: Path
    key: str
    listed: bytes
    banks: api.Banks
    settings: Settings

    def client(self, url: str) -> httpx.Client:
        return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60.0)

    def image(self, url: str, data: bytes) -> dict[str, Any]:
        with self.client(url) as c:
            r = c.post("/v1/check/image", content=data, headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Screened]:
    """Two servers with screening on over one set of loaded banks: the default policy and ANY_SCORE_POLICY."""
    home = tmp_path_factory.mktemp("screening-home")
    old = os.environ.get("CLEANSET_HOME")
    os.environ["CLEANSET_HOME"] = str(home)
    try:
        listed = encode(picture(7, 256))
        BankStore(home).create_from_rows(BANK, bank_rows(listed, 3))
        keys_path = home / "service" / "keys.json"
        key, _ = KeyStore(keys_path).create("tests", "check")
        policy_file = home / "any-score.toml"
        policy_file.write_text(ANY_SCORE_POLICY)
        settings = Settings(
            banks=(BANK,),
            limits=Limits(rate=0, max_body=2_000_000, max_pixels=1_000_000, timeout_s=30.0),
            keys_path=keys_path,
            access_log=False,
            screen=True,
        )
        live = LiveBanks(settings.banks)
        with running(settings, live) as plain, running(replace(settings, policy=str(policy_file)), live) as strict:
            yield Screened(plain, strict, policy_file, key, listed, live.current.banks, settings)
    finally:
        if old is None:
            os.environ.pop("CLEANSET_HOME", None)
        else:
            os.environ["CLEANSET_HOME"] = old


def in_process(s: Screened, data: bytes, policy: str | None = None) -> api.Check:
    screen = ScreenConfig(default_terms=False, score_columns=()).build()
    return api.check_bytes(data, s.banks, None if policy is None else load_policy(policy), screen=screen)


def test_image_check_returns_the_classifier_score_of_the_python_api(screened: Screened) -> None:
    data = encode(picture(21, 256))
    got = screened.image(screened.plain, data)
    mine = in_process(screened, data)
    assert set(got["scores"]) == {SCORE}
    assert 0.0 <= got["scores"][SCORE] <= 1.0
    assert got["scores"][SCORE] == pytest.approx(mine.scores[SCORE], abs=1e-6)
    assert got["verdict"] == mine.verdict == "keep"
    assert got["rules"] == [] and got["failure"] is None


def test_concurrent_image_checks_each_get_their_own_score(screened: Screened) -> None:
    """Check threads share one built Screening and one ONNX session: each answer must be its own picture's."""
    pictures = [encode(picture(30 + i, 192)) for i in range(6)]
    expected = [in_process(screened, p).scores[SCORE] for p in pictures]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda p: screened.image(screened.plain, p)["scores"][SCORE], pictures * 2))
    assert got == pytest.approx(expected * 2, abs=1e-6)


def test_policy_threshold_sends_any_image_to_review_with_the_rule_named(screened: Screened) -> None:
    data = encode(picture(22, 256))
    got = screened.image(screened.strict, data)
    mine = in_process(screened, data, str(screened.policy_file))
    assert got["verdict"] == mine.verdict == "review"
    assert "classifier" in got["rules"]
    assert any(r.startswith("rule classifier:") and SCORE in r for r in got["reasons"])
    got.pop("generation")
    assert got["scores"][SCORE] == pytest.approx(mine.scores[SCORE], abs=1e-6)
    got.pop("scores")
    want = mine.to_dict()
    want.pop("scores")
    assert got == want


def test_configured_policy_judges_hashes_and_urls_as_the_python_api(screened: Screened) -> None:
    """The stand-in bank is review-only under the file's policy: a listed hash or URL is review, not remove."""
    policy = load_policy(str(screened.policy_file))
    h = api.hash_bytes(screened.listed, probes=False).hashes
    with screened.client(screened.strict) as c:
        one = c.post("/v1/check/hashes", json={"hashes": {"md5": h["md5"]}}).json()
        batch = c.post("/v1/check/hashes", json={"items": [{"pdq": h["pdq"]}, {"md5": "f" * 32}]}).json()
        url = c.post("/v1/check/url", json={"url": LISTED_URL}).json()
        image = c.post("/v1/check/image", content=screened.listed).json()
    with screened.client(screened.plain) as c:
        default = c.post("/v1/check/hashes", json={"hashes": {"md5": h["md5"]}}).json()
    assert one["verdict"] == "review" and default["verdict"] == "remove"
    assert [r["verdict"] for r in batch["results"]] == ["review", "keep"]
    assert url["verdict"] == "review" and image["verdict"] == "review"
    for got, want in (
        (one, api.check_hashes({"md5": h["md5"]}, screened.banks, policy)),
        (batch["results"][0], api.check_hashes({"pdq": h["pdq"]}, screened.banks, policy)),
        (url, api.check_url(LISTED_URL, screened.banks, policy)),
    ):
        got.pop("generation", None)
        assert got == want.to_dict()


def test_banks_endpoint_says_screening_is_on_with_name_and_digest_only(screened: Screened, served: Served) -> None:
    with screened.client(screened.strict) as c:
        on = c.get("/v1/banks").json()["screening"]
    assert on["enabled"] is True and on["policy"] == "any-score"
    (model,) = on["models"]
    assert set(model) == {"name", "sha256"} and model["name"] == "open_nsfw"
    from cleanset.screening.classifier import file_sha256, open_nsfw_model_path

    assert model["sha256"] == file_sha256(open_nsfw_model_path())  # the shipped model's own digest
    with served.client(served.check_key) as c:
        off = c.get("/v1/banks").json()["screening"]
    assert off == {"enabled": False, "models": [], "policy": "default"}


def test_without_screening_no_scores_come_back(served: Served) -> None:
    with served.client(served.check_key) as c:
        r = c.post("/v1/check/image", content=encode(picture(21, 256)))
    assert r.status_code == 200
    assert r.json()["scores"] == {} and r.json()["verdict"] == "keep"


def test_settings_with_screening_survive_the_trip_to_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        banks=(BANK, "other@3"),
        keys_path=Path("/srv/keys.json"),
        screen=True,
        classifiers=("open_nsfw", "/models/acme.toml"),
        policy="/etc/cleanset/policy.toml",
    )
    monkeypatch.setenv(SETTINGS_ENV, _to_env(settings))
    assert settings_from_env() == settings
    monkeypatch.setenv(SETTINGS_ENV, _to_env(Settings(banks=(BANK,))))
    assert settings_from_env() == Settings(banks=(BANK,))


def test_missing_classifier_config_fails_at_start_naming_it(screened: Screened, tmp_path: Path) -> None:
    missing = tmp_path / "acme-age.toml"
    with pytest.raises(UserError, match=re.escape(str(missing))):
        create_app(replace(screened.settings, classifiers=(str(missing),)))


def test_serve_command_passes_the_options_and_refuses_a_missing_config(
    screened: Screened, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Settings] = []
    monkeypatch.setattr("cleanset.service.run.serve", lambda settings, *a: started.append(settings))
    runner = CliRunner()
    ok = runner.invoke(cli, ["serve", "--bank", BANK, "--screen", "--policy", str(screened.policy_file)])
    assert ok.exit_code == 0, ok.output
    assert (started[0].screen, started[0].classifiers, started[0].policy) == (True, (), str(screened.policy_file))
    missing = tmp_path / "nowhere.toml"
    bad = runner.invoke(cli, ["serve", "--bank", BANK, "--screen", "--classifier", str(missing)])
    assert isinstance(bad.exception, UserError) and str(missing) in str(bad.exception)
    alone = runner.invoke(cli, ["serve", "--bank", BANK, "--classifier", "open_nsfw"])
    assert alone.exit_code == 2 and "--screen" in alone.output
    assert len(started) == 1  # neither refusal reached the server
