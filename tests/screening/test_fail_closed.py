"""Review fixes that keep screening fail-closed: a shared ``Screening`` used from many threads scores each call's
own inputs, a score that is not a number sends the item to review, a bad classifier config or policy file is an
error naming the file and field, and items no classifier could see are named and counted."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tiny_model import flat_picture, write_config

import cleanset.api as api
from cleanset.assess.policy import NON_FINITE_RULE, judgement, load_policy
from cleanset.errors import InputFormatError
from cleanset.records import Status
from cleanset.screening.classifier import get_classifier
from cleanset.screening.stage import NOT_CLASSIFIED, ScreenConfig


def _banks(home: Path) -> api.Banks:
    return api.banks_from_rows(home, "standin", [("md5", hashlib.md5(b"nothing").hexdigest(), "E0")])


def test_threads_sharing_a_screening_each_get_their_own_score(
    tmp_path: Path, cleanset_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    banks = _banks(cleanset_home)
    screening = ScreenConfig(classifiers=(str(write_config(tmp_path)),), default_terms=False, batch_size=64).build()
    clf = screening.classifiers[0]
    slow = clf.score_prepared

    def slower(batch: np.ndarray) -> np.ndarray:
        time.sleep(0.02)  # widens the window in which another thread's flush would take this call's item
        return slow(batch)

    monkeypatch.setattr(clf, "score_prepared", slower)
    queue = screening.queue

    def queue_then_wait(scores: dict[str, float], inputs: list[list[np.ndarray]]) -> None:
        queue(scores, inputs)
        time.sleep(0.005)  # lets other threads queue too: a shared queue then loses items to their flush

    monkeypatch.setattr(screening, "queue", queue_then_wait)
    pictures = [flat_picture(250, 5), flat_picture(5, 250)]
    banks.engine()  # built once, before the threads
    answers: list[api.Check] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        for j in range(3):
            check = api.check_bytes(pictures[(i + j) % 2], banks, screen=screening)
            with lock:
                answers.append(check)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 24
    assert all("classifier.tiny" in a.scores for a in answers)
    assert sorted({a.verdict for a in answers}) == ["keep", "review"]
    for a in answers:
        assert (a.verdict == "review") == (a.scores["classifier.tiny"] > 0.8)


def test_a_nan_score_is_review_never_keep(tmp_path: Path, cleanset_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = judgement(Status.OK, [], {"classifier.x": math.nan, "punsafe": 0.1})
    assert j.verdict is not None and str(j.verdict) == "review" and NON_FINITE_RULE in j.rules
    assert any("classifier.x" in r and "not a finite number" in r for r in j.reasons)
    screening = ScreenConfig(classifiers=(str(write_config(tmp_path)),), default_terms=False).build()
    monkeypatch.setattr(screening.classifiers[0], "score_prepared", lambda b: np.full(len(b), np.nan, np.float32))
    check = api.check_bytes(flat_picture(5, 250), _banks(cleanset_home), screen=screening)
    assert check.verdict == "review" and NON_FINITE_RULE in check.rules


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scale": 0}, "scale"),
        ({"scale": "abc"}, "scale"),
        ({"softmax": "false"}, "softmax"),
        ({"batch_size": "8"}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"mean": [0, "x", 0]}, "mean"),
        ({"layout": 3}, "layout"),
    ],
)
def test_classifier_config_fields_are_typed(tmp_path: Path, change: dict[str, object], field: str) -> None:
    path = write_config(tmp_path, fmt="json", **change)
    with pytest.raises(InputFormatError, match=field) as e:
        get_classifier(str(path))
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('[banks]\nreview = "standin"\n', "banks.review"),
        ("[banks]\nallow = [1]\n", "banks.allow"),
        ('[thresholds]\npunsafe = "high"\n', "thresholds.punsafe"),
        ("[thresholds]\npunsafe = nan\n", "thresholds.punsafe"),
        ('[score_review]\npunsafe = "x"\n', "score_review.punsafe"),
        ('review_above = "8"\n', "review_above"),
        ("name = 3\n", "name"),
        ('[[rules]]\nname = "r"\nwhen = [1]\naction = "review"\n', r"rules\[1\]\.when"),
        ('rules = "none"\n', "rules"),
    ],
)
def test_policy_fields_are_typed(tmp_path: Path, toml: str, field: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(toml)
    with pytest.raises(InputFormatError, match=field) as e:
        load_policy(str(path))
    assert str(path) in str(e.value)


def test_url_rows_are_named_and_counted_as_not_classified(tmp_path: Path, cleanset_home: Path) -> None:
    n = 6
    path = tmp_path / "part-0.parquet"
    pq.write_table(
        pa.table(
            {
                "URL": [f"https://images.example.org/{i}.jpg" for i in range(n)],
                "TEXT": ["a benign stock photo"] * n,
            }
        ),
        path,
    )
    run = tmp_path / "run"
    config = ScreenConfig(classifiers=(str(write_config(tmp_path)),), default_terms=False)
    api.scan([path], _banks(cleanset_home), run, screen=config, executor="inline", format="laion")
    rows = pq.read_table(run / "items").to_pylist()
    assert len(rows) == n and all(NOT_CLASSIFIED in (r["notes"] or []) for r in rows)
    html, data = api.report(run)
    assert (data["screening"]["classified"], data["screening"]["unclassified"]) == (0, n)
    assert "not classified (no pixels" in Path(html).read_text()
