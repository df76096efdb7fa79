"""URL normalisation: same resource -> same hash; different resource -> different hash."""

from __future__ import annotations

import pytest

from cleanset.signals.url import UrlMd5Signal, UrlSha1Signal, normalize_url


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://EXAMPLE.com/a", "http://example.com/a"),
        ("HTTP://example.com/a", "http://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com/a#top", "http://example.com/a"),
        ("http://example.com", "http://example.com/"),
        ("\thttp://example.com/a \n", "http://example.com/a"),
        ("http://example.com:/a", "http://example.com/a"),
    ],
)
def test_equivalent_spellings_hash_alike(a: str, b: str) -> None:
    assert normalize_url(a) == normalize_url(b)
    assert UrlSha1Signal.compute_url(a) == UrlSha1Signal.compute_url(b)
    assert UrlMd5Signal.compute_url(a) == UrlMd5Signal.compute_url(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://example.com/A", "http://example.com/a"),  # path case matters
        ("http://example.com/a?x=1&y=2", "http://example.com/a?y=2&x=1"),  # query order kept
        ("http://example.com:8080/a", "http://example.com/a"),  # non-default port kept
        ("https://example.com/a", "http://example.com/a"),  # scheme kept
        ("http://example.com/a/", "http://example.com/a"),  # trailing slash kept
        ("http://www.example.com/a", "http://example.com/a"),  # www kept
        ("http://example.com/%41", "http://example.com/A"),  # no percent-decoding
        ("http://example.com:443/a", "http://example.com/a"),  # 443 is not http's default
    ],
)
def test_different_resources_hash_differently(a: str, b: str) -> None:
    assert normalize_url(a) != normalize_url(b)
    assert UrlSha1Signal.compute_url(a) != UrlSha1Signal.compute_url(b)


def test_normalisation_is_idempotent() -> None:
    for url in ["HTTP://A.example:80/P?q#f", "ftp://[2001:DB8::1]:2121/x", "https://u:p@H.example/"]:
        once = normalize_url(url)
        assert normalize_url(once) == once
