"""URL signals (url_md5, url_sha1): digests of a normalised URL, for hotline lists that carry URL hashes.

Two spellings of the same address must give the same hash, and two different resources must not, so only the
parts of a URL that are case-insensitive or redundant by definition (RFC 3986 section 6) are normalised:

1. Surrounding whitespace is removed.
2. The scheme and the host are lower-cased (user info, path and query keep their case: servers may treat them
   case-sensitively).
3. A default port is dropped: ``:80`` for http, ``:443`` for https, ``:21`` for ftp. An empty port (``host:``)
   is dropped too.
4. The fragment (``#...``) is dropped: it never reaches the server.
5. An empty path after a host becomes ``/`` (``http://a.example`` and ``http://a.example/`` are one resource).
6. Path and query are kept byte for byte: no percent-decoding, no re-ordering of query parameters, no removal of
   ``www.`` or of trailing slashes (those can name different resources).

A string without ``scheme://`` is not parsed; only rules 1 and 4 apply to it. The digest is taken over the UTF-8
bytes of the normalised string and written as lower-case hex.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from cleanset.signals import SIGNALS
from cleanset.signals.base import Metric, SignalExample, UrlSignal

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def normalize_url(url: str) -> str:
    """The URL in the normal form described in the module docstring."""
    text = url.strip()
    if "://" not in text:
        return text.split("#", 1)[0]
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    host, port = hostport, ""
    if hostport.startswith("["):  # IPv6 literal
        end = hostport.find("]")
        if end != -1:
            host, rest = hostport[: end + 1], hostport[end + 1 :]
            port = rest[1:] if rest.startswith(":") else ""
    elif ":" in hostport:
        host, _, port = hostport.rpartition(":")
    host = host.lower()
    default_port = port == "" or (port.isdigit() and DEFAULT_PORTS.get(scheme) == int(port))
    hostport = host if default_port else f"{host}:{port}"
    netloc = f"{userinfo}@{hostport}" if userinfo or "@" in netloc else hostport
    path = parts.path if parts.path or not netloc else "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


# (input, normalised form) pairs that spell out the rules; expected digests are taken of the literal right-hand
# side, so the examples check the normaliser as well as the digest.
NORMALISATION_CASES: tuple[tuple[str, str], ...] = (
    ("HTTP://Example.COM:80/Path/A?Q=1#frag", "http://example.com/Path/A?Q=1"),
    ("  https://example.org:443  ", "https://example.org/"),
    ("https://example.org:8443/x?b=2&a=1", "https://example.org:8443/x?b=2&a=1"),
    ("http://User@Host.example/%7Efoo", "http://User@host.example/%7Efoo"),
    ("ftp://[2001:DB8::1]:21/file", "ftp://[2001:db8::1]/file"),
    ("example.com/no-scheme#x", "example.com/no-scheme"),
)


class _UrlDigest(UrlSignal):
    metric = Metric.EXACT
    default_threshold = 0
    by_default = True
    algorithm: ClassVar[str]

    @classmethod
    def compute_url(cls, url: str) -> str:
        return hashlib.new(cls.algorithm, normalize_url(url).encode("utf-8"), usedforsecurity=False).hexdigest()

    @classmethod
    def examples(cls) -> Sequence[SignalExample]:
        return [
            SignalExample(raw, hashlib.new(cls.algorithm, norm.encode()).hexdigest(), note=norm)
            for raw, norm in NORMALISATION_CASES
        ]


@SIGNALS.register("url_md5")
class UrlMd5Signal(_UrlDigest):
    name = "url_md5"
    column = "url_md5"
    rank = 70
    bits = 128
    algorithm = "md5"


@SIGNALS.register("url_sha1")
class UrlSha1Signal(_UrlDigest):
    name = "url_sha1"
    column = "url_sha1"
    rank = 80
    bits = 160
    algorithm = "sha1"
