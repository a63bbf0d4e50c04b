"""English names of the Thai provinces a passage names, as extra BM25 tokens.

An English question spells a province the way English text does ("Khon Kaen", "Korat",
"Surat Thani"), which no rule-based romanisation reproduces (PyThaiNLP's royin gives
"nakhaatsima" for นครราชสีมา). So a passage naming a province also carries that
province's English forms from our own gazetteer (``PROVINCES_EN``, the table the query
expansion uses): the English words of a question then match the passage directly, and
count as matched in the query's idf coverage instead of as words the corpus lacks.
The words are cut by the same :func:`tokenize` as every query.
"""
from __future__ import annotations

from functools import lru_cache

from .glossary import PROVINCES_EN
from .provinces import provinces_in
from .tokenize import tokenize

#: Version of the extra index tokens; a build records it, and a change rebuilds the index.
PLACES_EN_VERSION = 1


@lru_cache(maxsize=1)
def _english_forms() -> dict[str, tuple[str, ...]]:
    forms: dict[str, list[str]] = {}
    for en, th in PROVINCES_EN.items():
        forms.setdefault(th, []).append(en)
    return {th: tuple(v) for th, v in forms.items()}


def place_tokens(text: str) -> list[str]:
    """English-form tokens of the provinces ``text`` names (each word once, in order)."""
    names = provinces_in(text)
    if not names:
        return []
    words = " ".join(en for th in names for en in _english_forms().get(th, ()))
    return list(dict.fromkeys(tokenize(words, normalized=True)))


def passage_tokens(text: str, places: bool = True) -> list[str]:
    """The BM25 tokens of a passage: its words, plus the English forms of the provinces it
    names when ``places`` (the ``places_en`` setting)."""
    tokens = tokenize(text)
    return tokens + place_tokens(text) if places else tokens
