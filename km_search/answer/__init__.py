"""Answers for the chat and `km-search ask`: extractive (offline default) or generative.

    from km_search.answer import answer, Answer, passage_link
"""
from .extract import NO_ANSWER, Answer, answer, ask, extractive, generative, lang_of, passage_link, strong_hits

__all__ = ["NO_ANSWER", "Answer", "answer", "ask", "extractive", "generative", "lang_of", "passage_link",
           "strong_hits"]
