"""Session fixtures of the signal tests: the real-photo corpus is hashed once, by cleanset and the references."""

from __future__ import annotations

import pytest
from reference_hashes import PhotoResult, hash_corpus


@pytest.fixture(scope="session")
def corpus_results() -> list[PhotoResult]:
    return hash_corpus()
