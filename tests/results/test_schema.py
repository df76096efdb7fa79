"""Probes a hash column holds are stored once; every reader gets the complete probe list back."""

from __future__ import annotations

from cleanset.records import ItemResult, Match, Probe, Status, Verdict
from cleanset.runs.schema import from_rows, to_table, with_full_probes

MD5 = "0f" * 16
PHASH = "ab" * 8
PDQ = "11" * 32


def _item(key: str, **kw: object) -> ItemResult:
    probes = [
        Probe("md5", "md5", MD5),
        Probe("phash", "phash", PHASH),
        Probe("pdq/original", "pdq", PDQ, 90),
        Probe("given/md5", "md5", "22" * 16),  # disagrees with the file's md5: not a column value, stays stored
    ]
    base = dict(hashes={"md5": MD5, "phash": PHASH, "pdq": PDQ}, probes=probes)
    base.update(kw)
    return ItemResult(key, "s0", Status.OK, None, Verdict.KEEP, **base)  # type: ignore[arg-type]


def test_column_probes_are_stored_once_and_read_back_whole() -> None:
    items = [
        _item("a", matches=[Match("b", 1, "e1", "md5", 0, "md5")]),
        ItemResult("f", "s0", Status.FAILED, "decode: truncated", None),
        _item("c", hashes={"md5": MD5}, probes=[Probe("md5", "md5", MD5), Probe("phash", "phash", PHASH)]),
    ]
    table = to_table(items)
    stored = table.column("probes").to_pylist()
    assert [p["name"] for p in stored[0]] == ["pdq/original", "given/md5"]
    assert stored[1] == []
    # the phash probe of "c" has no phash column value to stand for it, so it is kept
    assert [p["name"] for p in stored[2]] == ["phash"]

    back = from_rows(table.to_pylist())
    assert back[0].probes == items[0].probes  # canonical order: column probes first, as the engine emits them
    assert back[1].probes == []
    assert [p.name for p in back[2].probes] == ["md5", "phash"]
    assert back[0].matches == items[0].matches

    full = with_full_probes(table).column("probes").to_pylist()
    assert full == [[{"name": p.name, "signal": p.signal, "value": p.value, "quality": p.quality} for p in r.probes]
                    for r in back]  # fmt: skip
