"""DSSE (Dead Simple Signing Envelope, secure-systems-lab/dsse v1) with Ed25519 keys.

The signature covers PAE(payloadType, payload), never the JSON around it, so re-encoding the envelope cannot change
what was signed and a payload cannot be passed off as another type. ``keyid`` is only a hint for picking a key: the
verifier always checks the signature itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleanset.errors import UserError, VerificationError


def pae(payload_type: str, body: bytes) -> bytes:
    """Pre-Authentication Encoding: ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def keyid(public_key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the key's DER SubjectPublicKeyInfo: the same key always gets the same id."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(
        "ascii"
    )


def generate_keypair(out_dir: Path) -> tuple[Path, Path]:
    """Write ``cleanset.key`` (PKCS#8 PEM, mode 0600, created that way so it is never readable by others) and
    ``cleanset.pub`` into ``out_dir``; refuses to overwrite an existing key."""
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        os.chmod(out_dir, 0o700)  # a key folder made here is owner-only whatever the umask
    priv_path, pub_path = out_dir / "cleanset.key", out_dir / "cleanset.pub"
    for p in (priv_path, pub_path):
        if p.exists():
            raise UserError(f"{p}: already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub_path.write_text(public_pem(key.public_key()))
    return priv_path, pub_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise UserError(f"{path}: no such key file") from None
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: no such public key file") from None
    except ValueError as e:
        raise UserError(f"{path}: not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path}: not an Ed25519 public key")
    return key


def parse_public_pem(text: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise VerificationError(f"embedded public key is not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationError("embedded public key is not Ed25519")
    return key


def sign_envelope(payload: bytes, payload_type: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    sig = key.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": keyid(key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}],
    }


@dataclass(frozen=True)
class OpenedEnvelope:
    payload_type: str
    payload: bytes
    signatures: list[tuple[str, bytes]]  # (keyid or "", raw signature)


def _b64(text: Any, what: str) -> bytes:
    """DSSE lets signers use standard or URL-safe base64; verifiers accept both."""
    if not isinstance(text, str):
        raise VerificationError(f"envelope {what} is not a base64 string")
    try:
        std = text.replace("-", "+").replace("_", "/")
        return base64.b64decode(std + "=" * (-len(std) % 4), validate=True)  # URL-safe form may drop padding
    except (binascii.Error, ValueError):
        raise VerificationError(f"envelope {what} is not valid base64") from None


def open_envelope(path: Path) -> OpenedEnvelope:
    """Parse an envelope file; anything malformed inside it is a failed verification (the file was given, so it
    is what is being checked), a missing file is a usage error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such attestation file") from None
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VerificationError(f"{path}: not a JSON DSSE envelope ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("payloadType"), str):
        raise VerificationError(f"{path}: not a DSSE envelope (payloadType missing)")
    sigs = doc.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise VerificationError(f"{path}: DSSE envelope has no signatures")
    out: list[tuple[str, bytes]] = []
    for s in sigs:
        if not isinstance(s, dict):
            raise VerificationError(f"{path}: malformed signature entry")
        kid = s.get("keyid") or ""
        out.append((str(kid), _b64(s.get("sig"), "signature")))
    return OpenedEnvelope(doc["payloadType"], _b64(doc.get("payload"), "payload"), out)


def verify_envelope(env: OpenedEnvelope, public_key: Ed25519PublicKey) -> str:
    """Return the keyid of the key that verified; raise VerificationError when no signature verifies with it."""
    message = pae(env.payload_type, env.payload)
    want = keyid(public_key)
    for _kid, sig in env.signatures:
        try:
            public_key.verify(sig, message)
        except InvalidSignature:
            continue
        return want
    kids = ", ".join(k or "(none)" for k, _ in env.signatures)
    raise VerificationError(
        f"signature does not verify with public key {want} (envelope signed by keyid {kids}): "
        "the attestation was altered or signed with another key"
    )
