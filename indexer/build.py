"""Index builds: full or incremental, always written beside the live one and swapped in.

An update runs four steps, each a function:

1. :func:`plan_update` compares the document store's content hashes with the live
   index's and decides: unchanged, incremental (which documents are gone or new) or
   full (no usable or compatible live index). The Ray path uses the same plan.
2. :func:`write_passages` copies the live passage table (incremental) into the new
   build, deletes gone documents and chunks + tokenises new ones.
3. :func:`embed_passages` gets their vectors through the embedding cache (a killed
   run resumes without re-embedding).
4. :func:`build_indexes` updates the vector index (incremental when the backend can:
   FAISS) or creates it from every cached vector, and rebuilds BM25 from the stored
   tokens (cheap: no re-tokenising); :func:`publish_build` writes the manifest and swaps
   the build in.
"""
from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from km_search import indexdir
from km_search import passages as P
from km_search.atomic import exclusive_lock
from km_search.chunking import chunk_document, passage_input
from km_search.docstore import DocumentStore
from km_search.embed import Embedder, get_embedder
from km_search.embed.cache import EmbeddingCache
from km_search.models import Chunk
from km_search.retrieval.backend import Backend, get_backend
from km_search.settings import Config
from km_search.thai.ngrams import index_ngrams, with_ngrams
from km_search.thai.places_en import PLACES_EN_VERSION, passage_tokens
from km_search.thai.tokenize import engine_name

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class IndexStats:
    added: int = 0
    removed: int = 0
    passages: int = 0
    documents: int = 0
    embedded: int = 0
    seconds: float = 0.0
    full: bool = False
    unchanged: bool = False
    build: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What an update has to do, decided before any work."""

    live: Path | None
    manifest: dict | None  # the live build's, when the update is incremental; None: full
    want: dict[str, str]  # doc_id -> content hash in the document store
    gone: list[str] = field(default_factory=list)  # in the live index, removed or changed
    new: list[str] = field(default_factory=list)  # to chunk and embed
    notes: list[str] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return self.manifest is None

    @property
    def unchanged(self) -> bool:
        return not self.full and not self.gone and not self.new


def places_version(cfg: Config) -> int:
    """What the build's passage tokens hold beyond the words: 0, or the version of the
    provinces' English forms (km_search/thai/places_en.py)."""
    return PLACES_EN_VERSION if cfg.places_en else 0


def compatible(man: dict, emb: Embedder, cfg: Config) -> bool:
    """Can a build with manifest ``man`` be updated in place under ``cfg``?"""
    return (man.get("model", {}).get("fingerprint") == emb.fingerprint
            and man.get("tokenizer", {}).get("engine") == engine_name()
            and man.get("tokenizer", {}).get("places_en", 0) == places_version(cfg)
            and man.get("tokenizer", {}).get("ngrams", 0) == index_ngrams(
                cfg, man.get("counts", {}).get("passages", 0))
            and man.get("chunking") == {"target_words": cfg.chunk_tokens,
                                        "overlap": cfg.chunk_overlap}
            and indexdir.backend_of(man) == cfg.backend)


def plan_update(cfg: Config, emb: Embedder, want: dict[str, str], full: bool = False) -> Plan:
    """Step 1: compare ``want`` (the store's hashes) with the live build."""
    live = indexdir.live_build(cfg.home_path)
    plan = Plan(live=live, manifest=None, want=want)
    if live is not None and not full:
        try:
            plan.manifest = indexdir.read_manifest(live)
        except indexdir.IndexError_ as e:
            plan.notes.append(f"the live index is unusable ({e}); rebuilding it in full "
                              "from corpus.db")
        if plan.manifest is not None and not compatible(plan.manifest, emb, cfg):
            plan.notes.append("model, tokenizer, chunking or backend changed; doing a full build")
            plan.manifest = None
        if plan.manifest is not None:
            try:  # an update copies the live build: never carry damage forward
                indexdir.verify_build(live)
            except indexdir.IndexError_ as e:
                plan.notes.append(f"the live index failed verification ({e}); "
                                  "rebuilding it in full from corpus.db")
                plan.manifest = None
    have: dict[str, str] = {}
    if plan.manifest is not None:
        db = P.open_db(live / indexdir.PASSAGES, readonly=True)
        have = {r[0]: r[1] for r in db.execute("SELECT doc_id, hash FROM docs")}
        db.close()
    plan.gone = [d for d in have if want.get(d) != have[d]]
    plan.new = [d for d in want if have.get(d) != want[d]]
    return plan


def write_passages(cfg: Config, plan: Plan, store: DocumentStore, build: Path,
                   progress: Progress | None = None) -> tuple[sqlite3.Connection, list[int],
                                                              list[int], list[str]]:
    """Step 2: the new build's passage table. Returns it open, the removed pids, and the
    new passages' pids and texts to embed."""
    if plan.manifest is not None:
        shutil.copy2(plan.live / indexdir.PASSAGES, build / indexdir.PASSAGES)
    db = P.open_db(build / indexdir.PASSAGES)
    removed = P.remove_docs(db, plan.gone)
    pid = P.next_pid(db)
    todo_pids: list[int] = []
    todo_texts: list[str] = []
    for i, doc_id in enumerate(plan.new):
        doc = store.get(doc_id)
        chunks = chunk_document(doc, cfg.chunk_tokens, cfg.chunk_overlap)
        inputs = [passage_input(c) for c in chunks]
        pids = P.add_doc(db, doc, chunks, [passage_tokens(t, bool(cfg.places_en)) for t in inputs], pid)
        pid += len(pids)
        todo_pids += pids
        todo_texts += inputs
        if progress:
            progress("chunk", i + 1, len(plan.new))
    db.commit()
    return db, removed, todo_pids, todo_texts


def embed_passages(cache: EmbeddingCache, emb: Embedder, texts: list[str],
                   progress: Progress | None = None) -> np.ndarray:
    """Step 3: passage vectors, cache-backed (only misses are embedded)."""
    done = [0]

    def _tick(n: int) -> None:
        done[0] += n
        if progress:
            progress("embed", min(done[0], len(texts)), len(texts))
    return cache.encode(emb, texts, progress=_tick)


def build_indexes(cfg: Config, backend: Backend, plan: Plan, db: sqlite3.Connection,
                  build: Path, cache: EmbeddingCache, emb: Embedder, removed: list[int],
                  todo_pids: list[int], vecs: np.ndarray,
                  progress: Progress | None = None) -> tuple[dict, int]:
    """Step 4: the vector index (edited from the live one when the backend allows) and
    BM25 over every stored passage's tokens, both saved into ``build``. Returns the
    vector index's description for the manifest and the number of passages indexed."""
    total = db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
    vectors = None
    if plan.manifest is not None and backend.incremental:
        try:  # damage verify_build could not see (a flip in a build too big to hash)
            vectors = backend.load_vectors(plan.live, cfg, plan.manifest, None)
            if vectors.count() != plan.manifest["counts"]["passages"]:
                raise indexdir.IndexCorrupt(f"{vectors.count()} vectors, the manifest says "
                                            f"{plan.manifest['counts']['passages']}")
        except Exception as e:
            plan.notes.append(f"the live vector index could not be read ({type(e).__name__}: "
                              f"{e}); re-creating it from every passage")
            vectors = None
    if vectors is not None:
        vectors.delete(np.asarray(removed, dtype=np.int64))
        if vectors.describe().get("kind") == "flat" and total > cfg.flat_limit:
            vectors = None  # grown past exact search: rebuild as IVF
    if vectors is None:
        all_pids = [r[0] for r in db.execute("SELECT pid FROM passages ORDER BY pid")]
        texts = [passage_input(Chunk("", 0, r["text"], r["title"])) for r in db.execute(
            "SELECT title, text FROM passages ORDER BY pid")]
        all_vecs = cache.encode(emb, texts)
        vectors = backend.new_vectors(build, cfg, emb.dim, total, all_vecs)
        vectors.add(np.asarray(all_pids, dtype=np.int64), all_vecs,
                    P.scalar_fields(db, all_pids) if backend.filters_natively else None)
    elif len(todo_pids):
        vectors.add(np.asarray(todo_pids, dtype=np.int64), vecs,
                    P.scalar_fields(db, todo_pids) if backend.filters_natively else None)
    vectors.save(build)
    if progress:
        progress("bm25", 0, 1)
    all_pids, all_toks = P.all_tokens(db)
    ngrams = index_ngrams(cfg, total)  # made from the stored words, never stored themselves
    if ngrams:
        all_toks = (with_ngrams(t, ngrams) for t in all_toks)
    lexical = backend.build_lexical(build, cfg, all_pids, all_toks,
                                    P.scalar_fields(db, all_pids) if backend.filters_natively else None)
    lexical.save(build)
    described, n = vectors.describe(), lexical.count()
    if backend.finish is not None:
        backend.finish(build, cfg, sorted(indexdir.builds_dir(cfg.home_path).iterdir()))
    return described, n


def publish_build(cfg: Config, emb: Embedder, build: Path, vectors: dict,
                  documents: int, passages: int) -> Path:
    """Write the manifest (with every file's checksum) and swap the build in."""
    indexdir.write_manifest(build, {
        "model": {"name": emb.name, "dim": emb.dim, "fingerprint": emb.fingerprint,
                  "setting": cfg.model},
        "tokenizer": {"engine": engine_name(), "library": "pythainlp",
                      "places_en": places_version(cfg),
                      "ngrams": index_ngrams(cfg, passages)},
        "chunking": {"target_words": cfg.chunk_tokens, "overlap": cfg.chunk_overlap},
        "backend": cfg.backend,
        "dense": vectors,
        "counts": {"documents": documents, "passages": passages},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    # superseded builds stay until unpinned and 2 x reload_seconds old: servers reload
    # within reload_seconds of a swap
    return indexdir.publish(cfg.home_path, build, grace=2 * cfg.reload_seconds)


def index_lock(home: Path):
    """One indexer per home; a second one fails at once with a clear message."""
    home.mkdir(parents=True, exist_ok=True)
    return exclusive_lock(home / ".index.lock", wait=False,
                          busy=f"another `km-search index` is running on {home}; "
                               "wait for it to finish", error=indexdir.IndexError_)


def update_index(cfg: Config, *, full: bool = False, progress: Progress | None = None,
                 embedder: Embedder | None = None) -> IndexStats:
    """Bring the live index in line with the document store."""
    t0 = time.perf_counter()
    home = cfg.home_path
    stats = IndexStats()
    backend = get_backend(cfg.backend)
    with index_lock(home):
        indexdir.cleanup(home, grace=2 * cfg.reload_seconds)
        emb = embedder or get_embedder(cfg)
        with DocumentStore(cfg.corpus_db) as store:
            want = store.hashes()
            if not want:  # bm25s cannot index nothing; say so instead of a traceback
                raise indexdir.IndexMissing(
                    f"no documents in {cfg.corpus_db} to index: add some with `km-search add "
                    "PATH` (or run `km-search index` without --no-seeds); the live index, if "
                    "any, is unchanged")
            plan = plan_update(cfg, emb, want, full)
            stats.notes = plan.notes  # the same list: later steps may add notes
            stats.full = plan.full
            if plan.unchanged:
                stats.unchanged = True
                stats.documents = len(plan.want)
                stats.passages = plan.manifest["counts"]["passages"]
                stats.build = plan.live.name
                stats.seconds = time.perf_counter() - t0
                return stats
            build = indexdir.new_build_dir(home)
            try:
                db, removed, todo_pids, todo_texts = write_passages(cfg, plan, store, build, progress)
                stats.removed = len([d for d in plan.gone if d not in plan.want])
                stats.added = len(plan.new)
                cache = EmbeddingCache(cfg.cache_db)
                try:
                    vecs = embed_passages(cache, emb, todo_texts, progress)
                    stats.embedded = len(todo_texts)
                    described, stats.passages = build_indexes(
                        cfg, backend, plan, db, build, cache, emb, removed, todo_pids, vecs,
                        progress)
                finally:
                    cache.close()
                stats.documents = db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
                db.close()
                stats.build = publish_build(cfg, emb, build, described, stats.documents,
                                            stats.passages).name
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
    stats.seconds = time.perf_counter() - t0
    return stats
