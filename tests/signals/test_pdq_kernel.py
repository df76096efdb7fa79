"""The pieces of the fast PDQ path checked against their definitions (not against stored results)."""

from __future__ import annotations

import numpy as np
import pytest

from cleanset.signals import pdq_kernel as k
from cleanset.signals.pdq import resize_512, scan


def box_matrix(n: int, window: int) -> np.ndarray:
    """The reference's 1-D box filter as a dense matrix: output k is the mean of inputs
    k - (window - half) .. k + half - 1, clipped at the edges, half = (window + 2) // 2."""
    half = (window + 2) // 2
    b = np.zeros((n, n))
    for i in range(n):
        lo, hi = max(i - (window - half), 0), min(i + half - 1, n - 1)
        b[i, lo : hi + 1] = 1.0 / (hi - lo + 1)
    return b


@pytest.mark.parametrize("n", [5, 6, 7, 63, 64, 65, 127, 128, 129, 255, 256, 300, 512, 513, 1004, 1600, 2049])
def test_tent_weights_equal_box_of_box(n: int) -> None:
    starts, weights = k.tent_weights(n)
    dense = box_matrix(n, k.jarosz_window(n)) @ box_matrix(n, k.jarosz_window(n))
    expected = dense[k.sample_indices(n)]
    got = np.zeros_like(expected)
    assert starts.min() >= 0 and (starts + weights.shape[1]).max() <= n
    for s in range(64):
        got[s, starts[s] : starts[s] + weights.shape[1]] = weights[s]
    assert np.abs(got - expected).max() < 1e-12
    assert np.allclose(got.sum(axis=1), 1.0)


def test_sample_indices_are_centres() -> None:
    assert list(k.sample_indices(64)) == list(range(64))
    assert list(k.sample_indices(128)[:3]) == [1, 3, 5]
    assert k.jarosz_window(1024) == 8 and k.jarosz_window(1025) == 9


def test_scan_equals_dense_filter() -> None:
    """The sparse scan gives the dense (blur everything, then decimate) result to float32 rounding."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(300, 410, 3), dtype=np.uint8)
    luma = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32).astype(np.float64)
    rows = box_matrix(300, k.jarosz_window(300))
    cols = box_matrix(410, k.jarosz_window(410))
    dense = (rows @ rows @ luma @ (cols @ cols).T)[np.ix_(k.sample_indices(300), k.sample_indices(410))]
    assert np.abs(scan(rgb) - dense).max() < 1e-4


def test_indexed_scan_equals_scan_of_resized() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, size=(700, 530, 3), dtype=np.uint8)
    assert np.array_equal(scan(rgb, size=(512, 512)), scan(resize_512(rgb)))


def test_grey_block_sums() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(90, 70, 3), dtype=np.uint8)
    sums = np.zeros((23, 10))
    scan(rgb, 4, 7, sums)
    luma = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32).astype(np.float64)
    expected = np.add.reduceat(np.add.reduceat(luma, np.arange(0, 90, 4), axis=0), np.arange(0, 70, 7), axis=1)
    assert np.allclose(sums, expected)


def test_dihedral_words_are_transforms_of_the_dct() -> None:
    """Hashing a rotated/flipped image directly lands nearest the matching dihedral hash of the original (not
    exactly on it: the decimation grid is not symmetric, the reference behaves the same)."""
    from cleanset.signals.pdq import pdq_rgb

    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    rgb = np.kron(base, np.ones((32, 32, 1), dtype=np.uint8))  # 512x512, exact under rotation
    ours = pdq_rgb(rgb)
    views = [
        rgb,
        np.rot90(rgb, 1),
        np.rot90(rgb, 2),
        np.rot90(rgb, 3),
        rgb[::-1],
        rgb[:, ::-1],
        np.transpose(rgb, (1, 0, 2)),
        np.rot90(rgb, 2).transpose(1, 0, 2),
    ]
    for i, view in enumerate(views):
        direct = int(pdq_rgb(np.ascontiguousarray(view)).hex, 16)
        dists = [(direct ^ int(d, 16)).bit_count() for d in ours.dihedral]
        assert dists[i] == min(dists) and dists[i] <= 31, (i, dists)


def test_rgbx_words_path_equals_rgb_path() -> None:
    """A JPEG decodes to a view of an RGBX buffer; the scan reads it as 32-bit words with the same result."""
    rng = np.random.default_rng(5)
    rgbx = rng.integers(0, 256, size=(333, 517, 4), dtype=np.uint8)
    view = rgbx[:, :, :3]
    plain = np.ascontiguousarray(view)
    from cleanset.signals.pdq import _words

    assert _words(view) is not None and _words(plain) is None
    assert np.array_equal(scan(view), scan(plain))
    assert np.array_equal(scan(view, size=(512, 512)), scan(plain, size=(512, 512)))
    s1, s2 = np.zeros((84, 130)), np.zeros((84, 130))
    scan(view, 4, 4, s1)
    scan(plain, 4, 4, s2)
    assert np.array_equal(s1, s2)


def test_word_luma_equals_float64_luma_for_every_colour() -> None:
    """The float32 luma of RGBX words (``_word_luma``) must be the reference's float64 luma rounded to float32 for
    all 2**24 colours: the exactness argument in its docstring, checked rather than trusted."""
    words = (np.arange(2**24, dtype=np.uint32) | np.uint32(0xAB000000)).reshape(4096, 4096)  # padding byte set
    dummy = np.zeros((1, 1, 3), dtype=np.uint8)
    luma = np.empty(4096, dtype=np.float32)
    for y in range(0, 4096, 256):
        got = np.empty((256, 4096), dtype=np.float32)
        for i in range(256):
            k._luma_row(dummy, words, y + i, k.LUMA_R, k.LUMA_G, k.LUMA_B, luma)
            got[i] = luma
        w = words[y : y + 256].astype(np.int64)
        expected = ((w & 0xFF) * 0.299 + ((w >> 8) & 0xFF) * 0.587 + ((w >> 16) & 0xFF) * 0.114).astype(np.float32)
        assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_select_kth_equals_sorting() -> None:
    """The selection the medians use must give the value a full sort gives, ties and all."""
    rng = np.random.default_rng(13)
    for i in range(3000):
        n = int(rng.integers(1, 300))
        kind = i % 4
        if kind == 0:
            v = rng.standard_normal(n)
        elif kind == 1:
            v = rng.integers(-3, 4, n).astype(np.float64)  # many ties
        elif kind == 2:
            v = np.sort(rng.standard_normal(n))[:: 1 if i % 8 == 2 else -1].copy()  # sorted either way
        else:
            v = np.full(n, float(rng.integers(-5, 5)))
        v32 = v.astype(np.float32)
        kth = int(rng.integers(0, n))
        want = np.sort(v)[kth]
        assert k.select_kth(v.copy(), kth) == want
        assert k.select_kth(v32.copy(), kth) == np.sort(v32)[kth]
