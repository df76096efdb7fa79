"""The Merkle tree against RFC 6962's recursive definition, and DSSE's PAE against the spec's test vector."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from cleanset.actions import dsse
from cleanset.actions.merkle import EMPTY_ROOT, dataset_root, leaf_data, shard_root, tree_hash
from cleanset.errors import UserError, VerificationError


def rfc6962(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1 (recursive, split at the largest power of two below n)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + rfc6962(leaves[:k]) + rfc6962(leaves[k:])).digest()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 100])
def test_tree_hash_is_rfc6962(n: int) -> None:
    leaves = [os.urandom(40) for _ in range(n)]
    assert tree_hash(leaves) == rfc6962(leaves)


def test_shard_root_is_order_independent_and_sensitive() -> None:
    entries = [(f"k{i}", hashlib.sha256(bytes([i])).hexdigest()) for i in range(11)]
    root = shard_root(entries)
    assert root == shard_root(list(reversed(entries)))
    assert root == rfc6962([leaf_data(k, d) for k, d in sorted(entries)]).hex()
    renamed = [("k99" if k == "k3" else k, d) for k, d in entries]
    altered = [(k, hashlib.sha256(b"x").hexdigest() if k == "k3" else d) for k, d in entries]
    assert len({root, shard_root(renamed), shard_root(altered), shard_root(entries[:-1])}) == 4
    assert shard_root([]) == EMPTY_ROOT == dataset_root({})
    # Moving an item to another shard changes the overall root even though the leaf set is the same.
    a = dataset_root({"s0": shard_root(entries[:5]), "s1": shard_root(entries[5:])})
    b = dataset_root({"s0": shard_root(entries[:6]), "s1": shard_root(entries[6:])})
    assert a != b


def test_pae_matches_spec_vector() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    # Lengths are in bytes, not characters.
    assert dsse.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_keygen_sign_verify_roundtrip(tmp_path: Path) -> None:
    priv, pub = dsse.generate_keypair(tmp_path / "keys")
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    key = dsse.load_private_key(priv)
    env = dsse.sign_envelope(b'{"a":1}', "application/vnd.in-toto+json", key)
    f = tmp_path / "env.json"
    f.write_text(json.dumps(env))
    opened = dsse.open_envelope(f)
    assert dsse.verify_envelope(opened, dsse.load_public_key(pub)) == env["signatures"][0]["keyid"]
    # URL-safe base64 is accepted too (DSSE requires verifiers to take either).
    urlsafe = env["signatures"][0]["sig"].replace("+", "-").replace("/", "_").rstrip("=")
    env2 = dict(env, signatures=[{"sig": urlsafe}])
    f.write_text(json.dumps(env2))
    dsse.verify_envelope(dsse.open_envelope(f), dsse.load_public_key(pub))
    other = dsse.generate_keypair(tmp_path / "other")[1]
    with pytest.raises(VerificationError, match="does not verify"):
        dsse.verify_envelope(opened, dsse.load_public_key(other))
    with pytest.raises(UserError, match="already exists"):
        dsse.generate_keypair(tmp_path / "keys")
    with pytest.raises(UserError, match="not an unencrypted PEM private key"):
        dsse.load_private_key(pub)
