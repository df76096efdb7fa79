"""Caption and prompt rules: normalisation defeats spelling tricks, co-occurrence flags, results name lists only.

Co-occurrence is exercised with stand-in lists of benign words ("kitten" as the minor stand-in, "umbrella" as the
sexual one); the shipped lists are tested one category at a time, with neutral captions.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleanset.cli.app import app
from cleanset.errors import InputFormatError, UserError
from cleanset.screening.terms import TermStore, resolve_lists
from cleanset.screening.text import CO_OCCURRENCE, TermList, default_lists, normalise, screen_text, tokens

MINOR = TermList("standin-minor", 3, "minor", ("kitten",))
SEXUAL = TermList("standin-sexual", 7, "sexual", ("umbrella", "red balloon"))
STANDIN = [MINOR, SEXUAL]


@pytest.mark.parametrize(
    "caption",
    [
        "a kitten on the sofa",
        "A KITTEN",
        "a KiTtEn",
        "a kïttén",  # accents
        "a ｋｉｔｔｅｎ",  # full-width letters
        "k1tt3n",  # digits for letters
        "k!tten",
        "k-i-t-t-e-n",  # separators inside the word
        "k.i.t.t.e.n",
        "k_i_t_t_e_n",
        "a k i t t e n",  # spaced-out letters, after an article
        "k 1 t t 3 n",
        "kittens",  # plural
        "#kitten",
    ],
)
def test_spelling_tricks_match(caption: str) -> None:
    r = screen_text(caption, STANDIN)
    assert [h.list for h in r.hits] == ["standin-minor"]
    assert r.scores == {"text.minor": 1.0}


@pytest.mark.parametrize("caption", ["kittenish", "a kit", "skittens", "a dog", "", "   ", None])
def test_whole_words_only(caption: str | None) -> None:
    assert screen_text(caption, STANDIN).hits == ()


def test_phrases_and_substitutions_in_phrases() -> None:
    assert screen_text("a r3d  b@lloon", STANDIN).categories == {"sexual"}
    assert screen_text("a red kite and a balloon", STANDIN).hits == ()


def test_co_occurrence_flags_and_names_lists_not_terms() -> None:
    r = screen_text("a kitten under an umbre11a", STANDIN)
    assert r.flagged
    assert r.labels == ["minor:standin-minor@3", "sexual:standin-sexual@7"]
    assert r.scores == {"text.minor": 1.0, "text.sexual": 1.0, CO_OCCURRENCE: 1.0}
    assert not any("kitten" in label or "umbrella" in label for label in r.labels)
    one = screen_text("an umbrella", STANDIN)
    assert not one.flagged and CO_OCCURRENCE not in one.scores


def test_normalise_folds_case_accents_and_separators() -> None:
    assert normalise("Ça-Va  São_Paulo!") == "ca va sao paulo!"
    assert tokens("c4t, 4 cats") == ["cat", "4", "cats"]  # a lone number stays a number


@pytest.mark.parametrize(
    ("caption", "category"),
    [
        ("a toddler on a tricycle in the park", "minor"),
        ("kinderen op het strand", "minor"),
        ("un enfant à la plage", "minor"),
        ("una niña con un perro", "minor"),
        ("公園の子供", "minor"),
        ("a nude lipstick shade", "sexual"),
        ("desnudo: a marble statue", "sexual"),
        ("ヌードカラーのネイル", "sexual"),
    ],
)
def test_default_lists_one_category_at_a_time(caption: str, category: str) -> None:
    r = screen_text(caption)
    assert r.categories == {category}
    assert not r.flagged


@pytest.mark.parametrize("caption", ["a kind word", "a red bicycle by the lake", "sunset over the sea", "nina simone"])
def test_default_lists_leave_ordinary_text(caption: str) -> None:
    expected = {"minor"} if caption == "nina simone" else set()  # a name that is also a word: a known limit
    assert screen_text(caption).categories == expected


def test_default_lists_are_single_plain_terms() -> None:
    for tl in default_lists():
        assert tl.category in ("minor", "sexual")
        assert all(len(t.split()) == 1 for t in tl.terms), tl.name


def test_bad_category_is_refused() -> None:
    with pytest.raises(UserError, match="category"):
        TermList("x", 1, "Minor Terms", ("a",))


def test_store_versions_owner_only_and_errors(tmp_path: Path) -> None:
    store = TermStore(tmp_path / "home")
    src = tmp_path / "words.txt"
    src.write_text("kitten\n# a comment\n\npuppy  # trailing comment\n", encoding="utf-8")
    first = store.import_file("pets", src, "minor")
    src.write_text("kitten\n", encoding="utf-8")
    second = store.import_file("pets", src, "minor")
    assert (first.version, first.count, second.version, second.count) == (1, 2, 2, 1)
    assert store.open("pets", 1).terms == ("kitten", "puppy")
    assert store.open("pets").version == 2
    for p in [store.dir, store.dir / "pets", store.dir / "pets" / "1.json"]:
        assert stat.S_IMODE(os.stat(p).st_mode) & 0o077 == 0, p
    lists = resolve_lists(["pets@1"], store, defaults=False)
    assert screen_text("a puppy", lists).labels == ["minor:pets@1"]
    with pytest.raises(UserError, match="no term list 'nope'"):
        store.open("nope")
    with pytest.raises(UserError, match="no version 9"):
        store.open("pets", 9)
    bad = tmp_path / "bad.txt"
    bad.write_text("kitten\n---\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"bad.txt:2: this line has no letters") as e:
        store.import_file("pets", bad, "minor")
    assert "---" not in str(e.value)  # the line is named, never its text
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="no terms"):
        store.import_file("pets", empty, "minor")
    with pytest.raises(UserError, match="shipped list"):
        store.import_file("default-minor", src, "minor")


def test_terms_cli_never_prints_a_term(tmp_path: Path, cleanset_home: Path) -> None:
    src = tmp_path / "words.txt"
    src.write_text("kitten\numbrella\n", encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(app, ["terms", "import", "pets", str(src), "--category", "minor"])
    assert out.exit_code == 0, out.output
    assert "pets v1" in out.output and "2 minor terms" in out.output
    listing = runner.invoke(app, ["terms", "list", "--json"])
    assert listing.exit_code == 0, listing.output
    assert '"pets"' in listing.output and '"default-minor"' in listing.output
    for shown in (out.output, listing.output):
        assert "kitten" not in shown and "umbrella" not in shown
    bad = runner.invoke(app, ["terms", "import", "pets", str(src), "--category", "Not A Word"])
    assert isinstance(bad.exception, UserError) and "category" in str(bad.exception)


def test_api_check_text_for_prompts(tmp_path: Path, cleanset_home: Path) -> None:
    import cleanset.api as api

    store = TermStore.default()
    for name, category, word in (("standin-minor", "minor", "kitten"), ("standin-sexual", "sexual", "umbrella")):
        (tmp_path / f"{name}.txt").write_text(word + "\n", encoding="utf-8")
        store.import_file(name, tmp_path / f"{name}.txt", category)
    lists = ["standin-minor", "standin-sexual@1"]
    plain = api.check_text("a red bicycle by the lake", lists)
    assert (plain.verdict, plain.lists, plain.rules) == ("keep", (), ())
    one = api.check_text("a k1tten", lists, defaults=False)
    assert (one.verdict, one.lists, dict(one.scores)) == ("keep", ("minor:standin-minor@1",), {"text.minor": 1.0})
    both = api.check_text("a kitten with an UMBRELLA", lists, defaults=False)
    assert (both.verdict, both.rules) == ("review", ("minor-and-sexual-terms",))
    assert api.check_text("a kitten with an umbrella", lists, "strict", defaults=False).verdict == "remove"
    shown = json.dumps(both.to_dict())
    assert "minor:standin-minor@1" in shown and "kitten" not in shown and "umbrella" not in shown
    with pytest.raises(UserError, match="no term list"):
        api.check_text("a kitten", ["missing-list"])
