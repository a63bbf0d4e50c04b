"""The query path: validate, retrieve (BM25 / dense / hybrid), fuse, diversify, cite.

A Searcher holds one loaded build in memory. The build's folder is resolved once when
it loads, so an index swapped in by a rebuild never changes under a running search;
callers that want the new one call :meth:`Searcher.reload_if_changed`.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from dataclasses import dataclass, replace

import numpy as np

from km_search import indexdir
from km_search import passages as P
from km_search.embed import Embedder, get_embedder
from km_search.embed.querycache import QueryVectorCache
from km_search.docstore import DocumentStore
from km_search.models import Document, Hit
from km_search.overview import Overview, collection_overview
from km_search.query.lexicon import LATIN_WORD, InducedLexicon
from km_search.query.stopwords import is_stop
from km_search.retrieval.backend import EMPTY, get_backend, tie_order
from km_search.retrieval.filters import Filter
from km_search.retrieval.fusion import DEFAULT_ADAPTIVE, Adaptive, Evidence, fuse, latin_share
from km_search.retrieval.rerank import get_reranker
from km_search.retrieval.snippet import make_snippet
from km_search.settings import Config
from km_search.thai import normalize, tokenize
from km_search.thai.ngrams import is_ngram, with_ngrams
from km_search.thai.glossary import expand_english

if TYPE_CHECKING:  # understand -> lessons.facets -> lessons -> search: a cycle at run time
    from km_search.query.understand import QueryPlan

MODES = ("bm25", "dense", "hybrid")


class QueryError(ValueError):
    """A query we refuse, with a message fit for the user."""


def clean_query(query: str, max_chars: int) -> str:
    if not isinstance(query, str):
        raise QueryError("query must be text")
    if len(query) > max_chars:
        raise QueryError(f"query is too long ({len(query):,} characters; the limit is "
                         f"{max_chars:,}): ask a shorter question")
    q = normalize(query).strip()
    if not q:
        raise QueryError("query is empty: type some words to search for")
    return q


def query_tokens(query: str, expand: tuple[str, ...] | None = None, ngrams: int = 0) -> list[str]:
    """BM25/highlight tokens of a cleaned query, with Thai terms for English words.

    English function words are dropped (they match English boilerplate in Thai pages);
    a query made only of them keeps them, so it still finds something. ``ngrams``: the
    Thai character n-gram length the index holds (its manifest; 0 = none), made from the
    query's own words only, as the index made them from each passage's words."""
    tokens = tokenize(query, normalized=True)
    content = [t for t in tokens if not is_stop(t)]
    tokens = with_ngrams(content or tokens, ngrams)
    extra = expand_english(query, expand)  # Thai names/terms for English words, BM25 only
    if extra:
        tokens += [t for t in tokenize(extra, normalized=True) if t not in tokens]
    return tokens


def _words(tokens: list[str]) -> set[str]:
    """The query tokens a snippet highlights: words, not character n-grams."""
    return {t for t in tokens if not is_ngram(t)}


@dataclass
class Filters:
    """Optional restrictions on which documents may answer."""

    date_from: str | None = None  # ISO C.E. dates, inclusive
    date_to: str | None = None
    publisher: str | None = None  # substring match
    province: str | None = None
    source: str | None = None

    def active(self) -> bool:
        return any(v for v in vars(self).values())

    def expression(self) -> Filter:
        """The backend-neutral form every retrieval backend compiles for its engine."""
        conds = [("published", "gte", self.date_from), ("published", "lte", self.date_to),
                 ("publisher", "contains", self.publisher), ("province", "has", self.province),
                 ("source", "eq", self.source)]
        return Filter.of(*[c for c in conds if c[2]])


@dataclass
class Probe:
    """One query's candidates per retriever, before fusion (kept so evaluation can
    replay fusion settings without searching again)."""

    bm25: tuple[np.ndarray, np.ndarray]
    dense: tuple[np.ndarray, np.ndarray]
    evidence: Evidence | None
    tokens: list[str]
    mode: str


@dataclass(frozen=True)
class _Loaded:
    """One loaded build: what a search reads, swapped whole by a reload."""

    build: Path
    manifest: dict
    vectors: Any
    lexical: Any
    db: sqlite3.Connection


class Searcher:
    """Searches run concurrently: FAISS search (one OpenMP thread per call), bm25s's
    read-only score matrix and ONNX Runtime's ``run`` are safe to call from many threads,
    and each thread reads passages.db through its own read-only connection. Only a
    reload takes the lock; a search reads the loaded build once, at its start, so a
    swap mid-search never mixes two builds. (One lock around every search used to
    serialise a server process's threads: with 2 cores, one core sat idle while a
    request waited.)"""

    def __init__(self, cfg: Config, embedder: Embedder | None = None, verify: bool = False):
        self.cfg = cfg
        self._embedder = embedder
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pins: list[indexdir.BuildPin] = []
        self._lexicon: tuple[Path, InducedLexicon] | None = None
        self._lexicon_lock = threading.Lock()
        self.query_vectors = QueryVectorCache(cfg.query_cache)
        self._load(verify)
        # loaded up front so a bad KM_SEARCH_RERANKER fails at start, not at the first query
        self.reranker = get_reranker(cfg.reranker, cfg.rerank_top)

    # -- loading -------------------------------------------------------------
    def _load(self, verify: bool) -> None:
        link = self.cfg.index_dir
        for attempt in range(3):  # a build superseded and deleted between resolve and pin
            build = indexdir.live_build(self.cfg.home_path)
            if build is None:
                raise indexdir.IndexMissing(f"no index at {link}: run `km-search index` first")
            try:
                pin = indexdir.pin(build)  # the indexer deletes no build a reader pins
                break
            except indexdir.IndexMissing:
                if attempt == 2:
                    raise
        try:
            self._load_pinned(build, verify)
        except BaseException:
            pin.release()
            raise
        # keep the previous build pinned until the next load: requests that began on it
        # (documents, filters) may still be opening its files
        for old in self._pins[1:]:
            old.release()
        self._pins = [pin] + self._pins[:1]

    def _load_pinned(self, build, verify: bool) -> None:
        man = indexdir.read_manifest(build, verify=verify)
        backend = get_backend(indexdir.backend_of(man))
        try:
            db = P.open_db(build / indexdir.PASSAGES, readonly=True)
            n = db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
            resolve = P.resolver(db)
            vectors = backend.load_vectors(build, self.cfg, man, resolve, readonly=True)
            lexical = backend.load_lexical(build, self.cfg, man, resolve)
        except Exception as e:  # engines and sqlite raise many types on damaged files
            raise indexdir.IndexCorrupt(f"index at {build} is damaged ({type(e).__name__}: "
                                        f"{str(e).splitlines()[0][:200] if str(e) else ''}); "
                                        "rebuild with `km-search index --rebuild`") from None
        if vectors.dim != man["model"]["dim"] or vectors.count() != n or lexical.count() != n:
            raise indexdir.IndexCorrupt(
                f"index at {build} is inconsistent (vectors {vectors.count()}x{vectors.dim}, "
                f"bm25 {lexical.count()}, passages {n}, manifest dim {man['model']['dim']}); "
                "rebuild with `km-search index --rebuild`")
        # one assignment: a search that reads ``_state`` sees the old build or the new one
        self._state = _Loaded(build, man, vectors, lexical, db)

    # the loaded build's parts, as before the snapshot existed
    build = property(lambda self: self._state.build)
    manifest = property(lambda self: self._state.manifest)
    vectors = property(lambda self: self._state.vectors)
    lexical = property(lambda self: self._state.lexical)
    db = property(lambda self: self._state.db)

    def _reader(self, build) -> sqlite3.Connection:
        """This thread's read-only connection to ``build``'s passages.db (sqlite3 objects
        are not for concurrent use from several threads)."""
        cur = getattr(self._local, "conn", None)
        if cur is not None and cur[0] == build:
            return cur[1]
        if cur is not None:
            cur[1].close()
        db = P.open_db(build / indexdir.PASSAGES, readonly=True)
        self._local.conn = (build, db)
        return db

    def reload_if_changed(self) -> bool:
        """Load the live build if a rebuild replaced it; returns True if it did."""
        if indexdir.live_build(self.cfg.home_path) == self.build:
            return False
        with self._lock:
            self._load(verify=False)
        return True

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.cfg)
        emb = self._embedder
        m = self.manifest["model"]
        if emb.fingerprint != m["fingerprint"] or emb.dim != m["dim"]:
            raise indexdir.IndexMismatch(
                f"the index was built with model '{m['name']}' (dim {m['dim']}) but the "
                f"configured model is '{emb.name}' (dim {emb.dim}); rebuild with "
                "`km-search index --rebuild` or set KM_SEARCH_MODEL (or KM_SEARCH_RUNTIME) back")
        return emb

    # -- searching -----------------------------------------------------------
    def probe(self, query: str, mode: str = "hybrid", depth: int | None = None,
              filters: Filters | None = None, boost: list[str] | None = None,
              state: "_Loaded | None" = None) -> "Probe":
        """Each retriever's candidates for a cleaned query, and the lexical evidence.
        ``boost``: extra BM25 terms (canonical forms of what the query names)."""
        st = state or self._state
        if mode not in MODES:
            raise QueryError(f"unknown mode '{mode}': choose one of {', '.join(MODES)}")
        depth = depth or self.cfg.candidates
        where = filters.expression() if filters and filters.active() else None
        tokens = query_tokens(query, self.expand, st.manifest.get("tokenizer", {}).get("ngrams", 0))
        if self.cfg.lexicon and mode != "dense":
            tokens += self._lexicon_terms(tokens, st)
        for term in boost or ():
            tokens += [t for t in tokenize(term, normalized=False) if t not in tokens]
        b = d = EMPTY
        if mode in ("bm25", "hybrid"):
            b = tie_order(st.lexical.search(tokens, depth, where))
        # (The dense branch on a second thread while BM25 scores was tried twice: no gain on
        # 2 cores; 100k 12.4 vs 12.9 ms, 1M 26 vs 26 ms with cached query vectors.)
        if mode in ("dense", "hybrid"):
            emb = self.embedder  # a repeated question's vector comes from the cache
            qv = self.query_vectors.get(emb.query_fingerprint, query,
                                        lambda t: emb.encode_queries([t])[0])
            d = tie_order(st.vectors.search(qv, depth, where))
        ev = None
        if mode == "hybrid":
            cover = getattr(st.lexical, "coverage", None)  # absent (milvus): neutral 1
            cov = cover(tokens, b[0]) if cover else np.ones(len(b[0]), np.float32)
            ev = Evidence(cov, latin_share(query))
        return Probe(b, d, ev, tokens, mode)

    def _lexicon_terms(self, tokens: list[str], st: "_Loaded") -> list[str]:
        """Thai words the induced lexicon gives the query's English words (built on first
        use from the build's BM25 vocabulary; none for backends that keep no vocabulary)."""
        index = getattr(st.lexical, "index", None)
        if index is None or not any(LATIN_WORD.match(t) for t in tokens):
            return []
        with self._lexicon_lock:  # one build per loaded index, however many threads ask
            built = self._lexicon
            if built is None or built[0] is not st.build:
                built = (st.build, InducedLexicon.build(index, self.embedder, self.cfg.lexicon,
                                                        self.cfg.lexicon_min_df, self.cfg.cache_db))
                self._lexicon = built
        return built[1].expand(tokens, self.embedder, self.cfg.cache_db)

    def fuse(self, pr: "Probe", params: Adaptive | None = None) -> list[tuple[int, float]]:
        if pr.mode == "bm25":
            return list(zip(pr.bm25[0].tolist(), pr.bm25[1].tolist()))
        if pr.mode == "dense":
            return list(zip(pr.dense[0].tolist(), pr.dense[1].tolist()))
        return fuse(pr.bm25, pr.dense, self.cfg.fusion, self.cfg.bm25_weight, pr.evidence,
                    params or self.fusion_params)

    @property
    def expand(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in (self.cfg.expand or "").split(",") if x.strip())

    @property
    def fusion_params(self) -> Adaptive:
        return replace(DEFAULT_ADAPTIVE, w_thai=self.cfg.bm25_weight)

    def retrieve(self, query: str, mode: str = "hybrid", depth: int | None = None,
                 filters: Filters | None = None, boost: list[str] | None = None,
                 state: "_Loaded | None" = None
                 ) -> tuple[list[tuple[int, float]], dict, list[str]]:
        """Ranked (pid, score) for a cleaned query, per-retriever scores, query tokens."""
        pr = self.probe(query, mode, depth, filters, boost, state)
        parts: dict[str, dict[int, float]] = {}
        if mode in ("bm25", "hybrid"):
            parts["bm25"] = dict(zip(pr.bm25[0].tolist(), pr.bm25[1].tolist()))
        if mode in ("dense", "hybrid"):
            parts["dense"] = dict(zip(pr.dense[0].tolist(), pr.dense[1].tolist()))
        return self.fuse(pr), parts, pr.tokens

    def search(self, query: str, k: int = 10, mode: str = "hybrid",
               filters: Filters | None = None, max_per_doc: int | None = None,
               plan: "QueryPlan | None" = None) -> list[Hit]:
        """Top-k hits. With a ``plan`` (km_search.query.understand.plan) its filters join
        ``filters`` and its boost terms join the BM25 query; if its filters leave no hit,
        they are demoted to boosts (the plan says so) and the search runs again."""
        q = clean_query(query, self.cfg.max_query_chars)
        if not 1 <= k <= 1000:
            raise QueryError("k must be between 1 and 1000")
        f = filters
        if plan is not None and (plan.province or plan.date_from):
            f = Filters(**{**vars(filters or Filters())})
            f.province = f.province or plan.province
            if plan.date_from and not (f.date_from or f.date_to):
                f.date_from, f.date_to = plan.date_from, plan.date_to
        boost = plan.boost_terms if plan is not None else None
        st = self._state  # this search's build, whatever a reload does meanwhile
        depth, per_doc = max(self.cfg.candidates, 3 * k), max_per_doc or self.cfg.max_per_doc
        ranked, parts, tokens = self._reranked(q, mode, depth, f, boost, st)
        hits = self._hits(ranked, parts, _words(tokens), k, per_doc, st)
        if not hits and f is not filters:
            plan.demote_filters()
            ranked, parts, tokens = self._reranked(q, mode, depth, filters, plan.boost_terms, st)
            hits = self._hits(ranked, parts, _words(tokens), k, per_doc, st)
        return hits

    def _reranked(self, q: str, mode: str, depth: int, filters: Filters | None,
                  boost: list[str] | None, st: "_Loaded"
                  ) -> tuple[list[tuple[int, float]], dict, list[str]]:
        """:meth:`retrieve`, then the optional cross-encoder over the fused head (its scores
        join the hit's per-retriever scores as ``rerank``)."""
        ranked, parts, tokens = self.retrieve(q, mode, depth, filters, boost, st)
        if self.reranker is not None and ranked:
            ranked = self.reranker.rerank(q, ranked, lambda pids: self._texts(pids, st))
            parts["rerank"] = dict(ranked[: self.reranker.top_n])
        return ranked, parts, tokens

    def _texts(self, pids: list[int], st: "_Loaded | None" = None) -> dict[int, str]:
        """Passage texts by id from ``st``'s build (default: the loaded one)."""
        db = self._reader((st or self._state).build)
        marks = ",".join("?" * len(pids))
        return dict(db.execute(f"SELECT pid, text FROM passages WHERE pid IN ({marks})", pids))

    def _hits(self, ranked, parts, qtokens: set[str], k: int, max_per_doc: int,
              st: "_Loaded") -> list[Hit]:
        hits: list[Hit] = []
        per_doc: dict[str, int] = {}
        rows: dict[int, sqlite3.Row] = {}
        step = 2 * k  # rows fetched per query: one round trip for most searches
        for i, (pid, score) in enumerate(ranked):
            if i % step == 0:
                rows = self._rows([p for p, _ in ranked[i:i + step]], st)
            row = rows.get(pid)
            if row is None or per_doc.get(row["doc_id"], 0) >= max_per_doc:
                continue
            per_doc[row["doc_id"]] = per_doc.get(row["doc_id"], 0) + 1
            snippet, spans = make_snippet(row["text"], qtokens)
            hits.append(Hit(
                rank=len(hits) + 1, score=float(score), doc_id=row["doc_id"], chunk_id=pid,
                ordinal=row["ordinal"], title=row["title"], url=row["url"] or "",
                publisher=row["publisher"] or "", published=row["published"],
                published_raw=row["published_raw"] or "",
                provinces=json.loads(row["provinces"] or "[]"), text=row["text"],
                snippet=snippet, highlights=spans,
                scores={name: float(s[pid]) for name, s in parts.items() if pid in s}))
            if len(hits) >= k:
                break
        return hits

    def _rows(self, pids: list[int], st: "_Loaded") -> dict[int, sqlite3.Row]:
        """Display rows of passages by pid; the token column (as long as the text) is not read."""
        marks = ",".join("?" * len(pids))
        cur = self._reader(st.build).execute(
            "SELECT p.pid, p.doc_id, p.ordinal, p.title, p.text, d.url, d.publisher, d.published, "
            "d.published_raw, d.provinces FROM passages p JOIN docs d ON d.doc_id = p.doc_id "
            f"WHERE p.pid IN ({marks})", pids)
        return {r["pid"]: r for r in cur}

    def passage_facets(self, pids: list[int]) -> dict[int, dict[str, list]]:
        """The text facets the index stored for these passages (see
        km_search.lessons.facets.text_facets), for search-result facet counts."""
        return P.stored_facets(self._reader(self._state.build), list(pids))

    def passage_vectors(self, pids: list[int]) -> np.ndarray:
        """Stored vectors of passages (read back from the vector index, not re-embedded)."""
        return self._state.vectors.reconstruct(pids)

    def doc_passages(self) -> dict[str, list[int]]:
        """Each indexed document's passage ids, in order."""
        by_doc: dict[str, list[int]] = {}
        db = self._reader(self._state.build)
        for pid, doc_id in db.execute("SELECT pid, doc_id FROM passages ORDER BY pid"):
            by_doc.setdefault(doc_id, []).append(pid)
        return by_doc

    def document(self, doc_id: str) -> tuple[Document, list[P.PassageSpan]] | None:
        """A whole stored document and where the loaded build's passages lie in it (the
        document page marks the cited one); None when the store does not hold it."""
        if not self.cfg.corpus_db.exists():
            return None
        with DocumentStore(self.cfg.corpus_db) as store:
            doc = store.get(doc_id)
        if doc is None:
            return None
        return doc, P.doc_spans(self._reader(self._state.build), doc_id)

    def doc_of(self, pid: int) -> str | None:
        row = self._reader(self._state.build).execute(
            "SELECT doc_id FROM passages WHERE pid=?", (pid,)).fetchone()
        return row[0] if row else None

    def stats(self) -> dict:
        return {"build": self.build.name, **self.manifest}

    def overview(self) -> Overview:
        """Counts, publishers, provinces and date range of the loaded build's documents."""
        return collection_overview(self._reader(self._state.build))

