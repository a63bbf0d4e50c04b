"""Thai text handling: one place for normalisation, tokenisation, sentences and dates.

Index time and query time call the same functions from here, so the two sides can
never tokenise differently.
"""
from .normalize import normalize, fold_digits, thai_to_arabic_digits
from .tokenize import tokenize, word_count
from .sentences import split_sentences
from .dates import parse_thai_date, find_date

__all__ = ["normalize", "fold_digits", "thai_to_arabic_digits", "tokenize", "word_count",
           "split_sentences", "parse_thai_date", "find_date"]
