"""Each list format: valid files, detection, and every kind of malformed line named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bank_samples import csv_text, hexes, write

from cleanset.banks.formats import detect, format_names, get_format
from cleanset.errors import InputFormatError, UserError
from cleanset.signals import get_signal

PDQ = hexes("pdq", 6, 1)
MD5 = hexes("md5", 3, 2)


def rows_of(fmt: str, path: Path, **kw: object) -> list:
    return list(get_format(fmt).parse(path, **kw))  # type: ignore[arg-type]


def expect_error(fmt: str, path: Path, line: int, words: str, **kw: object) -> InputFormatError:
    with pytest.raises(InputFormatError) as info:
        rows_of(fmt, path, **kw)
    err = info.value
    assert err.line == line
    assert str(err).startswith(f"{path}:{line}: ")
    assert words in str(err)
    return err


def test_registry_names_every_format() -> None:
    assert format_names() == ["csv", "json", "jsonl", "ncmec", "plain", "te", "txcsv", "urls", "wide"]
    with pytest.raises(UserError, match="unknown list format 'xml'"):
        get_format("xml")


# -- plain ------------------------------------------------------------------------------------------------------


def test_plain_reads_values_comments_ids_and_line_numbers(tmp_path: Path) -> None:
    text = f"# stand-in list\n{PDQ[0]}\n\n  {PDQ[1].upper()}  \n{PDQ[2]} entry-7\n"
    f = write(tmp_path / "l.txt", text, crlf=True)
    rows = rows_of("plain", f, signal="pdq")
    assert [(r.signal, r.value, r.entry_id, r.line) for r in rows] == [
        ("pdq", PDQ[0], "2", 2),
        ("pdq", PDQ[1], "4", 4),
        ("pdq", PDQ[2], "entry-7", 5),
    ]


def test_plain_needs_signal(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", PDQ[0] + "\n")
    with pytest.raises(InputFormatError, match="--signal"):
        rows_of("plain", f)
    with pytest.raises(UserError, match="unknown signal 'tlsh'"):
        rows_of("plain", f, signal="tlsh")


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (PDQ[0][:-1], "64 hex digits, got 63"),
        (PDQ[0] + "0", "64 hex digits, got 65"),
        ("g" + PDQ[0][1:], "not hexadecimal"),
    ],
)
def test_plain_malformed_values(tmp_path: Path, bad: str, words: str) -> None:
    f = write(tmp_path / "l.txt", f"{PDQ[0]}\n{PDQ[1]}\n{bad}\n{PDQ[2]}\n")
    err = expect_error("plain", f, 3, words, signal="pdq")
    assert bad.lower() not in str(err).lower()  # an error never echoes list content
    fmt = get_format("plain")
    rows = list(fmt.parse(f, signal="pdq", skip_invalid=True))
    assert [r.line for r in rows] == [1, 2, 4]
    assert fmt.skipped == 1


def test_plain_md5_lines(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "\n".join(MD5) + "\n")
    assert [r.value for r in rows_of("plain", f, signal="md5")] == MD5
    expect_error("plain", f, 1, "sha1 value must be 40 hex digits, got 32", signal="sha1")


# -- csv --------------------------------------------------------------------------------------------------------


def test_csv_reads_labels_quotes_crlf_and_aliases(tmp_path: Path) -> None:
    text = (
        "signal_type,signal_value,id,source,category\n"
        f'pdq,{PDQ[0]},a1,"Hotline, A",x\n'
        f'"PDQ"," {PDQ[1]} ",a2,"say ""hi""",y\n'
        f"video_md5,{MD5[0]},a3,B,\n"
        "url,https://Example.COM/a?b=1,a4,C,z\n"
    )
    f = write(tmp_path / "l.csv", text, crlf=True)
    rows = rows_of("csv", f)
    assert [(r.signal, r.entry_id, r.line) for r in rows] == [
        ("pdq", "a1", 2),
        ("pdq", "a2", 3),
        ("md5", "a3", 4),
        ("url_sha1", "a4", 5),
    ]
    assert rows[0].labels == {"source": "Hotline, A", "category": "x"}
    assert rows[1].labels["source"] == 'say "hi"'
    assert rows[1].value == PDQ[1]
    assert rows[3].value == get_signal("url_sha1").compute_url("https://Example.COM/a?b=1")  # type: ignore[attr-defined]


def test_csv_without_id_column_uses_line_numbers(tmp_path: Path) -> None:
    f = write(tmp_path / "l.csv", f"signal_value,signal_type\n{PDQ[0]},pdq\n\n{MD5[0]},md5\n")
    assert [(r.entry_id, r.signal) for r in rows_of("csv", f)] == [("2", "pdq"), ("4", "md5")]


def test_csv_signal_column_may_be_replaced_by_option(tmp_path: Path) -> None:
    f = write(tmp_path / "l.csv", f"signal_value,id\n{PDQ[0]},x\n")
    assert [r.signal for r in rows_of("csv", f, signal="pdq")] == ["pdq"]
    with pytest.raises(InputFormatError, match=r"l\.csv:1: header must name signal_type,signal_value"):
        rows_of("csv", f)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (f"pdq,{PDQ[3][:-2]},x", "64 hex digits, got 62"),
        (f"pdq,{PDQ[3][:-1]}z,x", "not hexadecimal"),
        (f"tlsh,{PDQ[3]},x", "unknown signal type 'tlsh'"),
        (f"pdq,{PDQ[3]}", "expected 3 columns, got 2"),
        (f"pdq,{PDQ[3]},x,extra", "expected 3 columns, got 4"),
        ("pdq,,x", "empty value"),
        (f",{PDQ[3]},x", "missing signal type"),
        (f"pdq,{PDQ[3]},", "empty id"),
        ("url,not a url,x", "not a URL"),
    ],
)
def test_csv_malformed_lines(tmp_path: Path, line: str, words: str) -> None:
    rows = [("pdq", PDQ[0], "a"), ("md5", MD5[0], "b")]
    text = csv_text(rows) + line + "\n" + f"pdq,{PDQ[1]},c\n"
    f = write(tmp_path / "l.csv", text)
    expect_error("csv", f, 4, words)
    fmt = get_format("csv")
    kept = list(fmt.parse(f, skip_invalid=True))
    assert [r.entry_id for r in kept] == ["a", "b", "c"]
    assert fmt.skipped == 1


def test_errors_never_quote_a_value_in_a_name_position(tmp_path: Path) -> None:
    swapped = write(tmp_path / "s.csv", f"signal_type,signal_value,id\n{PDQ[0]},pdq,a\n")
    err = expect_error("csv", swapped, 2, "unknown signal type (a field that is not a name)")
    assert PDQ[0] not in str(err)
    headerless = write(tmp_path / "h.csv", f"pdq,{PDQ[0]},a\npdq,{PDQ[1]},b\n")
    err = expect_error("csv", headerless, 1, "header must name signal_type,signal_value")
    assert "'pdq'" in str(err) and PDQ[0] not in str(err)
    te = write(tmp_path / "t.txt", f"{MD5[0]} {PDQ[0]}\n")
    err = expect_error("te", te, 1, "unknown signal type (a field")
    assert MD5[0] not in str(err) and PDQ[0] not in str(err)


def test_csv_header_errors(tmp_path: Path) -> None:
    f = write(tmp_path / "l.csv", f"signal_type,signal_value,signal_value\npdq,{PDQ[0]},{PDQ[0]}\n")
    expect_error("csv", f, 1, "header repeats column 'signal_value'")
    g = write(tmp_path / "empty.csv", "\n\n")
    with pytest.raises(InputFormatError, match="empty"):
        rows_of("csv", g)


# -- jsonl ------------------------------------------------------------------------------------------------------


def test_jsonl_reads_fields_and_labels(tmp_path: Path) -> None:
    lines = [
        {"signal_type": "pdq", "signal_value": PDQ[0], "id": 17, "source": "A", "tags": ["x", "y"]},
        {"signal_type": "md5", "signal_value": MD5[0].upper()},
        {"signal_type": "url", "signal_value": "https://example.org/p", "id": "u"},
    ]
    f = write(tmp_path / "l.jsonl", "\n".join(json.dumps(o) for o in lines) + "\n\n")
    rows = rows_of("jsonl", f)
    assert [(r.signal, r.value, r.entry_id) for r in rows[:2]] == [("pdq", PDQ[0], "17"), ("md5", MD5[0], "2")]
    assert rows[0].labels == {"source": "A", "tags": '["x", "y"]'}
    assert rows[2].signal == "url_sha1" and rows[2].entry_id == "u"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"signal_type": "pdq", "signal_value": ', "invalid JSON"),
        ('["pdq", "00"]', "expected a JSON object"),
        ('{"signal_type": "pdq"}', "missing field 'signal_value'"),
        ('{"signal_value": "' + PDQ[2] + '"}', "missing signal type"),
        ('{"signal_type": "pdq_ocr", "signal_value": "' + PDQ[2] + '"}', "unknown signal type 'pdq_ocr'"),
        ('{"signal_type": "pdq", "signal_value": ""}', "empty value"),
        ('{"signal_type": "pdq", "signal_value": 12}', "signal_value must be a string"),
        ('{"signal_type": "md5", "signal_value": "' + PDQ[2] + '"}', "md5 value must be 32 hex digits, got 64"),
    ],
)
def test_jsonl_malformed_lines(tmp_path: Path, line: str, words: str) -> None:
    good = json.dumps({"signal_type": "pdq", "signal_value": PDQ[0], "id": "a"})
    third = json.dumps({"signal_type": "pdq", "signal_value": PDQ[1], "id": "b"})
    f = write(tmp_path / "l.jsonl", f"{good}\n{line}\n{third}\n")
    expect_error("jsonl", f, 2, words)
    fmt = get_format("jsonl")
    assert len(list(fmt.parse(f, skip_invalid=True))) == 2
    assert fmt.skipped == 1


# -- python-threatexchange local file -----------------------------------------------------------------------------


def test_te_local_file_maps_threatexchange_names(tmp_path: Path) -> None:
    text = f"pdq {PDQ[0]}\nvideo_md5 {MD5[0]}\nurl_md5 {MD5[1]}\nurl https://example.net/x\n"
    f = write(tmp_path / "signals.txt", text)
    rows = rows_of("te", f)
    assert [(r.signal, r.entry_id) for r in rows] == [("pdq", "1"), ("md5", "2"), ("url_md5", "3"), ("url_sha1", "4")]
    assert rows[1].value == MD5[0]


def test_te_local_file_with_fixed_signal(tmp_path: Path) -> None:
    f = write(tmp_path / "signals.txt", f"{PDQ[0]}\n{PDQ[1]}\n")
    assert [r.value for r in rows_of("te", f, signal="pdq")] == PDQ[:2]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (f"raw_text {PDQ[2]}", "unknown signal type 'raw_text'"),
        ("pdq", "missing value"),
        (f"pdq {PDQ[2][:10]}", "64 hex digits, got 10"),
        (f"video_md5 {MD5[0]}zz", "md5 value must be 32 hex digits, got 34"),
    ],
)
def test_te_local_file_malformed_lines(tmp_path: Path, line: str, words: str) -> None:
    f = write(tmp_path / "signals.txt", f"pdq {PDQ[0]}\n{line}\npdq {PDQ[1]}\n")
    expect_error("te", f, 2, words)
    fmt = get_format("te")
    assert len(list(fmt.parse(f, skip_invalid=True))) == 2 and fmt.skipped == 1


# -- urls -------------------------------------------------------------------------------------------------------


def test_url_list_is_hashed_and_keeps_no_url(tmp_path: Path) -> None:
    urls = ["https://example.com/a.jpg", "HTTP://EXAMPLE.com:80/a.jpg", "http://example.com/b.jpg#frag"]
    f = write(tmp_path / "urls.txt", "\n".join(urls) + "\n")
    rows = rows_of("urls", f)
    url_sha1 = get_signal("url_sha1")
    assert [r.value for r in rows] == [url_sha1.compute_url(u) for u in urls]  # type: ignore[attr-defined]
    assert rows[1].value == url_sha1.compute_url("http://example.com/a.jpg")  # type: ignore[attr-defined]
    assert all("example" not in r.value and "example" not in r.entry_id for r in rows)
    g = write(tmp_path / "bad.txt", "https://example.com/a\nhttps://exa mple.com/\n")
    expect_error("urls", g, 2, "not a URL")


# -- detection --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("a.txt", f"signal_type,signal_value,id\npdq,{PDQ[0]},1\n", "csv"),
        ("a.dat", f"\ufeffsignal_type,signal_value\npdq,{PDQ[0]}\n", "csv"),
        ("a.txt", json.dumps({"signal_type": "pdq", "signal_value": PDQ[0]}) + "\n", "jsonl"),
        ("a.txt", f"# comment\npdq {PDQ[0]}\n", "te"),
        ("a.txt", f"video_md5 {MD5[0]}\n", "te"),
        ("a.txt", "https://example.com/x\n", "urls"),
        ("a.txt", f"\n{PDQ[0]}\n", "plain"),
        ("a.txt", f"{MD5[0]} id-1\n", "plain"),
    ],
)
def test_detect(tmp_path: Path, name: str, text: str, fmt: str) -> None:
    assert detect(write(tmp_path / name, text)).name == fmt


def test_detect_refuses_unknown_and_empty(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="cannot tell the list format"):
        detect(write(tmp_path / "x.txt", "hello world\n"))
    with pytest.raises(InputFormatError, match="empty"):
        detect(write(tmp_path / "y.txt", "# nothing\n\n"))
    with pytest.raises(UserError, match="no such file"):
        detect(tmp_path / "missing.txt")
