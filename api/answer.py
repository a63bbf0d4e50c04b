"""Answers for the chat: extractive (offline default) or generative (OpenAI-compatible).

Extractive: the sentences (``km_search.thai.split_sentences``, rule-based, keeps
"ก.พ.ร." whole) of the top passages that share the most query words, each followed
by the citation number [n] of its passage. If the best hit is weak (BM25 score under
``answer_min_bm25``) we say no good answer was found instead of citing it.

Generative (only when ``llm_url`` is set): the same passages, numbered, go to the
endpoint's /chat/completions with an instruction to cite them as [n]; citation numbers
it invents are dropped, and any failure falls back to the extractive answer.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import httpx

from km_search.markup import safe_url
from km_search.models import Hit
from km_search.search import query_tokens
from km_search.settings import Config
from km_search.thai import split_sentences, tokenize

log = logging.getLogger("km_search.api")

NO_ANSWER = {"th": "ไม่พบคำตอบที่ดีพอในคลังความรู้ ลองถามด้วยคำอื่นหรือปรับตัวกรอง",
             "en": "No good answer found in the knowledge base. Try other words or loosen the filters."}
_EN_STOP = {"a", "an", "the", "of", "for", "to", "in", "on", "and", "or", "is", "are", "was",
            "what", "which", "who", "how", "why", "when", "where", "do", "does", "did", "by",
            "with", "from", "at", "as", "be", "it", "its", "this", "that", "about"}
_MAX_SENTENCE = 400


def _stopwords() -> set[str]:
    try:
        from pythainlp.corpus import thai_stopwords
        return set(thai_stopwords()) | _EN_STOP
    except Exception:  # pragma: no cover - corpus files missing
        return set(_EN_STOP)


_STOP = _stopwords()


def lang_of(text: str) -> str:
    return "th" if re.search(r"[\u0e00-\u0e7f]", text) else "en"


def passage_link(hit: Hit) -> str:
    """Where a citation points: the source URL if it is http(s), else our own document page
    at the passage (a stored ``javascript:`` URL never becomes a link on the page)."""
    if hit.url and safe_url(hit.url):
        return hit.url
    return f"/documents/{hit.doc_id}?passage={hit.chunk_id}#passage"


@dataclass
class Answer:
    text: str
    found: bool
    mode: str  # "extractive" | "generative" | "none"
    cited: list[Hit] = field(default_factory=list)  # citation n = index + 1
    note: str = ""


def _content_tokens(text: str) -> set[str]:
    return {t for t in tokenize(text, normalized=True)
            if t.strip() and t not in _STOP and re.search(r"\w", t)}


def _query_content(question: str) -> set[str]:
    return {t for t in query_tokens(question) if t not in _STOP and re.search(r"\w", t)}


def strong_hits(hits: list[Hit], cfg: Config, question: str) -> list[Hit]:
    """Hits good enough to cite, or [] for "no good answer".

    The best hit must reach ``answer_min_bm25``, or half of it when it contains every
    content word of the query (short keyword queries score lower); the others 60% of it.
    """
    if not hits:
        return []
    top = hits[0].scores.get("bm25", 0.0)
    if top < cfg.answer_min_bm25:
        words = _query_content(question)
        if not (words and top >= 0.5 * cfg.answer_min_bm25
                and words <= _content_tokens(hits[0].text)):
            return []
    return [hits[0]] + [h for h in hits[1:4]
                        if h.scores.get("bm25", 0.0) >= 0.6 * cfg.answer_min_bm25]


def extractive(question: str, hits: list[Hit], cfg: Config) -> Answer:
    lang = lang_of(question)
    good = strong_hits(hits, cfg, question)
    if not good:
        return Answer(NO_ANSWER[lang], False, "none")
    qtok = _query_content(question)
    cands = []  # (score, hit rank, position, sentence, hit)
    for rank, h in enumerate(good):
        for pos, (a, b) in enumerate(split_sentences(h.text)):
            sent = h.text[a:b].strip()
            if len(sent) < 15 or sent == h.title.strip():
                continue
            if len(sent) > _MAX_SENTENCE:
                sent = sent[:_MAX_SENTENCE].rsplit(" ", 1)[0] + " …"
            matched = qtok & _content_tokens(sent)
            if not matched:
                continue
            cands.append((len(matched) + 0.5 / (rank + 1), rank, pos, sent, h))
    if not cands:
        return Answer(NO_ANSWER[lang], False, "none")
    cands.sort(key=lambda c: -c[0])
    best = cands[0][0]
    chosen, seen = [], set()
    for c in cands:
        if len(chosen) >= cfg.answer_sentences or c[0] < 0.5 * best:
            break
        if c[3] not in seen:
            seen.add(c[3]); chosen.append(c)
    chosen.sort(key=lambda c: (c[1], c[2]))
    cited: list[Hit] = []
    parts = []
    for _, _, _, sent, h in chosen:
        if h not in cited:
            cited.append(h)
        parts.append(f"{sent} [{cited.index(h) + 1}]")
    return Answer(" ".join(parts), True, "extractive", cited)


def generative(question: str, history: list[dict], hits: list[Hit], cfg: Config) -> Answer:
    """Ask the configured endpoint; fall back to the extractive answer on any failure."""
    fallback = extractive(question, hits, cfg)
    good = strong_hits(hits, cfg, question)
    if not good:
        return fallback
    lang = lang_of(question)
    sources = "\n\n".join(f"[{i}] {h.title}\n{h.text}" for i, h in enumerate(good, 1))
    system = ("You answer questions about Thai public-sector knowledge management using ONLY "
              "the numbered passages given. Cite every sentence with its passage number like "
              "[1]. If the passages do not answer the question, reply exactly NO_ANSWER. "
              f"Answer in {'Thai' if lang == 'th' else 'English'}.")
    messages = [{"role": "system", "content": system}]
    for turn in history[-6:]:
        if turn.get("role") in ("user", "assistant") and turn.get("content"):
            messages.append({"role": turn["role"], "content": str(turn["content"])[:2000]})
    messages.append({"role": "user", "content": f"Passages:\n{sources}\n\nQuestion: {question}"})
    headers = {"Authorization": f"Bearer {cfg.llm_api_key}"} if cfg.llm_api_key else {}
    try:
        r = httpx.post(cfg.llm_url.rstrip("/") + "/chat/completions", headers=headers,
                       timeout=cfg.llm_timeout, json={"model": cfg.llm_model, "messages": messages,
                                                      "temperature": 0})
        r.raise_for_status()
        text = str(r.json()["choices"][0]["message"]["content"]).strip()
    except Exception as e:  # network, HTTP status, malformed JSON: all fall back
        log.warning("generative answer failed (%s); using the extractive one", e)
        fallback.note = "generative endpoint unavailable; extractive answer shown"
        return fallback
    if not text or "NO_ANSWER" in text:
        return Answer(NO_ANSWER[lang], False, "none")
    used = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text) if 1 <= int(n) <= len(good)})
    if not used:  # an uncited answer is not trusted
        fallback.note = "generative answer had no citations; extractive answer shown"
        return fallback
    renumber = {old: new for new, old in enumerate(used, 1)}
    text = re.sub(r"\s*\[(\d+)\]", lambda m: f" [{renumber[int(m[1])]}]" if int(m[1]) in renumber
                  else "", text).strip()
    return Answer(text, True, "generative", [good[i - 1] for i in used])


def answer(question: str, history: list[dict], hits: list[Hit], cfg: Config,
           generate: bool | None = None) -> Answer:
    use_llm = bool(cfg.llm_url) if generate is None else (generate and bool(cfg.llm_url))
    return generative(question, history, hits, cfg) if use_llm else extractive(question, hits, cfg)
