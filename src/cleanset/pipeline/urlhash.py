"""MD5 and SHA-1 over a whole Arrow string column at once, for the URL metadata path.

Why not hashlib: re-checking LAION-5B's 5.8 billion URLs against a new list has to run at hundreds of thousands of
rows per second per core, and one hashlib call per URL (object creation, call overhead, a bytes object in and out)
costs more than all the rest of the row's work together. These kernels walk the column's own buffers, write the
lower-case hex digest straight into the output column's buffer and the first 8 digest bytes as an integer for the
bank prefilter. They are the textbook algorithms (RFC 1321, FIPS 180-4); tests compare them with hashlib for every
message length across block boundaries.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa

M32 = np.uint64(0xFFFFFFFF)

_MD5_S = np.array([7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4, dtype=np.uint64)
_MD5_K = np.array([int(abs(np.sin(i + 1)) * 2**32) & 0xFFFFFFFF for i in range(64)], dtype=np.uint64)
_HEXCHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8).copy()
NBYTES = {"md5": 16, "sha1": 20}


@nb.njit(cache=True, inline="always")
def _rotl(x: np.uint64, n: np.uint64) -> np.uint64:
    return ((x << n) | (x >> (np.uint64(32) - n))) & M32


@nb.njit(cache=True, inline="always")
def _block(data: np.ndarray, start: int, length: int, b: int, nblocks: int, big_endian: bool, buf: np.ndarray) -> None:
    """Block ``b`` of the padded message data[start:start+length] into ``buf`` (64 bytes)."""
    base = b * 64
    for i in range(64):
        pos = base + i
        if pos < length:
            buf[i] = data[start + pos]
        elif pos == length:
            buf[i] = 0x80
        else:
            buf[i] = 0
    if b == nblocks - 1:
        bits = np.uint64(length) * np.uint64(8)
        for i in range(8):
            shift = np.uint64(8 * (7 - i)) if big_endian else np.uint64(8 * i)
            buf[56 + i] = np.uint8((bits >> shift) & np.uint64(0xFF))


@nb.njit(cache=True)
def _md5_rows(
    data: np.ndarray, offsets: np.ndarray, out_hex: np.ndarray, out_prefix: np.ndarray, s: np.ndarray, k: np.ndarray
) -> None:
    hexchars = _HEXCHARS
    buf = np.empty(64, dtype=np.uint8)
    w = np.empty(16, dtype=np.uint64)
    digest = np.empty(16, dtype=np.uint8)
    for r in range(len(offsets) - 1):
        start = offsets[r]
        length = offsets[r + 1] - start
        nblocks = (length + 8) // 64 + 1
        a0 = np.uint64(0x67452301)
        b0 = np.uint64(0xEFCDAB89)
        c0 = np.uint64(0x98BADCFE)
        d0 = np.uint64(0x10325476)
        for b in range(nblocks):
            _block(data, start, length, b, nblocks, False, buf)
            for i in range(16):
                w[i] = (
                    np.uint64(buf[4 * i])
                    | (np.uint64(buf[4 * i + 1]) << np.uint64(8))
                    | (np.uint64(buf[4 * i + 2]) << np.uint64(16))
                    | (np.uint64(buf[4 * i + 3]) << np.uint64(24))
                )
            a, bb, c, d = a0, b0, c0, d0
            for i in range(16):  # four rounds of 16, split so no loop body branches
                f = (bb & c) | ((~bb & M32) & d)
                f = (f + a + k[i] + w[i]) & M32
                a, d, c, bb = d, c, bb, (bb + _rotl(f, s[i])) & M32
            for i in range(16, 32):
                f = (d & bb) | ((~d & M32) & c)
                f = (f + a + k[i] + w[(5 * i + 1) % 16]) & M32
                a, d, c, bb = d, c, bb, (bb + _rotl(f, s[i])) & M32
            for i in range(32, 48):
                f = ((bb ^ c ^ d) + a + k[i] + w[(3 * i + 5) % 16]) & M32
                a, d, c, bb = d, c, bb, (bb + _rotl(f, s[i])) & M32
            for i in range(48, 64):
                f = c ^ (bb | (~d & M32))
                f = (f + a + k[i] + w[(7 * i) % 16]) & M32
                a, d, c, bb = d, c, bb, (bb + _rotl(f, s[i])) & M32
            a0 = (a0 + a) & M32
            b0 = (b0 + bb) & M32
            c0 = (c0 + c) & M32
            d0 = (d0 + d) & M32
        for j, word in enumerate((a0, b0, c0, d0)):
            for i in range(4):
                digest[4 * j + i] = np.uint8((word >> np.uint64(8 * i)) & np.uint64(0xFF))
        _emit(digest, 16, r, out_hex, out_prefix, hexchars)


@nb.njit(cache=True)
def _sha1_rows(data: np.ndarray, offsets: np.ndarray, out_hex: np.ndarray, out_prefix: np.ndarray) -> None:
    hexchars = _HEXCHARS
    buf = np.empty(64, dtype=np.uint8)
    w = np.empty(80, dtype=np.uint64)
    digest = np.empty(20, dtype=np.uint8)
    for r in range(len(offsets) - 1):
        start = offsets[r]
        length = offsets[r + 1] - start
        nblocks = (length + 8) // 64 + 1
        h0 = np.uint64(0x67452301)
        h1 = np.uint64(0xEFCDAB89)
        h2 = np.uint64(0x98BADCFE)
        h3 = np.uint64(0x10325476)
        h4 = np.uint64(0xC3D2E1F0)
        for b in range(nblocks):
            _block(data, start, length, b, nblocks, True, buf)
            for i in range(16):
                w[i] = (
                    (np.uint64(buf[4 * i]) << np.uint64(24))
                    | (np.uint64(buf[4 * i + 1]) << np.uint64(16))
                    | (np.uint64(buf[4 * i + 2]) << np.uint64(8))
                    | np.uint64(buf[4 * i + 3])
                )
            for i in range(16, 80):
                w[i] = _rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], np.uint64(1))
            a, bb, c, d, e = h0, h1, h2, h3, h4
            for i in range(20):  # four rounds of 20, split so no loop body branches
                t = (_rotl(a, np.uint64(5)) + ((bb & c) | ((~bb & M32) & d)) + e + np.uint64(0x5A827999) + w[i]) & M32
                e, d, c, bb, a = d, c, _rotl(bb, np.uint64(30)), a, t
            for i in range(20, 40):
                t = (_rotl(a, np.uint64(5)) + (bb ^ c ^ d) + e + np.uint64(0x6ED9EBA1) + w[i]) & M32
                e, d, c, bb, a = d, c, _rotl(bb, np.uint64(30)), a, t
            for i in range(40, 60):
                f = (bb & c) | (bb & d) | (c & d)
                t = (_rotl(a, np.uint64(5)) + f + e + np.uint64(0x8F1BBCDC) + w[i]) & M32
                e, d, c, bb, a = d, c, _rotl(bb, np.uint64(30)), a, t
            for i in range(60, 80):
                t = (_rotl(a, np.uint64(5)) + (bb ^ c ^ d) + e + np.uint64(0xCA62C1D6) + w[i]) & M32
                e, d, c, bb, a = d, c, _rotl(bb, np.uint64(30)), a, t
            h0 = (h0 + a) & M32
            h1 = (h1 + bb) & M32
            h2 = (h2 + c) & M32
            h3 = (h3 + d) & M32
            h4 = (h4 + e) & M32
        for j, word in enumerate((h0, h1, h2, h3, h4)):
            for i in range(4):
                digest[4 * j + i] = np.uint8((word >> np.uint64(8 * (3 - i))) & np.uint64(0xFF))
        _emit(digest, 20, r, out_hex, out_prefix, hexchars)


@nb.njit(cache=True, inline="always")
def _emit(
    digest: np.ndarray, n: int, r: int, out_hex: np.ndarray, out_prefix: np.ndarray, hexchars: np.ndarray
) -> None:
    p = np.uint64(0)
    for i in range(n):
        v = digest[i]
        out_hex[r, 2 * i] = hexchars[v >> 4]
        out_hex[r, 2 * i + 1] = hexchars[v & 15]
        if i < 8:
            p = (p << np.uint64(8)) | np.uint64(v)
    out_prefix[r] = p


@nb.njit(cache=True)
def _hex_prefix_rows(data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """First 16 hex digits of each (checked, lower-case) value as an integer: the prefilter's key."""
    for r in range(len(offsets) - 1):
        start = offsets[r]
        p = np.uint64(0)
        for i in range(16):
            c = data[start + i]
            v = c - 48 if c <= 57 else c - 87
            p = (p << np.uint64(4)) | np.uint64(v)
        out[r] = p


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(data bytes, offsets) of a string/binary array, honouring its slice offset."""
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=arr.offset + n + 1)[arr.offset :]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and len(bufs[2]) else np.zeros(1, np.uint8)
    return data, offsets.astype(np.int64)


def digest_column(arr: pa.Array, algorithm: str) -> tuple[pa.Array, np.ndarray]:
    """Hex digests (a string column) and 64-bit prefixes of every value of ``arr`` (no nulls expected)."""
    nbytes = NBYTES[algorithm]
    n = len(arr)
    out_hex = np.empty((n, 2 * nbytes), dtype=np.uint8)
    prefix = np.empty(n, dtype=np.uint64)
    if n:
        data, offsets = _buffers(arr)
        if algorithm == "md5":
            _md5_rows(data, offsets, out_hex, prefix, _MD5_S, _MD5_K)
        else:
            _sha1_rows(data, offsets, out_hex, prefix)
    offs = np.arange(0, (n + 1) * 2 * nbytes, 2 * nbytes, dtype=np.int32)
    hexes = pa.StringArray.from_buffers(n, pa.py_buffer(offs), pa.py_buffer(out_hex))
    return hexes, prefix


def hex_prefixes(arr: pa.Array) -> np.ndarray:
    """64-bit prefixes of hex values (each at least 16 lower-case hex digits, no nulls)."""
    out = np.empty(len(arr), dtype=np.uint64)
    if len(arr):
        data, offsets = _buffers(arr)
        _hex_prefix_rows(data, offsets, out)
    return out


@nb.njit(cache=True)
def _normal_rows(data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """The test of ``urlscan.NORMAL_URL`` (and no trailing "?"), byte by byte: [a-z][a-z0-9+.-]* "://"
    [a-z0-9.-_~%!$&'()*+,;=]+ "/" then printable ASCII other than space and "#"."""
    for r in range(len(offsets) - 1):
        i = offsets[r]
        end = offsets[r + 1]
        ok = i < end and 97 <= data[i] <= 122
        i += 1
        while ok and i < end:  # scheme
            c = data[i]
            if 97 <= c <= 122 or 48 <= c <= 57 or c == 43 or c == 46 or c == 45:
                i += 1
            else:
                break
        ok = ok and i + 3 <= end and data[i] == 58 and data[i + 1] == 47 and data[i + 2] == 47
        i += 3
        host_start = i
        while ok and i < end:  # host: a-z 0-9 . - _ ~ % ! $ & ' ( ) * + , ; =
            c = data[i]
            if (
                97 <= c <= 122
                or 48 <= c <= 57
                or c == 46
                or c == 45
                or c == 95
                or c == 126
                or c == 37
                or c == 33
                or c == 36
                or 38 <= c <= 44
                or c == 59
                or c == 61
            ):
                i += 1
            else:
                break
        ok = ok and i > host_start and i < end and data[i] == 47
        i += 1
        while ok and i < end:  # path, query: printable ASCII without space and "#"
            c = data[i]
            if c < 33 or c > 126 or c == 35:
                ok = False
            i += 1
        if ok and data[end - 1] == 63:  # a trailing "?" (empty query) is dropped by normalisation
            ok = False
        out[r] = ok


def normal_form_mask(arr: pa.Array) -> np.ndarray:
    """True for values that ``normalize_url`` returns unchanged by the rules of ``urlscan.NORMAL_URL``."""
    out = np.zeros(len(arr), dtype=np.bool_)
    if len(arr):
        data, offsets = _buffers(arr)
        _normal_rows(data, offsets, out)
    return out


@nb.njit(cache=True)
def _interleave(
    data: np.ndarray, offsets: np.ndarray, present: np.ndarray, out_data: np.ndarray, out_offsets: np.ndarray
) -> None:
    n, k = present.shape
    pos = 0
    j = 0
    out_offsets[0] = 0
    for r in range(n):
        for c in range(k):
            if present[r, c]:
                for b in range(offsets[c, r], offsets[c, r + 1]):
                    out_data[pos] = data[b]
                    pos += 1
                j += 1
                out_offsets[j] = pos


def interleave(columns: list[pa.Array], present: np.ndarray) -> pa.Array:
    """The values of ``columns`` (string arrays of equal length) in row-major order where ``present``
    (n, k) is set: row 0's values of column 0, 1, ..., then row 1's, as one string array."""
    n, k = present.shape
    datas = []
    offsets = np.empty((k, n + 1), dtype=np.int64)
    base = 0
    total = 0
    for c, col in enumerate(columns):
        data, offs = _buffers(col)
        lo, hi = int(offs[0]), int(offs[-1])
        datas.append(data[lo:hi])  # a slice's buffer may hold a whole row group: copy only its own bytes
        offsets[c] = offs + (base - lo)
        base += hi - lo
        total += int((offs[1:] - offs[:-1])[present[:, c]].sum())
    count = int(present.sum())
    out_data = np.empty(max(total, 1), dtype=np.uint8)
    out_offsets = np.empty(count + 1, dtype=np.int32)
    _interleave(np.concatenate(datas), offsets, present, out_data, out_offsets)
    return pa.StringArray.from_buffers(count, pa.py_buffer(out_offsets), pa.py_buffer(out_data[:total]))


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel, so forked workers inherit them ready."""
    arr = pa.array(["https://example.org/a"], pa.string())
    digest_column(arr, "md5")
    digest_column(arr, "sha1")
    hex_prefixes(pa.array(["0" * 32], pa.string()))
    normal_form_mask(arr)
    interleave([arr, arr], np.ones((1, 2), dtype=bool))
