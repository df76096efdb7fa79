"""A bank version's Hamming indexes on disk: built once, when the version is imported, and mapped by every process
that opens the version.

At 10 million PDQ entries building the tables costs about 4 s of CPU, and more on a server busy answering: a
service's reload could make a new version live only once its own build was done, and every process that opened
the bank built its own copy. Mapping stored tables takes about 1 s, and processes on one machine share the pages.

    <version>/index/<signal>/index.json   layout (chunk widths, list bases), SHA-256 of each table and of the
                                          values indexed
                             slots.npy    one uint32 per chunk value: empty, an entry id, or a list's place
                             lists.npy    a count and the entry ids, for each value entries share

The tables are written into the version's directory before it is renamed into place (``write_indexes`` is the
store's ``prepare`` step), so a version is never visible without them, and nothing in a version is rewritten
afterwards. The values are the version's own ``values/<signal>.npy``, mapped: never a second copy. Opening
checks every table's SHA-256, its bounds, and the SHA-256 of the values it was built from. A version without
stored tables (imported before they were stored, or by a store without ``prepare``), or with tables that fail a
check, is indexed in memory as before: exact either way, and a failed check is logged with the file it names.

What the checks guard against is damage and mix-ups (a truncated copy, tables of another version or bank), not a
rewrite by someone who can write to the bank store: the digests sit beside the tables, as the values' own do, and
whoever can rewrite one can rewrite the other. The store is owner-only for that reason. ``HammingIndex.load(...,
deep=True)`` proves every id is filed under its own value (slower than a build: for audits, not for every open).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cleanset.banks.snapshot import StoredBank
from cleanset.errors import InputFormatError
from cleanset.matching.base import META_FILE, to_words
from cleanset.matching.hamming import HammingIndex
from cleanset.signals import get_signal
from cleanset.signals.base import Metric

INDEX_DIR = "index"

log = logging.getLogger("cleanset.matching")


def index_dir(version_dir: Path, signal: str) -> Path:
    return version_dir / INDEX_DIR / signal


def write_indexes(version_dir: Path) -> list[str]:
    """Build and save the Hamming index of every distance signal the version holds; returns those signals. A
    bank small enough to be answered by a linear scan gets none (nothing to store)."""
    snap = StoredBank(version_dir)
    written = []
    for signal in snap.signals():
        if get_signal(signal).metric is not Metric.HAMMING:
            continue
        index = HammingIndex.build(np.asarray(snap.values(signal)), threshold_hint=snap.threshold(signal))
        if not index.widths:
            continue
        target = index_dir(version_dir, signal)
        target.mkdir(parents=True, mode=0o700)
        index.save(target, words=False)
        written.append(signal)
    return written


def hamming_index(snapshot: object, signal: str, values: np.ndarray, threshold: int) -> HammingIndex:
    """The version's stored index of ``signal`` when it has a sound one, otherwise one built now from ``values``."""
    directory = getattr(snapshot, "directory", None)
    if isinstance(directory, Path):
        where = index_dir(directory, signal)
        if (where / META_FILE).is_file():
            try:
                return HammingIndex.load(where, words=to_words(np.asarray(values)))
            except (InputFormatError, OSError, ValueError) as e:
                log.warning("stored %s index of %s not used, indexing in memory instead: %s", signal, directory, e)
    return HammingIndex.build(values, threshold_hint=threshold)
