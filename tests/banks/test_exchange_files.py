"""Files exchanges produce: python-threatexchange's `tx` output and NCMEC hash-sharing API responses (XML), plus
re-importing an unchanged list. Every value is a seeded stand-in; the XML follows the element names
python-threatexchange's NCMEC client reads."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from bank_samples import hexes, write

from cleanset.banks.formats import detect
from cleanset.banks.formats import get_format as fmt_named
from cleanset.banks.store import BankStore
from cleanset.errors import InputFormatError

PDQ = hexes("pdq", 6, 81)
MD5 = hexes("md5", 6, 82)
SHA1 = hexes("sha1", 4, 83)
PDNA = base64.b64encode(bytes(range(144))).decode()  # stand-in of PhotoDNA's length


def parse(name: str, path: Path, **kw: object) -> tuple[list, object]:
    fmt = fmt_named(name)
    return list(fmt.parse(path, **kw)), fmt  # type: ignore[arg-type]


def triples(rows: list) -> list[tuple[str, str, str]]:
    return sorted((r.signal, r.value, r.entry_id) for r in rows)


@pytest.fixture()
def store(cleanset_home: Path) -> BankStore:
    return BankStore.default()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, timeout=120, check=False
    )


# -- python-threatexchange ---------------------------------------------------------------------------------------


def test_tx_dataset_csv(tmp_path: Path) -> None:
    lines = [
        "signal_type,signal_str,collab,category,tags",
        f"pdq,{PDQ[0]},Sample Collab,TRUE_POSITIVE,tag-a tag-b",
        f"pdq,{PDQ[1]},Sample Collab,FALSE_POSITIVE,",
        f"video_md5,{MD5[0]},Other,POSITIVE_CLASS,",
        f"pdq,{PDQ[2]},Other,NEGATIVE_CLASS,",
        f"photodna,{PDNA},Other,TRUE_POSITIVE,",
        f"pdq,{PDQ[3]},Other,WORTH_INVESTIGATING,",
    ]
    f = write(tmp_path / "collab.csv", "\n".join(lines) + "\n")
    assert detect(f).name == "txcsv"
    rows, fmt = parse("txcsv", f)
    assert triples(rows) == sorted([("pdq", PDQ[0], "2"), ("md5", MD5[0], "4"), ("pdq", PDQ[3], "7")])
    assert rows[0].labels == {"collab": "Sample Collab", "category": "TRUE_POSITIVE", "tags": "tag-a tag-b"}
    assert fmt.notes == [  # type: ignore[attr-defined]
        "1 PhotoDNA value skipped: PhotoDNA is proprietary and not computed by cleanset",
        "2 lines the exchange marks as false positives (category FALSE_POSITIVE / NEGATIVE_CLASS) left out",
    ]
    # read as the long csv shape, the header error names the format that reads it
    with pytest.raises(InputFormatError, match=r"tx dataset -P --csv.*--format txcsv"):
        parse("csv", f)


def test_tx_dataset_older_column_order(tmp_path: Path) -> None:
    f = write(tmp_path / "c.csv", f"collab,signal_type,signal_str,category,tags\nC,pdq,{PDQ[0]},TRUE_POSITIVE,\n")
    assert detect(f).name == "txcsv"
    assert triples(parse("txcsv", f)[0]) == [("pdq", PDQ[0], "2")]


def test_tx_print_with_metadata_names_the_command_to_use(tmp_path: Path) -> None:
    f = write(tmp_path / "tx.txt", f"pdq {PDQ[0]}\npdq {PDQ[1]} 'Sample Collab' FetchedSignalMetadata()\n")
    assert detect(f).name == "te"
    with pytest.raises(InputFormatError) as info:
        parse("te", f)
    msg = str(info.value)
    assert msg.startswith(f"{f}:2: ") and "tx dataset -P -S" in msg and "tx dataset -P --csv" in msg
    assert PDQ[1] not in msg


def test_tx_local_file_counts_photodna(tmp_path: Path) -> None:
    f = write(tmp_path / "local.txt", f"pdq {PDQ[0]}\nphotodna {PDNA}\nvideo_md5 {MD5[0]}\n")
    rows, fmt = parse("te", f)
    assert triples(rows) == sorted([("pdq", PDQ[0], "1"), ("md5", MD5[0], "3")])
    assert fmt.notes == ["1 PhotoDNA value skipped: PhotoDNA is proprietary and not computed by cleanset"]  # type: ignore[attr-defined]


# -- NCMEC hash-sharing API XML ----------------------------------------------------------------------------------

NS = "https://hashsharing.ncmec.org/hashsharing/v2"


def entries_xml(images: str, videos: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<queryResult xmlns="{NS}">\n'
        f'  <images count="3" maxTimestamp="2020-01-01T00:00:00Z">\n{images}  </images>\n'
        f'  <videos count="1" maxTimestamp="2020-01-01T00:00:00Z">\n{videos}  </videos>\n'
        "  <paging><next>/v2/entries?from=x&amp;start=2&amp;size=1&amp;max=3</next></paging>\n"
        "</queryResult>\n"
    )


def image(eid: str, member: str, fingerprints: str, classification: str = "A1") -> str:
    return (
        "    <image>\n"
        f'      <member id="{member}">Example Member</member>\n'
        "      <timestamp>2020-01-01T00:00:00Z</timestamp>\n"
        f"      <id>{eid}</id>\n"
        f"      <classification>{classification}</classification>\n"
        f"      <fingerprints>\n{fingerprints}      </fingerprints>\n"
        '      <feedback lastUpdateTimestamp="2020-01-01T00:00:00Z"><affirmativeFeedback type="Md5"/></feedback>\n'
        "    </image>\n"
    )


def test_ncmec_entries(tmp_path: Path) -> None:
    images = (
        image(
            "image1",
            "42",
            f"        <md5>{MD5[0]}</md5>\n        <sha1>{SHA1[0]}</sha1>\n        <pdna>{PDNA}</pdna>\n",
        )
        + image("image2", "42", f"        <md5>{MD5[1].upper()}</md5>\n        <pdq>{PDQ[1]}</pdq>\n", "B1")
        + image("image3", "43", f"        <md5>{MD5[2]}</md5>\n")
        + '    <deletedImage><member id="43">M</member><id>image3</id></deletedImage>\n'
    )
    videos = (
        "    <video>\n"
        '      <member id="42">Example Member</member><id>video1</id>\n'
        f"      <fingerprints><md5>{MD5[3]}</md5>"
        '<tmk-pdqf rel="self" href="/v2/entries/1/fingerprints/TMK_PDQF"/>'
        '<videntifier rel="self" href="/v2/entries/1/fingerprints/VIDENTIFIER"/></fingerprints>\n'
        "    </video>\n"
    )
    f = write(tmp_path / "entries.xml", entries_xml(images, videos))
    assert detect(f).name == "ncmec"
    rows, fmt = parse("ncmec", f)
    assert triples(rows) == sorted(
        [
            ("md5", MD5[0], "42-image1"),
            ("sha1", SHA1[0], "42-image1"),
            ("md5", MD5[1], "42-image2"),
            ("pdq", PDQ[1], "42-image2"),
            ("md5", MD5[3], "42-video1"),
        ]
    )
    by_id = {r.entry_id: r.labels for r in rows}
    assert by_id["42-image2"] == {"media": "image", "category": "B1", "member": "42"}
    assert by_id["42-video1"] == {"media": "video", "member": "42"}
    assert [r.line for r in rows if r.signal == "sha1"] == [11]
    assert fmt.notes == [  # type: ignore[attr-defined]
        "1 PhotoDNA value skipped: PhotoDNA is proprietary and not computed by cleanset",
        "1 TMK+PDQF value skipped: video signals are not computed by cleanset",
        "1 Videntifier value skipped: Videntifier is proprietary and not computed by cleanset",
        "1 deleted entry applied",
    ]


def test_ncmec_errors_name_element_and_line(tmp_path: Path) -> None:
    bad = PDQ[0][:-1]
    f = write(
        tmp_path / "e.xml",
        entries_xml(image("i1", "1", f"<md5>{MD5[0]}</md5>\n") + image("i2", "1", f"<pdq>{bad}</pdq>\n")),
    )
    with pytest.raises(InputFormatError) as info:
        parse("ncmec", f)
    msg = str(info.value)
    assert msg.startswith(f"{f}:20: <image> entry 2, <pdq>: pdq value must be 64 hex digits, got 63")
    assert bad not in msg
    rows, fmt = parse("ncmec", f, skip_invalid=True)
    assert len(rows) == 1 and fmt.skipped == 1  # type: ignore[attr-defined]

    no_id = write(
        tmp_path / "n.xml", entries_xml(f"    <image><fingerprints><md5>{MD5[0]}</md5></fingerprints></image>\n")
    )
    with pytest.raises(InputFormatError, match=r"n\.xml:4: <image> entry 1: no <id>"):
        parse("ncmec", no_id)
    broken = write(
        tmp_path / "b.xml", entries_xml(image("i1", "1", f"<md5>{MD5[0]}</md5>\n")).replace("</images>", "", 1)
    )
    with pytest.raises(InputFormatError, match=r"b\.xml:\d+: malformed XML \(mismatched tag\)"):
        parse("ncmec", broken)
    doctype = write(
        tmp_path / "d.xml",
        '<?xml version="1.0"?>\n<!DOCTYPE queryResult [<!ENTITY x "y">]>\n<queryResult><images/></queryResult>\n',
    )
    with pytest.raises(InputFormatError, match=r"d\.xml:2: a DOCTYPE is not accepted"):
        parse("ncmec", doctype)
    other = write(tmp_path / "o.xml", "<status><member id='1'>x</member></status>\n")
    with pytest.raises(InputFormatError, match="expected an NCMEC <queryResult> document"):
        parse("ncmec", other)


def test_ncmec_later_update_replaces_earlier(tmp_path: Path, store: BankStore) -> None:
    images = image("same", "9", f"<md5>{MD5[0]}</md5>\n", "A1") + image("same", "9", f"<md5>{MD5[1]}</md5>\n", "A2")
    f = write(tmp_path / "u.xml", entries_xml(images))
    report = store.import_file("ncmec", f)
    assert report.format == "ncmec" and report.counts == {"md5": 1}
    assert list(store.open("ncmec").entry_ids("md5")) == ["9-same"]
    assert store.open("ncmec").values("md5")[0].tobytes().hex() == MD5[1]
    assert report.notes == ["1 entry updated later in the file"]


# -- identical re-import -----------------------------------------------------------------------------------------


def test_identical_reimport_makes_no_version(tmp_path: Path, store: BankStore) -> None:
    f = write(tmp_path / "a.csv", "id,md5\n" + "".join(f"e{i},{m}\n" for i, m in enumerate(MD5)))
    first = store.import_file("b", f, thresholds={})
    # the same entries in another order, spelling and file are the same list
    g = write(
        tmp_path / "b.csv", "md5,id\n" + "".join(f"{m.upper()},e{i}\n" for i, m in reversed(list(enumerate(MD5))))
    )
    again = store.import_file("b", g)
    assert again.unchanged and again.version == 1 and again.digest == first.digest
    assert (again.added, again.removed) == (0, 0)
    assert [v.version for v in store.versions("b")] == [1]
    # a different kind or threshold is a new version even with the same entries
    assert store.import_file("b", f, allow=True).version == 2
    changed = store.import_file("b", write(tmp_path / "c.csv", "id,md5\n" + f"e0,{MD5[0]}\n"))
    assert not changed.unchanged and changed.version == 3


def test_cli_identical_reimport_and_notes(tmp_path: Path, cleanset_home: Path) -> None:
    lines = ["Ref,Hash,PhotoDNA,Grade"] + [f"r{i},{MD5[i]},{PDNA},A" for i in range(3)]
    f = write(tmp_path / "export.csv", "\n".join(lines) + "\n")
    first = cli("bank", "import", "hot", str(f), "--columns", "md5=Hash,id=Ref,category=Grade")
    assert first.returncode == 0, first.stderr
    assert "3 PhotoDNA values skipped: PhotoDNA is proprietary" in first.stdout
    again = cli("bank", "import", "hot", str(f), "--columns", "md5=Hash,id=Ref,category=Grade")
    assert again.returncode == 0, again.stderr
    assert "identical to version 1" in again.stdout and "no new version" in again.stdout
    as_json = json.loads(cli("bank", "import", "hot", str(f), "--columns", "md5=Hash", "--json").stdout)
    assert as_json["unchanged"] is False and as_json["version"] == 2  # ids are line numbers now: another list
    info = json.loads(cli("bank", "info", "hot", "--json").stdout)
    assert [v["version"] for v in info["versions"]] == [1, 2]
    bad = cli("bank", "import", "hot", str(f), "--columns", "md5=Nope")
    assert bad.returncode == 2 and "no such column" in bad.stderr
    text = first.stdout + first.stderr + again.stdout + again.stderr + bad.stdout + bad.stderr
    for v in [*MD5[:3], PDNA]:
        assert v not in text and v.upper() not in text
