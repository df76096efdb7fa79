"""The compiled tail of the shared pixel pass checked against the NumPy definitions it replaces: ``shared_pass``
against the functions one by one, pHash's Lanczos and DCT kernels against dense products, and block sums that do
not depend on the order they are added in."""

from __future__ import annotations

import numpy as np
import pytest

from cleanset.signals import pdq_kernel as k
from cleanset.signals.pdq import result_from_samples, scan, scan_both, shared_pass
from cleanset.signals.phash import dct_rows, grey_plan, lanczos_matrix, lanczos_span


def picture(rng: np.random.Generator, h: int, w: int, rgbx: bool) -> np.ndarray:
    """Smooth content plus noise and a flat patch (flat areas are where rounding ties live)."""
    from PIL import Image

    base = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    rgb = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC)).copy()
    rgb[: h // 3, : w // 4] = (200, 17, 93)
    rgb = np.clip(rgb.astype(np.int16) + rng.integers(-6, 7, size=rgb.shape), 0, 255).astype(np.uint8)
    if not rgbx:
        return rgb
    buf = np.zeros((h, w, 4), dtype=np.uint8)
    buf[:, :, :3] = rgb
    return buf[:, :, :3]


@pytest.mark.parametrize(
    ("h", "w", "rgbx"), [(700, 900, True), (700, 900, False), (513, 1030, True), (300, 200, True), (1100, 90, False)]
)
def test_shared_pass_equals_the_steps(h: int, w: int, rgbx: bool) -> None:
    from cleanset.signals.phash import phash_from_blocks

    rng = np.random.default_rng(h * w)
    rgb = picture(rng, h, w, rgbx)
    plan, ref_plan = grey_plan(h, w), grey_plan(h, w)
    full, small, grey = shared_pass(rgb, plan, resize_512=True)
    ref_full, ref_small = scan_both(
        rgb, *((ref_plan.block_rows, ref_plan.block_cols, ref_plan.sums) if ref_plan else ())
    )
    assert full == result_from_samples(ref_full)
    if max(h, w) > 512:
        assert small == result_from_samples(ref_small)
    else:
        assert small is None
    if ref_plan is None:
        assert grey is None
    else:
        assert plan is not None and np.array_equal(plan.sums, ref_plan.sums)
        assert grey == phash_from_blocks(ref_plan.means())
    alone, none512, no_grey = shared_pass(rgb)
    assert alone == full and none512 is None and no_grey is None
    assert np.array_equal(scan(rgb), ref_full)


def test_block_sums_do_not_depend_on_order() -> None:
    """Float32 lumas are multiples of 2**-27 below 256: block sums in float64 are exact, so any order gives the
    same bits (what lets the scan sum a block's columns in a row)."""
    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 256, size=(90, 70, 3), dtype=np.uint8)
    sums = np.zeros((23, 10))
    scan(rgb, 4, 7, sums)
    luma = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32).astype(np.float64)
    blocks = np.pad(luma, ((0, 2), (0, 0))).reshape(23, 4, 10, 7)
    shuffled = blocks.transpose(0, 2, 1, 3).reshape(23, 10, 28)[..., rng.permutation(28)]
    assert np.array_equal(sums, shuffled.sum(axis=2))
    assert np.array_equal(sums, shuffled[..., ::-1].cumsum(axis=2)[..., -1])


def test_lanczos_kernel_equals_dense_product() -> None:
    rng = np.random.default_rng(10)
    means = rng.random((256, 288)) * 255
    col_lo, col_w = lanczos_span(288)
    row_lo, row_w = lanczos_span(256)
    dense = lanczos_matrix(288)
    assert all(np.count_nonzero(dense[i]) <= col_w.shape[1] for i in range(32))
    for i in range(32):  # the span holds every non-zero weight
        assert np.array_equal(dense[i, col_lo[i] : col_lo[i] + col_w.shape[1]], col_w[i])
    tmp = np.clip(np.floor(means @ dense.T + 0.5), 0, 255)
    want = np.clip(np.floor(lanczos_matrix(256) @ tmp + 0.5), 0, 255)
    got = k.lanczos_32(np.ascontiguousarray(means.T), col_lo, col_w, row_lo, row_w)
    # same values: each output is the same products summed in input order (a tie at .5 would need bit-equal sums)
    assert np.array_equal(got, want)


def test_phash_bits_equal_numpy_definition() -> None:
    rng = np.random.default_rng(11)
    c = dct_rows()
    for i in range(300):
        kind = i % 3
        if kind == 0:
            px = rng.integers(0, 256, (32, 32)).astype(np.float64)
        elif kind == 1:
            px = np.full((32, 32), float(rng.integers(0, 256)))
        else:
            px = np.kron(rng.integers(0, 256, (4, 4)), np.ones((8, 8)))
        low = np.round(c @ px @ c.T, 6)
        want = np.packbits((low > np.median(low)).ravel()).tobytes().hex()
        assert f"{int(k.phash_bits(px, c)):016x}" == want


@pytest.mark.parametrize("width", [600, 800, 1100, 1300, 1600, 1800, 2100, 2400, 2700])
def test_block_sums_for_every_compiled_block_width(width: int) -> None:
    """Block widths 2 to 8 are compiled each with the width as a constant, wider ones with a variable width: every
    one must give the block sums of the float32 luma (exact, so compared bit for bit), remainder column included."""
    rng = np.random.default_rng(width)
    rgb = picture(rng, 520, width, rgbx=True)
    plan = grey_plan(520, width)
    assert plan is not None and plan.block_cols == width // 256
    scan_both(rgb, plan.block_rows, plan.block_cols, plan.sums)
    luma = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32).astype(np.float64)
    nby, nbx = plan.sums.shape
    want = np.zeros((nby, nbx))
    np.add.at(want, (np.arange(520)[:, None] // plan.block_rows, np.arange(width)[None, :] // plan.block_cols), luma)
    assert np.array_equal(plan.sums, want)


def test_block_means_transposed() -> None:
    rng = np.random.default_rng(12)
    for nby, nbx in ((256, 288), (259, 300), (7, 5)):
        sums = np.floor(rng.random((nby, nbx)) * 2**30) / 2**20
        counts = rng.integers(1, 40, (nby, nbx)).astype(np.float64)
        assert np.array_equal(k._block_means_t(sums, counts), (sums / counts).T)
