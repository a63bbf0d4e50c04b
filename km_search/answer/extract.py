"""Answers for the chat and `km-search ask`: extractive (offline default) or generative.

Extractive: whole sentences of the top passages, chosen by :mod:`.select` for the
question's type and entity (:mod:`.questions`), diverse (MMR), announced lists given in
full; for factor, obstacle and recommendation questions the lesson-card items of the
retrieved documents (scoped to the asked province when the document tells several
cases) come first. Each source gets one citation number [n], after its last sentence,
numbered in order of appearance. English questions get English framing around the Thai
quotations (nothing is translated offline).

"No good answer" only when :func:`strong_hits` finds nothing relevant: the top passage
must share enough of the question's content words (see ``answer_min_coverage``) or
reach ``answer_min_bm25``; then the chat shows no result cards either, so the page
never says "no answer" above passages that hold one.

Generative (only when ``llm_url`` is set): the same passages and the sentences the
extractive answer chose go to the endpoint (:mod:`.llm`); citation numbers it invents
are dropped, and any failure falls back to the extractive answer.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from km_search.markup import safe_url
from km_search.models import Hit
from km_search.search import query_tokens
from km_search.settings import Config
from km_search.thai import tokenize

from . import select as S
from .questions import LESSON_FIELDS, LISTING_TYPES, Question, lang_of, understand

log = logging.getLogger("km_search.answer")

NO_ANSWER = {"th": "ไม่พบคำตอบที่ดีพอในคลังความรู้ ลองถามด้วยคำอื่นหรือปรับตัวกรอง",
             "en": "No good answer found in the knowledge base. Try other words or loosen the filters."}
_EN_STOP = {"a", "an", "the", "of", "for", "to", "in", "on", "and", "or", "is", "are", "was",
            "what", "which", "who", "how", "why", "when", "where", "do", "does", "did", "by",
            "with", "from", "at", "as", "be", "it", "its", "this", "that", "about", "many", "much"}
_Q_WORDS = {"อะไร", "อย่างไร", "ไหม", "ใคร", "เมื่อไร", "เท่าไร", "กี่", "ทำไม", "บ้าง", "คือ", "หรือไม่"}
CardLookup = Callable[[str], Any]  # doc_id -> LessonCard | None


def _stopwords() -> set[str]:
    try:
        from pythainlp.corpus import thai_stopwords
        return set(thai_stopwords()) | _EN_STOP | _Q_WORDS
    except Exception:  # pragma: no cover - corpus files missing
        return _EN_STOP | _Q_WORDS


_STOP = _stopwords()


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
    evidence: list[tuple[str, Hit]] = field(default_factory=list)  # chosen sentences
    kind: str = "other"  # the question type


def _query_content(question: str) -> set[str]:
    return {t for t in query_tokens(question) if t not in _STOP and re.search(r"\w", t)}


def coverage(question: str, text: str) -> float:
    """Share of the question's content words found in ``text``. An English word counts as
    found when it, or a Thai glossary term for it (alone or with its neighbour: "khon
    kaen"), is in the text; an English word with no Thai term that the text lacks counts
    as missing, so one translatable word ("results") cannot carry a whole question."""
    have = S.content_tokens(text, _STOP) | {t.lower() for t in tokenize(text, normalized=True)}
    if lang_of(question) == "th":
        words = _query_content(question)
        return len(words & have) / len(words) if words else 0.0
    from km_search.thai.glossary import expand_english

    words = [w for w in re.findall(r"[a-z0-9][a-z0-9'.-]*", question.lower()) if w not in _STOP]
    if not words:
        return 0.0
    found = 0
    for i, w in enumerate(words):
        terms = {w}
        for phrase in (w, " ".join(words[max(0, i - 1):i + 1]), " ".join(words[i:i + 2])):
            terms |= {t for t in tokenize(expand_english(phrase), normalized=True) if t.strip()}
        found += bool(terms & have)
    return found / len(words)


def strong_hits(hits: list[Hit], cfg: Config, question: str) -> list[Hit]:
    """Hits good enough to cite, or [] for "no good answer".

    The top hit must hold at least ``answer_min_coverage`` of the question's content
    words, or reach ``answer_min_bm25``; the others are kept when they cover half as
    much. Coverage is a share, not a corpus-dependent score, so it holds on a corpus
    whose BM25 statistics differ (see the README's threshold figures).
    """
    if not hits:
        return []
    top_cov = coverage(question, hits[0].title + " " + hits[0].text)
    bm25_ok = cfg.answer_min_bm25 > 0 and hits[0].scores.get("bm25", 0.0) >= cfg.answer_min_bm25
    if top_cov < cfg.answer_min_coverage and not bm25_ok:
        return []
    return [hits[0]] + [h for h in hits[1:4]
                        if coverage(question, h.title + " " + h.text) >= 0.5 * cfg.answer_min_coverage]


def _card_sentences(q: Question, good: list[Hit], cards: CardLookup | None) -> list[S.Sentence]:
    """Lesson-card items (of the asked kind) of the retrieved documents, each cited to a
    retrieved passage that holds it."""
    name = LESSON_FIELDS.get(q.kind)
    if not name or cards is None:
        return []
    out: list[S.Sentence] = []
    for doc_id in dict.fromkeys(h.doc_id for h in good):
        try:
            card = cards(doc_id)
        except Exception as e:  # a lessons store problem must not break the answer
            log.warning("lesson card of %s unavailable: %s", doc_id, e)
            card = None
        if card is None:
            continue
        if q.entity and q.entity in card.cases():
            card = card.scoped(q.entity)
        for it in card.items(name):
            text = " ".join(it.text.split())
            hit = next((h for h in good if h.doc_id == doc_id and it.text[:60] in h.text), None)
            if hit is None or len(text) < 8:
                continue
            rank = good.index(hit)
            s = S.Sentence(text, hit, rank, hit.text.find(it.text[:60]), hit.text.find(it.text[:60]),
                           S.content_tokens(text, _STOP), it.province, from_card=True)
            out.append(s)
    return out


_LEADS = {
    "th": {"factors": "ปัจจัยความสำเร็จ{e}ตามเอกสาร:", "obstacles": "ปัญหาและอุปสรรค{e}ตามเอกสาร:",
           "recommendations": "ข้อเสนอแนะ{e}ตามเอกสาร:", "list": "", "comparison": "เปรียบเทียบตามเอกสาร:"},
    "en": {"factors": "Success factors{e} reported in the sources{q}:",
           "obstacles": "Obstacles{e} reported in the sources{q}:",
           "recommendations": "Recommendations{e} in the sources{q}:",
           "how": "How it was done{e}, according to the sources{q}:",
           "why": "Reasons given in the sources{q}:", "who": "People named in the sources{q}:",
           "when": "Dates in the sources{q}:", "how_many": "Figures in the sources{q}:",
           "definition": "Definition from the sources{q}:", "list": "Listed in the sources{q}:",
           "comparison": "What the sources say about each{q}:", "other": "From the sources{q}:"},
}


def _lead(q: Question, quoted_thai: bool) -> str:
    tpl = _LEADS[q.lang].get(q.kind, "")
    if not tpl:
        return ""
    if q.lang == "th":
        e = f"ของจังหวัด{q.entity}" if q.entity and q.kind != "comparison" else ""
        return tpl.format(e=e)
    from km_search.thai.glossary import PROVINCES_EN

    en = next((k.title() for k, v in PROVINCES_EN.items() if v == q.entity), None)
    return tpl.format(e=f" for {en}" if en and q.kind != "comparison" else "",
                      q=" (quoted in Thai)" if quoted_thai else "")


def _compose(q: Question, chosen: list[S.Sentence]) -> tuple[str, list[Hit]]:
    """Text with one [n] per source, after the source's last sentence; sources in the
    retrieval order, numbered 1, 2, …"""
    ranks = {id(s.hit): s.rank for s in chosen}
    cited: list[Hit] = sorted({id(s.hit): s.hit for s in chosen}.values(), key=lambda h: ranks[id(h)])
    chosen = sorted(chosen, key=lambda s: (s.rank, s.pos))  # sources in retrieval order
    bullets = q.kind in LISTING_TYPES or q.kind == "comparison" or (
        len(chosen) == 1 and len(chosen[0].items) >= 2)
    lines: list[str] = []
    for i, s in enumerate(chosen):
        last_of_source = i + 1 == len(chosen) or chosen[i + 1].hit is not s.hit
        text = s.text
        if s.items:
            text += "".join(f"\n  - {it}" for it in s.items) if bullets else " " + " ".join(s.items)
        mark = f" [{cited.index(s.hit) + 1}]" if last_of_source else ""
        if q.kind == "comparison" and s.subject:
            text = f"จังหวัด{s.subject}: {text}" if q.lang == "th" else f"{s.subject}: {text}"
        lines.append(("- " if bullets else "") + text + mark)
    quoted_thai = any(re.search(r"[\u0e00-\u0e7f]", s.text) for s in chosen)
    lead = _lead(q, quoted_thai)
    body = ("\n" if bullets else " ").join(lines)
    return ((lead + ("\n" if bullets else " ") + body) if lead else body), cited


def extractive(question: str, hits: list[Hit], cfg: Config, cards: CardLookup | None = None) -> Answer:
    q = understand(question)
    good = strong_hits(hits, cfg, question)
    if not good:
        return Answer(NO_ANSWER[q.lang], False, "none", kind=q.kind)
    qtok = _query_content(question)
    cands = _card_sentences(q, good, cards) + S.sentences(good, _STOP)
    for s, near in zip(cands, S.neighbour_matches(cands, qtok)):
        s.score = S.score(s, q, qtok, near)
    cands = [s for s in cands if s.from_card or qtok & s.tokens
             or (q.kind in S.DETAIL_TYPES and s.score >= 3.0)]
    if not cands:
        return Answer(NO_ANSWER[q.lang], False, "none", kind=q.kind)
    best = max(s.score for s in cands)
    cands = [s for s in cands if s.score >= 0.5 * best]
    k = max(cfg.answer_sentences, 6) if q.kind in LISTING_TYPES else cfg.answer_sentences
    if q.kind == "comparison" and len(q.provinces) >= 2:
        chosen = []
        for p in q.provinces[:3]:  # the best sentences about each entity compared
            own = [s for s in cands if s.subject == p]
            chosen += S.mmr(own, max(2, k // len(q.provinces[:3])))
        chosen = chosen or S.mmr(cands, k)
    else:
        chosen = S.mmr(cands, k)
    text, cited = _compose(q, chosen)
    return Answer(text, True, "extractive", cited, evidence=[(s.text, s.hit) for s in chosen], kind=q.kind)


def generative(question: str, history: list, hits: list[Hit], cfg: Config,
               cards: CardLookup | None = None) -> Answer:
    """Ask the configured endpoint with the extractive answer's evidence; fall back to the
    extractive answer on any failure."""
    from .llm import LLMClient, LLMError, build_messages, renumber_citations

    fallback = extractive(question, hits, cfg, cards)
    good = strong_hits(hits, cfg, question)
    if not good:
        return fallback
    lang = lang_of(question)
    sources = [f"{h.title}\n{h.text}" for h in good]
    evidence = [f"{s} [{good.index(h) + 1}]" for s, h in fallback.evidence if h in good]
    try:
        with LLMClient(cfg) as client:
            text = client.complete(build_messages(question, history, sources, evidence, lang))
    except LLMError as e:
        log.warning("generative answer failed (%s); using the extractive one", e)
        fallback.note = "generative endpoint unavailable; extractive answer shown"
        return fallback
    if not text or "NO_ANSWER" in text:
        return Answer(NO_ANSWER[lang], False, "none", kind=fallback.kind)
    text, used = renumber_citations(text, len(good))
    if not used:  # an uncited answer is not trusted
        fallback.note = "generative answer had no citations; extractive answer shown"
        return fallback
    return Answer(text, True, "generative", [good[i - 1] for i in used], kind=fallback.kind)


def answer(question: str, history: list, hits: list[Hit], cfg: Config,
           generate: bool | None = None, cards: CardLookup | None = None) -> Answer:
    use_llm = bool(cfg.llm_url) if generate is None else (generate and bool(cfg.llm_url))
    if use_llm:
        return generative(question, history, hits, cfg, cards)
    return extractive(question, hits, cfg, cards)


def ask(searcher: Any, question: str, k: int = 5, filters: Any = None, history: list | None = None,
        generate: bool | None = None, cards: CardLookup | None = None,
        plan: Any = None) -> tuple[Answer, list[Hit]]:
    """Search and answer: what /chat and `km-search ask` both run (the question must
    already be cleaned with :func:`km_search.search.clean_query`). When there is no good
    answer the hits are dropped too: nothing relevant was found. ``plan`` is the query
    understanding (:func:`km_search.query.understand.plan`) the search applies, if any."""
    hits = searcher.search(question, k=max(k, 4), filters=filters, plan=plan)
    ans = answer(question, history or [], hits, searcher.cfg, generate, cards)
    return ans, (hits if ans.found else [])
