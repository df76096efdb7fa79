"""Which signal names a list may use, and what each one means for the bank.

Lists arrive from many exchanges, each spelling signal types its own way. One table maps every accepted spelling
to the bank signal it fills, so all formats agree on what ``video_md5`` or ``url`` means. A raw URL is never kept:
it is hashed with the ``url_sha1`` signal's normalisation on import.
"""

from __future__ import annotations

from cleanset.signals import bank_signals, get_signal

#: Signals a bank may hold (the matcher keeps one index per signal): what the registered signals match
#: (``Signal.matches``), sorted; this name is the table at import, ``bank_signals()`` the live one.
BANK_SIGNALS: tuple[str, ...] = bank_signals()

#: The pseudo-signal of a readable URL in an input list; hashed to ``URL_TARGET`` on import.
RAW_URL = "url"
URL_TARGET = "url_sha1"

#: Other spellings, as python-threatexchange names its signal types (``SignalType.get_name()``): its MD5 and
#: SHA-256 types are called ``video_md5`` / ``video_sha256`` but are plain file digests, the same as ours.
ALIASES: dict[str, str] = {
    "video_md5": "md5",
    "video_sha256": "sha256",
    "photo_md5": "md5",
}


def resolve(name: str) -> str | None:
    """The bank signal (or ``url``) an input's signal type names, or None when cleanset cannot hold it."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in bank_signals() or key == RAW_URL:
        return key
    return None


def accepted_names() -> list[str]:
    return sorted({*bank_signals(), RAW_URL, *ALIASES})


def hex_len(signal: str) -> int:
    """Hex digits of one value of a bank signal."""
    return get_signal(signal).bits // 4


def url_hash(url: str) -> str:
    """The ``url_sha1`` value of a raw URL (its normalisation is the signal's, so scans and banks agree)."""
    sig = get_signal(URL_TARGET)
    return sig.compute_url(url)  # type: ignore[attr-defined]
