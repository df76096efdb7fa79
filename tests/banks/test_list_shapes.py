"""Lists in the shapes providers hand them out: wide CSV/TSV (one column per hash type), JSON arrays, base64 PDQ,
python-threatexchange's files. All values are stand-ins made from seeds; PhotoDNA stand-ins are random bytes."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from bank_samples import hexes, write

from cleanset.banks import formats
from cleanset.banks.base import BankFormat
from cleanset.banks.formats import detect, format_names, get_format
from cleanset.banks.store import BankStore
from cleanset.errors import InputFormatError, UserError

PDQ = hexes("pdq", 6, 71)
MD5 = hexes("md5", 6, 72)
SHA1 = hexes("sha1", 6, 73)
SHA256 = hexes("sha256", 3, 74)
PHOTODNA_NOTE = "PhotoDNA is proprietary and not computed by cleanset"


def resolve(path: Path, name: str | None, columns: dict[str, str] | None = None, encoding: str = "hex") -> BankFormat:
    """Looked up when called, so each test fails on its own where ``resolve`` does not exist."""
    return formats.resolve(path, name, columns, encoding)


def parse_columns(text: str) -> dict[str, str]:
    from cleanset.banks.formats._options import parse_columns as parse

    return parse(text)


def photodna(seed: int) -> str:
    """A stand-in the length of a PhotoDNA value (144 bytes), base64 as lists write it."""
    return base64.b64encode(random.Random(seed).randbytes(144)).decode()


def b64(hex_value: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_value)).decode()


def triples(rows: list) -> list[tuple[str, str, str]]:
    return sorted((r.signal, r.value, r.entry_id) for r in rows)


def parse(fmt_name: str, path: Path, **kw: object) -> tuple[list, object]:
    fmt = get_format(fmt_name)
    return list(fmt.parse(path, **kw)), fmt  # type: ignore[arg-type]


def no_secret(text: str, *values: str) -> None:
    for v in values:
        assert v.lower() not in text.lower()
        if len(v) % 2 == 0 and all(c in "0123456789abcdef" for c in v):
            assert b64(v) not in text


@pytest.fixture()
def store(cleanset_home: Path) -> BankStore:
    return BankStore.default()


def test_new_formats_are_registered() -> None:
    assert {"wide", "json", "txcsv", "ncmec"} <= set(format_names())


# -- wide CSV / TSV ----------------------------------------------------------------------------------------------


def wide_csv(tmp_path: Path) -> Path:
    lines = [
        "ID,MD5,SHA-1,PDQ,PhotoDNA,Category",
        f"h1,{MD5[0]},{SHA1[0]},{PDQ[0]},{photodna(1)},A",
        f"h2,{MD5[1].upper()},,{PDQ[1]},{photodna(2)},B",
        f"h3,,{SHA1[2]},,,C",
        f"h4,,,,{photodna(4)},A",  # PhotoDNA only: counted, not an error
    ]
    return write(tmp_path / "hotline.csv", "\n".join(lines) + "\n", crlf=True)


def test_wide_csv_is_detected_and_read(tmp_path: Path) -> None:
    f = wide_csv(tmp_path)
    assert detect(f).name == "wide"
    rows, fmt = parse("wide", f)
    assert triples(rows) == sorted(
        [
            ("md5", MD5[0], "h1"),
            ("sha1", SHA1[0], "h1"),
            ("pdq", PDQ[0], "h1"),
            ("md5", MD5[1], "h2"),
            ("pdq", PDQ[1], "h2"),
            ("sha1", SHA1[2], "h3"),
        ]
    )
    assert {r.entry_id: r.labels["category"] for r in rows} == {"h1": "A", "h2": "B", "h3": "C"}
    assert all("photodna" not in r.labels for r in rows)  # a hash value is never kept as a label
    assert [r.line for r in rows if r.entry_id == "h3"] == [4]
    assert fmt.notes == [f"3 PhotoDNA values skipped: {PHOTODNA_NOTE}"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "expect"),
    [
        ("md5_hash\tsha256\tpdq_hash\tlabel", ("md5", "sha256", "pdq")),
        ("MD5 Hash\tSHA256\tPDQ\tclassification", ("md5", "sha256", "pdq")),
        ("Md5\tSha256\tPdqHash\tCategory", ("md5", "sha256", "pdq")),
    ],
)
def test_wide_tsv_common_headers(tmp_path: Path, header: str, expect: tuple[str, ...]) -> None:
    body = [f"{MD5[i]}\t{SHA256[i]}\t{PDQ[i]}\tcat-{i}" for i in range(3)]
    f = write(tmp_path / "list.tsv", "\n".join([header, *body]) + "\n")
    assert detect(f).name == "wide"
    rows, _ = parse("wide", f)
    assert {r.signal for r in rows} == set(expect)
    assert sorted((r.entry_id, r.labels["category"]) for r in rows if r.signal == "pdq") == [
        ("2", "cat-0"),
        ("3", "cat-1"),
        ("4", "cat-2"),
    ]


def test_wide_column_map(tmp_path: Path, store: BankStore) -> None:
    text = "Ref;Hash A;Hash B;Grade;Notes\n" + "".join(f"r{i};{MD5[i]};{PDQ[i]};A;seen twice\n" for i in range(3))
    f = write(tmp_path / "export.txt", text)
    with pytest.raises(InputFormatError):
        detect(f)  # nothing in the header says what it is
    fmt = resolve(f, None, parse_columns("md5=Hash A, pdq=hash b ,id=REF,category=Grade"))
    assert fmt.name == "wide"
    rows = list(fmt.parse(f))
    assert triples(rows) == sorted(
        [("md5", MD5[i], f"r{i}") for i in range(3)] + [("pdq", PDQ[i], f"r{i}") for i in range(3)]
    )
    assert rows[0].labels == {"category": "A", "notes": "seen twice"}
    report = store.import_file("mapped", f, format=fmt)
    assert report.counts == {"md5": 3, "pdq": 3} and report.format == "wide"


def test_column_map_errors(tmp_path: Path) -> None:
    f = write(tmp_path / "l.csv", f"md5,other\n{MD5[0]},x\n")
    with pytest.raises(UserError, match="expected ROLE=COLUMN"):
        parse_columns("md5")
    with pytest.raises(UserError, match="unknown role 'tlsh'"):
        parse_columns("tlsh=T")
    with pytest.raises(UserError, match="names 'md5' twice"):
        parse_columns("md5=a,md5=b")
    with pytest.raises(UserError, match="no such column"):
        list(resolve(f, None, {"pdq": "PDQ"}).parse(f))
    with pytest.raises(UserError, match="does not apply to the plain format"):
        resolve(f, "plain", {"md5": "md5"})


def test_wide_errors_name_file_and_line_and_never_a_value(tmp_path: Path) -> None:
    bad = PDQ[2][:-1]
    f = write(tmp_path / "l.csv", f"id,md5,pdq\na,{MD5[0]},{PDQ[0]}\nb,{MD5[1]},{bad}\nc,{MD5[2]},{PDQ[2]}\n")
    with pytest.raises(InputFormatError) as info:
        parse("wide", f)
    assert str(info.value).startswith(f"{f}:3: pdq value must be 64 hex digits, got 63")
    no_secret(str(info.value), bad, MD5[1])
    rows, fmt = parse("wide", f, skip_invalid=True)
    assert len(rows) == 5 and fmt.skipped == 1  # type: ignore[attr-defined]

    short = write(tmp_path / "s.csv", f"id,md5,pdq\na,{MD5[0]}\n")
    with pytest.raises(InputFormatError, match=r"s\.csv:2: expected 3 columns, got 2"):
        parse("wide", short)
    empty_row = write(tmp_path / "e.csv", f"id,md5,pdq\na,{MD5[0]},\nb,,\n")
    with pytest.raises(InputFormatError, match=r"e\.csv:3: no value in any hash column"):
        parse("wide", empty_row)
    two = write(tmp_path / "t.csv", f"md5,md5_hash\n{MD5[0]},{MD5[1]}\n")
    with pytest.raises(UserError, match="both hold md5"):
        parse("wide", two)
    headerless = write(tmp_path / "h.csv", f"{MD5[0]},{PDQ[0]}\n")
    with pytest.raises(InputFormatError, match="names no hash column") as info:
        parse("wide", headerless)
    no_secret(str(info.value), MD5[0], PDQ[0])


def test_photodna_only_list_says_why_it_imports_nothing(tmp_path: Path, store: BankStore) -> None:
    f = write(tmp_path / "pdna.csv", "id,PhotoDNA\n" + "".join(f"e{i},{photodna(i)}\n" for i in range(4)))
    with pytest.raises(
        InputFormatError, match=f"no entries to import \\(4 PhotoDNA values skipped: {PHOTODNA_NOTE}\\)"
    ):
        store.import_file("p", f)


def test_wide_import_reports_skipped_photodna(tmp_path: Path, store: BankStore) -> None:
    report = store.import_file("hot", wide_csv(tmp_path))
    assert report.format == "wide"
    assert report.counts == {"md5": 2, "pdq": 2, "sha1": 2}
    assert report.notes == [f"3 PhotoDNA values skipped: {PHOTODNA_NOTE}"]
    labels = store.open("hot").entry_ids("md5")
    assert sorted(labels) == ["h1", "h2"]


# -- base64 ------------------------------------------------------------------------------------------------------


def test_base64_pdq_column_is_detected_from_its_header(tmp_path: Path) -> None:
    f = write(tmp_path / "l.csv", "id,pdq_base64\n" + "".join(f"p{i},{b64(PDQ[i])}\n" for i in range(3)))
    rows, _ = parse("wide", f)
    assert triples(rows) == sorted(("pdq", PDQ[i], f"p{i}") for i in range(3))


def test_base64_values_need_telling_and_the_error_says_so(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "\n".join(b64(v) for v in PDQ[:3]) + "\n")
    with pytest.raises(InputFormatError) as info:
        parse("plain", f, signal="pdq")
    msg = str(info.value)
    assert msg.startswith(f"{f}:1: pdq value must be 64 hex digits, got 44")
    assert "looks like base64" in msg and "--value-encoding base64" in msg
    no_secret(msg, PDQ[0], b64(PDQ[0]))
    fmt = resolve(f, "plain", encoding="base64")
    assert triples(list(fmt.parse(f, signal="pdq"))) == sorted(("pdq", PDQ[i], str(i + 1)) for i in range(3))
    # URL-safe alphabet and missing padding are the same bytes
    urlsafe = write(tmp_path / "u.txt", base64.urlsafe_b64encode(bytes.fromhex(PDQ[0])).decode().rstrip("=") + "\n")
    assert [r.value for r in resolve(urlsafe, "plain", encoding="base64").parse(urlsafe, signal="pdq")] == [PDQ[0]]


def test_base64_through_csv_and_wrong_lengths(tmp_path: Path, store: BankStore) -> None:
    f = write(tmp_path / "l.csv", "signal_type,signal_value,id\n" + f"pdq,{b64(PDQ[0])},a\nmd5,{b64(MD5[0])},b\n")
    with pytest.raises(InputFormatError, match=r"l\.csv:2: .*looks like base64"):
        store.import_file("b", f)
    report = store.import_file("b", f, format=resolve(f, None, encoding="base64"))
    assert report.counts == {"md5": 1, "pdq": 1}
    snap = store.open("b")
    assert snap.values("pdq")[0].tobytes().hex() == PDQ[0]
    hexed = write(tmp_path / "h.txt", PDQ[0] + "\n")
    with pytest.raises(InputFormatError, match=r"h\.txt:1: pdq value must be 32 bytes of base64, got 48"):
        list(resolve(hexed, "plain", encoding="base64").parse(hexed, signal="pdq"))
    with pytest.raises(UserError, match="does not apply to the urls format"):
        resolve(hexed, "urls", encoding="base64")


# -- JSON arrays -------------------------------------------------------------------------------------------------


def test_json_array_of_long_and_wide_objects(tmp_path: Path) -> None:
    doc = [
        {"signal_type": "pdq", "signal_value": PDQ[0], "id": "x1", "source": "hotline"},
        {"md5": MD5[1], "PDQ": PDQ[1], "photodna": photodna(1), "category": "B"},
        {"id": 7, "sha1": SHA1[2]},
    ]
    f = write(tmp_path / "list.json", json.dumps(doc, indent=2))
    assert detect(f).name == "json"
    rows, fmt = parse("json", f)
    assert triples(rows) == sorted(
        [("pdq", PDQ[0], "x1"), ("md5", MD5[1], "1"), ("pdq", PDQ[1], "1"), ("sha1", SHA1[2], "7")]
    )
    assert [r.labels for r in rows if r.entry_id == "x1"] == [{"source": "hotline"}]
    assert fmt.notes == [f"1 PhotoDNA value skipped: {PHOTODNA_NOTE}"]  # type: ignore[attr-defined]
    one_line = write(tmp_path / "one.json", json.dumps([{"md5": m} for m in MD5[:3]]))
    assert triples(parse("json", one_line)[0]) == sorted(("md5", MD5[i], str(i)) for i in range(3))


def test_json_array_errors_name_element_and_line(tmp_path: Path) -> None:
    bad = MD5[2][:-2]
    doc = [{"md5": MD5[0]}, {"md5": MD5[1]}, {"md5": bad}]
    f = write(tmp_path / "l.json", json.dumps(doc, indent=1))
    with pytest.raises(InputFormatError) as info:
        parse("json", f)
    assert str(info.value).startswith(f"{f}:8: element [2]: md5 value must be 32 hex digits, got 30")
    no_secret(str(info.value), bad)
    rows, fmt = parse("json", f, skip_invalid=True)
    assert len(rows) == 2 and fmt.skipped == 1  # type: ignore[attr-defined]

    cases = {
        '[{"md5": "' + MD5[0] + '"},\n "x"]': (2, "element [1]: expected a JSON object, got str"),
        '[{"md5": "' + MD5[0] + '"}\n {"md5": "' + MD5[1] + '"}]': (2, "after element [0]: expected ',' or ']'"),
        '[{"md5": "' + MD5[0] + '"},\n {"md5": }]': (2, "element [1]: invalid JSON"),
        '[{"md5": 5}]': (1, "element [0]: field 'md5' must be a string"),
        '[{"name": "n", "size": 3}]': (1, "element [0]: no hash field"),
        "[]": (None, "the list is empty"),
        '[{"md5": "' + MD5[0] + '"}] trailing': (1, "text after the closing ']'"),
    }
    for i, (text, (line, words)) in enumerate(cases.items()):
        g = write(tmp_path / f"c{i}.json", text)
        with pytest.raises(InputFormatError) as info:
            parse("json", g)
        assert info.value.line == line, text
        assert words in str(info.value)
        no_secret(str(info.value), MD5[0], MD5[1])
    obj = write(tmp_path / "obj.json", '{"hashes": []}')
    with pytest.raises(InputFormatError, match="expected a JSON array of objects"):
        parse("json", obj)


def test_jsonl_reads_wide_objects_too(tmp_path: Path) -> None:
    f = write(
        tmp_path / "l.jsonl",
        "".join(json.dumps({"id": f"e{i}", "md5": MD5[i], "pdq": PDQ[i]}) + "\n" for i in range(2)),
    )
    rows, _ = parse("jsonl", f)
    assert triples(rows) == sorted(
        [("md5", MD5[0], "e0"), ("pdq", PDQ[0], "e0"), ("md5", MD5[1], "e1"), ("pdq", PDQ[1], "e1")]
    )


def test_category_prefers_the_column_named_category(tmp_path: Path) -> None:
    f = write(tmp_path / "l.csv", f"label,md5,category,grade\nfrom-label,{MD5[0]},from-category,A\n")
    rows, _ = parse("wide", f)
    assert rows[0].labels == {"category": "from-category", "label": "from-label", "grade": "A"}


def test_headerless_base64_list_is_never_quoted(tmp_path: Path) -> None:
    # values that look like names to a careless check: letters and digits only, a letter first
    encoded = (base64.b64encode(bytes.fromhex(m)).decode().rstrip("=") for m in hexes("md5", 200, 75))
    values = [v for v in encoded if v.isalnum() and v[0].isalpha()][:3]
    assert len(values) == 3
    f = write(tmp_path / "l.csv", "".join(f"{v},x\n" for v in values))
    with pytest.raises(InputFormatError) as info:
        parse("csv", f)
    for v in values:
        assert v.lower() not in str(info.value).lower()


def test_mapped_json_key_an_object_leaves_out_is_an_empty_cell(tmp_path: Path) -> None:
    """``--columns md5=md5,pdq=pdq``: an object without ``md5`` has an empty md5, as a CSV row with an empty cell."""
    pdq = "ab" * 32
    path = tmp_path / "l.json"
    path.write_text(json.dumps([{"md5": "cd" * 16, "pdq": pdq, "id": "a"}, {"pdq": pdq, "id": "b"}]))
    rows = list(resolve(path, "json", parse_columns("md5=md5,pdq=pdq,id=id")).parse(path))
    assert sorted((r.signal, r.entry_id) for r in rows) == [("md5", "a"), ("pdq", "a"), ("pdq", "b")]


def test_an_unrecognised_first_line_gets_a_hint(tmp_path: Path) -> None:
    b64 = tmp_path / "b64.txt"
    b64.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    with pytest.raises(InputFormatError, match="--value-encoding base64"):
        detect(b64)
