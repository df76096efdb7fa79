"""Caption and prompt rules: term lists, normalised matching, and co-occurrence of categories.

Why normalise this hard: keyword lists are evaded by spelling, not by vocabulary. A caption or a prompt that writes
a listed word with capitals, accents, look-alike digits (``0`` for ``o``, ``@`` for ``a``), separators inside it
(``w.o.r.d``, ``w-o-r-d``) or spaces between its letters (``w o r d``) is the same word to a reader, so it is the
same word here. Matching is by whole tokens (a term never matches inside a longer word, which is where keyword
filters flag ordinary text), except for scripts written without spaces (CJK), whose terms match as substrings.

One category alone proves nothing (a caption about a child, a caption about a nude painting): an item is flagged
when terms of the ``minor`` category and the ``sexual`` category occur together. Results name the list and version
that matched, never the term, so a result can be shared where the list may not.

The same function, ``screen_text``, serves dataset captions (``TEXT``, ``.txt`` sidecars, a named column) and the
prompts of a text-to-image front end (``cleanset.api.check_text``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cleanset.errors import UserError

__all__ = [
    "CATEGORIES",
    "CONFUSABLES",
    "CO_OCCURRENCE",
    "MAX_TEXT",
    "Prepared",
    "TermList",
    "TextHit",
    "TextResult",
    "default_lists",
    "normalise",
    "score_name",
    "screen_text",
    "tokens",
]

# Categories a list may declare. ``minor`` and ``sexual`` are the pair whose co-occurrence flags an item; any other
# category (an organisation's own, e.g. ``grooming``) is reported and scored on its own.
MINOR = "minor"
SEXUAL = "sexual"
CATEGORIES: tuple[str, ...] = (MINOR, SEXUAL)
CO_OCCURRENCE = "text.cooccur"  # the score set to 1 when both categories matched
_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

# Look-alike characters people substitute for letters. Applied only inside tokens that also hold a letter (or that
# are part of a spaced-out run), so "4 cats" keeps its number and "c4t" reads "cat". A token is always read with
# its punctuation dropped too, and look-alike punctuation at a token's edge is read as punctuation ("word!").
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
                      "!": "i", "|": "l", "+": "t", "€": "e", "£": "l"})  # fmt: skip
_WHOLE_LETTERS = {ord("ø"): "o", ord("æ"): "ae", ord("œ"): "oe", ord("ł"): "l", ord("đ"): "d"}
# "1" and "!" stand for "l" about as often as for "i": a token holding them is read both ways.
LEET_L = str.maketrans({"1": "l", "!": "l"})
_LEET_CHARS = frozenset("0134578@$!|+€£")
_SEPARATORS = re.compile(r"[\s\-.,;:/\\()\[\]{}'\"`~^*#=<>?_]+")
_EDGE = "!|+@$€£"  # look-alike punctuation: at a token's start or end it is punctuation, not a letter
_NOT_WORD = re.compile(r"[\W_]+")
_DIGITS = "0123456789"
# Longest spaced-out run whose every stretch is tried as a word. A longer run is searched as one string for each
# term's compact form (``TermList.matches``): linear in the run, where trying every stretch would be quadratic.
MAX_RUN = 24
# Cyrillic and Greek letters that look like Latin ones, folded to Latin in a token that mixes the scripts (a Latin
# word with one Cyrillic "е" in it reads as the Latin word). A token wholly in one script is left alone, so
# Russian and Greek terms still match as themselves.
CONFUSABLES = str.maketrans({"а": "a", "в": "b", "е": "e", "і": "i", "ј": "j", "к": "k", "м": "m", "о": "o",
                             "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "ԁ": "d", "һ": "h",
                             "ԛ": "q", "ԝ": "w", "ү": "y", "ӏ": "l", "α": "a", "β": "b", "ε": "e", "ι": "i",
                             "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x"})  # fmt: skip
_OTHER_SCRIPT = re.compile("[\u0370-\u052f]")
_LATIN = re.compile("[a-z]")
_KATAKANA_RUN = re.compile("[\u30a0-\u30ff]+")
SHORT_KATAKANA = 2
# The longest text ``cleanset.api.check_text`` (and so the service) screens: 64 Ki characters is far past any
# prompt or caption, and bounds the work one request can ask for.
MAX_TEXT = 64 * 1024


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x3040 <= o <= 0x30FF  # hiragana, katakana
        or 0x3400 <= o <= 0x9FFF  # CJK ideographs
        or 0xAC00 <= o <= 0xD7AF  # hangul
        or 0xF900 <= o <= 0xFAFF
        or 0xFF66 <= o <= 0xFF9F  # half-width katakana
    )


def normalise(text: str) -> str:
    """Lower case, accents removed (``é`` -> ``e``, compatibility forms folded: full-width letters, ligatures), every
    run of separators one space. Substitutions and spacing tricks are handled by ``tokens``."""
    if text.isascii():  # most captions: nothing to fold but case (and a character loop costs more than the rest)
        return _SEPARATORS.sub(" ", text.lower()).strip()
    folded = unicodedata.normalize("NFKD", text)
    no_marks = "".join(ch for ch in folded if not unicodedata.combining(ch))
    # letters NFKD leaves whole: ß -> ss, ø -> o, æ -> ae, ł -> l, đ -> d
    lowered = no_marks.casefold().translate(_WHOLE_LETTERS)
    return _SEPARATORS.sub(" ", lowered).strip()


def tokens(text: str) -> list[str]:
    """The words of ``text`` as a reader sees them: normalised, look-alikes substituted, and letters written
    apart (``w o r d``, ``w.o.r.d``, ``w-o-r-d``) joined back into the word they spell.

    A run of two or more one-character tokens is joined; the single characters stay as tokens too, so an ordinary
    "a" or "i" still reads as itself."""
    return _tokens(normalise(text))


def _tokens(base: str) -> list[str]:
    return [r for pos in _positions(base)[0] for r in pos]


def _readings(raw: str) -> set[str]:
    """Every way a reader may read one token that is not a plain word: look-alikes substituted (``1`` as ``i`` and
    as ``l``), punctuation dropped, look-alike punctuation at the edges dropped, a leading or trailing number split
    off (``4word``), mixed-script look-alikes folded to Latin."""
    forms = {raw}
    if _OTHER_SCRIPT.search(raw) and _LATIN.search(raw):
        forms.add(raw.translate(CONFUSABLES))
    out: set[str] = set()
    for form in forms:
        for c in {form, form.strip(_EDGE)}:
            has_alpha = any(ch.isalpha() for ch in c)
            if has_alpha and _LEET_CHARS & set(c):
                out.add(c.translate(LEET))
                out.add(c.translate(LEET_L).translate(LEET))
            if not has_alpha or not c.isalnum() or not (_LEET_CHARS & set(c)):
                out.add(c)  # read with its punctuation dropped (below) as well as substituted
            core = c.strip(_DIGITS)
            if core != c and any(ch.isalpha() for ch in core):
                out.add(core)
    return {w for w in (_NOT_WORD.sub("", r) for r in out) if w}


def _positions(base: str) -> tuple[list[tuple[str, ...]], list[str]]:
    """The normalised text as word positions, each with the readings a reader may give it, and the long spaced-out
    runs (joined) that are searched as strings. Phrases match over consecutive positions, any reading at each."""
    out: list[tuple[str, ...]] = []
    long_runs: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= 2:
            # One position for the whole run: its letters one by one, joined, and (short runs) every stretch of
            # three or more ("a w o r d" spells "word" after the article).
            singles = {c for c in run if c.isalnum()}
            joined = {
                "".join(c.translate(LEET) for c in run),
                "".join(c.translate(LEET_L).translate(LEET) for c in run),
            }
            joined = {_NOT_WORD.sub("", j) for j in joined} - {""}
            readings = singles | joined
            if len(run) >= 3:
                long_runs.extend(joined)  # searched for every term's compact form: phrases, words inside the run
            if len(run) <= MAX_RUN:
                for j in joined:
                    readings.update(j[a:b] for a in range(len(j)) for b in range(a + 3, len(j) + 1))
            del out[len(out) - len(singles_at) :]
            out.append(tuple(sorted(readings)))
        run.clear()
        singles_at.clear()

    singles_at: list[int] = []
    for raw in _SEPARATORS.split(base):
        if not raw:
            continue
        if len(raw) == 1:
            run.append(raw)
            if raw.isalnum():
                singles_at.append(len(out))
                out.append((raw,))
            continue
        if run:
            flush()
        if raw.isalpha() and not (_OTHER_SCRIPT.search(raw) and _LATIN.search(raw)):  # the common case
            out.append((raw,))
            continue
        readings = _readings(raw)
        if readings:
            out.append(tuple(sorted(readings)))
        pieces = [p for p in _NOT_WORD.split(raw.strip(_EDGE)) if p]
        if len(pieces) > 1:  # "word|word", "word&word": each piece is a word too
            for p in pieces:
                out.append(tuple(sorted(_readings(p))) if not p.isalpha() else (p,))
    flush()
    return out, long_runs


def _term_key(term: str) -> tuple[tuple[str, ...], ...]:
    """A term as the positions it must match, each with its readings (a term may be several words)."""
    return tuple(_positions(normalise(term))[0])


@dataclass(frozen=True)
class TermList:
    """One versioned list of terms of one category. ``name`` and ``version`` are what results show; the terms
    themselves stay in the list store (they may be a hotline's)."""

    name: str
    version: int
    category: str
    terms: tuple[str, ...]
    _words: frozenset[str] = field(init=False, repr=False, compare=False)
    _firsts: frozenset[str] = field(init=False, repr=False, compare=False)
    _phrases: Mapping[tuple[str, str], tuple[tuple[tuple[str, ...], ...], ...]] = field(
        init=False, repr=False, compare=False
    )
    _substrings: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _katakana: frozenset[str] = field(init=False, repr=False, compare=False)
    _compact: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _CATEGORY.match(self.category):
            raise UserError(f"term list {self.name!r}: category must be a short lower-case word, got {self.category!r}")
        words: set[str] = set()
        phrases: dict[tuple[str, str], list[tuple[tuple[str, ...], ...]]] = {}
        subs: list[str] = []
        katakana: set[str] = set()
        compact: set[str] = set()
        for t in self.terms:
            if any(_is_cjk(ch) for ch in t):
                sub = "".join(normalise(t).split())
                # A short katakana term sits inside ordinary longer loanwords (the one for "ero" inside "yellow"):
                # one of two characters or fewer matches a whole run of katakana, never part of one.
                short = len(sub) <= SHORT_KATAKANA and _KATAKANA_RUN.fullmatch(sub)
                (katakana.add if short else subs.append)(sub)
                continue
            key = _term_key(t)
            if not key:
                continue
            if len(key) == 1:
                words.update(key[0])
            else:  # indexed by its first two words, so a text's cost does not grow with the number of phrases
                for a in key[0]:
                    for b in key[1]:
                        phrases.setdefault((a, b), []).append(key)
            plain = "".join(p[0] for p in key)
            if len(plain) >= 3:  # shorter ones would be found by chance inside any run of letters
                compact.add(plain)
        object.__setattr__(self, "_words", frozenset(words))
        object.__setattr__(self, "_firsts", frozenset(a for a, _ in phrases))
        object.__setattr__(self, "_phrases", {k: tuple(v) for k, v in phrases.items()})
        object.__setattr__(self, "_substrings", tuple(subs))
        object.__setattr__(self, "_katakana", frozenset(katakana))
        object.__setattr__(self, "_compact", tuple(sorted(compact)))

    @property
    def label(self) -> str:
        """How results name this list: ``<category>:<name>@<version>``."""
        return f"{self.category}:{self.name}@{self.version}"

    def matches(self, text: Prepared) -> bool:
        """Whether any term occurs: a word at any reading of a position (a plural ``s`` is allowed), a phrase over
        consecutive positions (looked up by its first word, so the cost is the text's length, not phrases times
        tokens), a term's compact form inside a long spaced-out run, a CJK term in the compacted text."""
        words, firsts, phrases = self._words, self._firsts, self._phrases
        positions = text.positions
        last = len(positions) - 1
        for i, pos in enumerate(positions):
            for t in pos:
                if t in words or (len(t) > 3 and t.endswith("s") and t[:-1] in words):
                    return True
                if t not in firsts or i == last:
                    continue
                for t2 in positions[i + 1]:
                    for phrase in phrases.get((t, t2), ()):
                        n = len(phrase)
                        if i + n <= len(positions) and all(
                            any(r in positions[i + k] for r in phrase[k]) for k in range(2, n)
                        ):
                            return True
        for joined in text.long_runs:
            if any(c in joined for c in self._compact):
                return True
        if self._katakana and not self._katakana.isdisjoint(text.katakana):
            return True
        return any(s in text.compact for s in self._substrings)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A text made ready for matching once, whatever the number of lists: positions with their readings, every
    spaced-out run of three letters or more joined (searched for the terms' compact forms), the compacted text and
    its katakana runs."""

    positions: list[tuple[str, ...]]
    long_runs: list[str]
    compact: str
    katakana: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Prepared:
        base = normalise(text)
        positions, long_runs = _positions(base)
        compact = base.replace(" ", "")
        return cls(positions, long_runs, compact, frozenset(_KATAKANA_RUN.findall(base)))


@dataclass(frozen=True, slots=True)
class TextHit:
    """A list that matched: named by list, version and category, never by the term."""

    list: str
    version: int
    category: str

    @property
    def label(self) -> str:
        return f"{self.category}:{self.list}@{self.version}"


@dataclass(frozen=True, slots=True)
class TextResult:
    """What the term lists say about one text. ``scores``: ``text.<category>`` = 1 for each category that matched,
    and ``text.cooccur`` = 1 when minor and sexual terms occur together; the policy acts on these by name."""

    hits: tuple[TextHit, ...] = ()

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(h.category for h in self.hits)

    @property
    def flagged(self) -> bool:
        """Terms of both paired categories occur together."""
        return MINOR in self.categories and SEXUAL in self.categories

    @property
    def scores(self) -> dict[str, float]:
        out = {score_name(c): 1.0 for c in sorted(self.categories)}
        if self.flagged:
            out[CO_OCCURRENCE] = 1.0
        return out

    @property
    def labels(self) -> list[str]:
        return [h.label for h in self.hits]


def score_name(category: str) -> str:
    """The score a category's match sets, e.g. ``text.minor``."""
    return f"text.{category}"


def screen_text(text: str | None, lists: Iterable[TermList] | None = None) -> TextResult:
    """Which lists match ``text`` (``lists`` None: the shipped defaults). Empty or missing text matches nothing."""
    if not text or not text.strip():
        return TextResult()
    lists = default_lists() if lists is None else list(lists)
    prepared = Prepared.of(text)
    hits = tuple(TextHit(tl.name, tl.version, tl.category) for tl in lists if tl.matches(prepared))
    return TextResult(hits)


_DEFAULTS: list[TermList] | None = None


def default_lists() -> list[TermList]:
    """The shipped lists (``default_terms``), built once per process."""
    global _DEFAULTS
    if _DEFAULTS is None:
        from cleanset.screening.default_terms import DEFAULT_LISTS, VERSION

        _DEFAULTS = [TermList(name, VERSION, cat, terms) for name, (cat, terms) in DEFAULT_LISTS.items()]
    return list(_DEFAULTS)


# A comment: "#" at the start of a line or after a space, followed by a space or the end of the line ("# note",
# "term  # note"). "#tag" is a term: lists hold hashtags.
_COMMENT = re.compile(r"(?:^|\s)#(?:\s|$)")


def parse_terms(lines: Iterable[str], source: str) -> list[str]:
    """Terms from a plain text file: one per line, blank lines skipped, ``# `` (a hash and a space, or a hash
    alone) starts a comment; ``#tag`` is a term. A line holding nothing a token can be made of is an error naming
    the line (never its text: the term may be confidential): a list that silently drops terms matches less than
    its owner thinks."""
    from cleanset.errors import InputFormatError

    out: list[str] = []
    for n, line in enumerate(lines, 1):
        m = _COMMENT.search(line)
        term = (line[: m.start()] if m else line).strip()
        if not term:
            continue
        if not _term_key(term) and not any(_is_cjk(ch) for ch in term):
            raise InputFormatError(source, "this line has no letters or digits to match", n)
        out.append(term)
    if not out:
        raise InputFormatError(source, "no terms found (one term per line; '# ' starts a comment)")
    return out
