"""The screening policy: default rules, strict, TOML files, and every rule that fired named with the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleanset.assess import Policy, Rule, judgement, load_policy
from cleanset.assess.policy import DEFAULT_RULES
from cleanset.errors import InputFormatError, UserError
from cleanset.records import Match, Status, Verdict


def hit(bank: str = "b") -> Match:
    return Match(bank=bank, version=1, entry_id="e1", signal="md5", distance=0, probe="md5")


@pytest.mark.parametrize(
    ("scores", "verdict", "rules"),
    [
        ({}, Verdict.KEEP, []),
        ({"classifier.open_nsfw": 0.79}, Verdict.KEEP, []),
        ({"classifier.open_nsfw": 0.8}, Verdict.REVIEW, ["classifier"]),
        ({"punsafe": 0.95}, Verdict.REVIEW, ["classifier"]),
        ({"text.minor": 1.0}, Verdict.KEEP, []),
        ({"classifier.acme": 0.9, "text.minor": 1.0}, Verdict.REMOVE, ["classifier-and-minor-terms", "classifier"]),
        ({"classifier.open_nsfw": 0.5, "text.minor": 1.0}, Verdict.KEEP, []),
        ({"neighbour": 0.93}, Verdict.REVIEW, ["neighbour-of-hit"]),
        ({"neighbour": 0.85}, Verdict.KEEP, []),
        ({"text.minor": 1.0, "text.sexual": 1.0, "text.cooccur": 1.0}, Verdict.REVIEW, ["minor-and-sexual-terms"]),
        ({"pwatermark": 0.99}, Verdict.KEEP, []),
    ],
)
def test_default_rules(scores: dict[str, float], verdict: Verdict, rules: list[str]) -> None:
    j = judgement(Status.OK, [], scores, Policy())
    assert (j.verdict, j.rules) == (verdict, rules)
    for name in rules:
        assert any(r.startswith(f"rule {name}:") for r in j.reasons)


def test_bank_match_removes_and_is_named() -> None:
    j = judgement(Status.OK, [hit()], {"classifier.open_nsfw": 0.9}, Policy())
    assert j.verdict is Verdict.REMOVE and j.rules == ["bank-match", "classifier"]
    assert judgement(Status.FAILED, [hit()], {"classifier.open_nsfw": 0.9}, Policy()).verdict is None


def test_strict_removes_review() -> None:
    strict = load_policy("strict")
    j = judgement(Status.OK, [], {"classifier.open_nsfw": 0.9}, strict)
    assert j.verdict is Verdict.REMOVE and j.rules[-1] == "strict"
    assert judgement(Status.OK, [], {"classifier.open_nsfw": 0.1}, strict).verdict is Verdict.KEEP
    soft_bank = Policy(bank_actions={"b": "review"}, strict=True)
    assert judgement(Status.OK, [hit()], None, soft_bank).verdict is Verdict.REMOVE


def test_defaults_keep_the_manifest_form_and_round_trip() -> None:
    assert set(Policy().to_dict()) == {"review_above", "bank_actions", "allow_banks", "score_review"}
    custom = Policy(rules=(Rule("mine", ("classifier.*",), "remove"),), thresholds={"classifier.*": 0.6}, strict=True)
    assert Policy.from_dict(custom.to_dict()) == custom
    assert Policy.from_dict(Policy().to_dict()) == Policy()


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "org.toml"
    path.write_text(
        """
name = "org"
review_above = 20
[banks]
review = ["lowconf"]
[thresholds]
"classifier.*" = 0.6
[[rules]]
name = "any-classifier"
when = ["classifier.*"]
action = "remove"
[[rules]]
name = "watermark"
when = "pwatermark"
action = "review"
""",
        encoding="utf-8",
    )
    p = load_policy(str(path))
    assert (p.name, p.review_above, p.bank_actions, p.threshold("classifier.x")) == (
        "org",
        20,
        {"lowconf": "review"},
        0.6,
    )
    assert p.threshold("punsafe") == 0.8  # defaults stay under the file's thresholds
    assert judgement(Status.OK, [], {"classifier.x": 0.65}, p).verdict is Verdict.REMOVE
    assert judgement(Status.OK, [], {"pwatermark": 0.7}, p).rules == ["watermark"]
    assert judgement(Status.OK, [], {"neighbour": 0.99}, p).verdict is Verdict.KEEP  # given rules replace defaults
    assert load_policy(str(path), review_above=5).review_above == 5  # the command line wins


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key"),
        ("[[rules]]\nname='x'\nwhen=['a']\naction='delete'\n", "action must be one of"),
        ("[[rules]]\nname='x'\nwhen=[]\naction='review'\n", "'when' must list"),
        ("[[rules]]\nname='x'\nwhen=['a']\naction='review'\n[[rules]]\nname='x'\nwhen=['b']\naction='keep'\n", "share"),
        ("strict = 'yes'\n", "strict must be"),
        ("[thresholds]\npunsafe = 'high'\n", r"thresholds\.punsafe"),
        ("name = \n", "not a TOML policy"),
        ("[banks]\nblock = ['x']\n", r"\[banks\]"),
    ],
)
def test_bad_policy_file_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputFormatError, match=message) as e:
        load_policy(str(path))
    assert str(path) in str(e.value)


def test_unknown_policy_name() -> None:
    with pytest.raises(UserError, match="not 'default', 'strict'"):
        load_policy("lenient")


def test_default_rules_match_the_documented_defaults() -> None:
    by_name = {r.name: r for r in DEFAULT_RULES}
    assert by_name["classifier-and-minor-terms"].action == "remove"
    assert by_name["classifier"].action == by_name["neighbour-of-hit"].action == "review"
