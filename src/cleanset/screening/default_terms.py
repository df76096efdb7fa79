"""The term lists that ship with cleanset: plain single words, one category per list, several languages.

Why these are short and plain: a caption is flagged only when a term of the ``minor`` category and a term of the
``sexual`` category occur in it together, so each list on its own must stay harmless and broad (the words are in
every dictionary). Hotlines share much better keyword lists with their members; those are imported as user lists
(``cleanset terms import``) and travel versioned like banks. Words that are ordinary words in another language
(English "kind", German "kind" = child) are left out where they would flag everyday text.

Terms are written in their plain spelling; matching normalises case, accents, separators and look-alike characters
on both sides (``cleanset.screening.text.normalise``), so no spelling variants are needed here.
"""

from __future__ import annotations

# Bumped whenever a list below changes: results name the list and this version, never the term.
VERSION = 2  # 2: a two-letter katakana term dropped (it is part of an everyday loanword)

MINOR_TERMS: tuple[str, ...] = (
    # English
    "child", "children", "kid", "kids", "toddler", "toddlers", "infant", "infants", "preteen", "preteens",
    "underage", "schoolgirl", "schoolboy", "schoolchild", "juvenile", "youngster",
    # German
    "kinder", "kleinkind", "schulmadchen", "minderjahrig",
    # French
    "enfant", "enfants", "fillette", "gamin", "gamine", "mineur", "mineure",
    # Spanish, Portuguese
    "nino", "nina", "ninos", "ninas", "crianca", "criancas", "menina", "menino",
    # Italian
    "bambino", "bambina", "bambini", "bambine",
    # Dutch
    "kinderen", "meisje",
    # Polish, Czech
    "dziecko", "dzieci", "dite", "deti",
    # Russian
    "ребенок", "дети", "девочка", "мальчик", "школьница",
    # Japanese, Chinese (matched as substrings: these scripts write no spaces)
    "子供", "児童", "幼女", "儿童", "幼童",
)  # fmt: skip

SEXUAL_TERMS: tuple[str, ...] = (
    # English
    "nude", "nudes", "naked", "nudity", "sex", "sexy", "sexual", "porn", "porno", "pornographic", "xxx",
    "nsfw", "erotic", "erotica", "explicit", "hentai", "lewd", "topless", "undressed", "fetish",
    # German
    "nackt", "nacktbilder", "erotik",
    # French
    "nue", "nues", "sexe", "erotique",
    # Spanish, Portuguese, Italian
    "desnudo", "desnuda", "desnudos", "desnudas", "nua", "nuda", "nudo", "pelada", "erotico", "erotica",
    # Dutch, Polish
    "naakt", "nago", "naga",
    # Russian
    "голый", "голая", "порно", "эротика",
    # Japanese, Chinese (substrings)
    "ヌード", "裸体", "色情",
)  # fmt: skip

DEFAULT_LISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # list name -> (category, terms)
    "default-minor": ("minor", MINOR_TERMS),
    "default-sexual": ("sexual", SEXUAL_TERMS),
}
