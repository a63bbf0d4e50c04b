"""Sentence-aware chunking of documents into passages.

Passages are packed from whole sentences up to ``target_words`` words (Thai words as
segmented by PyThaiNLP), with ``overlap`` sentences repeated between neighbours so a
fact that straddles a boundary is still found. A sentence longer than the target is
cut at word boundaries. The title is not part of the passage text but travels with
each chunk, and is prepended when embedding and BM25-indexing it.
"""
from __future__ import annotations

from .models import Chunk, Document
from .thai import split_sentences, word_count
from .thai.tokenize import segment


def _split_long(text: str, start: int, target: int) -> list[tuple[int, int, int]]:
    """Cut one over-long sentence at word boundaries: (start, end, words)."""
    pieces, cur, words, off = [], start, 0, start
    for tok in segment(text, keep_whitespace=True):
        off += len(tok)
        if tok.strip():
            words += 1
        if words >= target:
            pieces.append((cur, off, words))
            cur, words = off, 0
    if off > cur:
        pieces.append((cur, off, words))
    return pieces


def chunk_text(body: str, target_words: int = 180, overlap: int = 1) -> list[tuple[int, int]]:
    """Character spans of passages in ``body``."""
    sents: list[tuple[int, int, int]] = []
    for s, e in split_sentences(body):
        n = word_count(body[s:e])
        if n > target_words:
            sents.extend(_split_long(body[s:e], s, target_words))
        else:
            sents.append((s, e, n))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(sents):
        j, words = i, 0
        while j < len(sents) and (j == i or words + sents[j][2] <= target_words):
            words += sents[j][2]
            j += 1
        spans.append((sents[i][0], sents[j - 1][1]))
        if j >= len(sents):
            break
        i = max(i + 1, j - overlap)
    return spans


def chunk_document(doc: Document, target_words: int = 180, overlap: int = 1) -> list[Chunk]:
    """Passages of a document; a document with an empty body yields its title alone."""
    spans = chunk_text(doc.body, target_words, overlap)
    if not spans:
        return [Chunk(doc.doc_id, 0, doc.title, doc.title, 0, 0)] if doc.title.strip() else []
    return [Chunk(doc.doc_id, k, doc.body[s:e], doc.title, s, e) for k, (s, e) in enumerate(spans)]


def passage_input(chunk: Chunk) -> str:
    """The text that is embedded and BM25-indexed for a chunk: title + passage."""
    if chunk.text == chunk.title or not chunk.title:
        return chunk.text
    return f"{chunk.title}\n{chunk.text}"
