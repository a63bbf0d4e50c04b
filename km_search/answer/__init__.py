"""Answers for the chat and `km-search ask`: extractive (offline default) or generative.

    from km_search.answer import ask, answer, Answer, passage_link
"""
from .extract import (NO_ANSWER, Answer, answer, ask, coverage, extractive, generative, passage_link,
                      strong_hits)
from .questions import Question, lang_of, question_type, understand

__all__ = ["NO_ANSWER", "Answer", "answer", "ask", "coverage", "extractive", "generative",
           "passage_link", "strong_hits", "Question", "lang_of", "question_type", "understand"]
