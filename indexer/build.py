"""Index builds: full or incremental, always written beside the live one and swapped in.

An update compares the document store's content hashes with the live index's. Only
new or changed documents are chunked and embedded (vectors come from the embedding
cache when known); removed or changed ones are deleted from the copied passage table
and FAISS index; BM25 is rebuilt from the stored tokens (cheap: no re-tokenising).
"""
from __future__ import annotations

import fcntl
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import faiss
import numpy as np

from corpus.store import DocumentStore
from km_search import indexdir
from km_search.chunking import chunk_document, passage_input
from km_search.embed import Embedder, get_embedder
from km_search.embed.cache import EmbeddingCache
from km_search.models import Chunk
from km_search.retrieval import dense
from km_search.retrieval.bm25 import BM25Index
from km_search.settings import Config
from km_search.thai import tokenize
from km_search.thai.tokenize import engine_name

from . import passages as P

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


@contextmanager
def _lock(home: Path):
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".index.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise indexdir.IndexError_("another `km-search index` is running on "
                                       f"{home}; wait for it to finish") from None
        yield


def _compatible(man: dict, emb: Embedder, cfg: Config) -> bool:
    return (man.get("model", {}).get("fingerprint") == emb.fingerprint
            and man.get("tokenizer", {}).get("engine") == engine_name()
            and man.get("chunking") == {"target_words": cfg.chunk_tokens,
                                        "overlap": cfg.chunk_overlap})


def _copy_live(live: Path, build: Path, man: dict):
    """The live build's passage table (copied into ``build``), its FAISS index and the
    doc hashes it holds; raises if any of it is unreadable or disagrees with the manifest."""
    shutil.copy2(live / "passages.db", build / "passages.db")
    index = faiss.read_index(str(live / "vectors.faiss"))
    db = P.open_db(build / "passages.db")
    try:
        have = {r[0]: r[1] for r in db.execute("SELECT doc_id, hash FROM docs")}
        n = db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        if not index.ntotal == n == man["counts"]["passages"]:
            raise indexdir.IndexCorrupt(f"{index.ntotal} vectors and {n} passages, the manifest "
                                        f"says {man['counts']['passages']}")
    except BaseException:
        db.close()
        raise
    return db, index, have


def update_index(cfg: Config, *, full: bool = False, progress: Progress | None = None,
                 embedder: Embedder | None = None) -> IndexStats:
    """Bring the live index in line with the document store."""
    t0 = time.perf_counter()
    home = cfg.home_path
    stats = IndexStats()
    with _lock(home):
        grace = 2 * cfg.reload_seconds  # servers reload within reload_seconds of a swap
        indexdir.cleanup(home, grace=grace)
        emb = embedder or get_embedder(cfg)
        live = indexdir.live_build(home)
        man = None
        if live is not None and not full:
            try:
                man = indexdir.read_manifest(live)
            except indexdir.IndexError_ as e:
                stats.notes.append(f"the live index is unusable ({e}); rebuilding it in full "
                                   "from corpus.db")
            if man is not None and not _compatible(man, emb, cfg):
                stats.notes.append("model, tokenizer or chunking changed; doing a full build")
                man = None
            if man is not None:
                try:  # an update copies the live build: never carry damage forward
                    indexdir.verify_build(live)
                except indexdir.IndexError_ as e:
                    stats.notes.append(f"the live index failed verification ({e}); "
                                       "rebuilding it in full from corpus.db")
                    man = None

        with DocumentStore(cfg.corpus_db) as store:
            want = store.hashes()
            build = indexdir.new_build_dir(home)
            try:
                index = None
                if man is not None:
                    try:
                        db, index, have = _copy_live(live, build, man)
                    except Exception as e:  # damage the cheap checks could not see
                        stats.notes.append(f"the live index could not be read ({type(e).__name__}: "
                                           f"{e}); rebuilding it in full from corpus.db")
                        man, index = None, None
                        for f in build.iterdir():
                            f.unlink()
                stats.full = man is None
                if man is None:
                    db = P.open_db(build / "passages.db")
                    have = {}
                gone = [d for d in have if want.get(d) != have[d]]
                new = [d for d in want if have.get(d) != want[d]]
                if man is not None and not gone and not new:
                    db.close()
                    shutil.rmtree(build)
                    stats.unchanged = True
                    stats.documents = len(want)
                    stats.passages = man["counts"]["passages"]
                    stats.build = live.name
                    stats.seconds = time.perf_counter() - t0
                    return stats
                removed_pids = P.remove_docs(db, gone)
                if index is not None and removed_pids:
                    index.remove_ids(np.asarray(removed_pids, dtype=np.int64))
                stats.removed = len([d for d in gone if d not in want])
                stats.added = len(new)

                # chunk + tokenise the new documents
                pid = P.next_pid(db)
                todo_pids: list[int] = []
                todo_texts: list[str] = []
                for i, doc_id in enumerate(new):
                    doc = store.get(doc_id)
                    chunks = chunk_document(doc, cfg.chunk_tokens, cfg.chunk_overlap)
                    inputs = [passage_input(c) for c in chunks]
                    pids = P.add_doc(db, doc, chunks, [tokenize(t) for t in inputs], pid)
                    pid += len(pids)
                    todo_pids += pids
                    todo_texts += inputs
                    if progress:
                        progress("chunk", i + 1, len(new))
                db.commit()

                # embed (cache-backed: a killed run resumes without re-embedding)
                cache = EmbeddingCache(cfg.cache_db)
                done = [0]

                def _tick(n: int) -> None:
                    done[0] += n
                    if progress:
                        progress("embed", min(done[0], len(todo_texts)), len(todo_texts))
                vecs = cache.encode(emb, todo_texts, progress=_tick)
                stats.embedded = len(todo_texts)
                total = db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
                if index is None or (dense.kind(index) == "flat" and total > cfg.flat_limit):
                    all_pids = [r[0] for r in db.execute(
                        "SELECT pid FROM passages ORDER BY pid")]
                    texts = [passage_input(Chunk("", 0, r["text"], r["title"])) for r in db.execute(
                        "SELECT title, text FROM passages ORDER BY pid")]
                    all_vecs = cache.encode(emb, texts)
                    index = dense.new_index(emb.dim, total, cfg.flat_limit, all_vecs)
                    if len(all_pids):
                        index.add_with_ids(all_vecs, np.asarray(all_pids, dtype=np.int64))
                elif len(todo_pids):
                    index.add_with_ids(vecs, np.asarray(todo_pids, dtype=np.int64))
                cache.close()
                faiss.write_index(index, str(build / "vectors.faiss"))

                if progress:
                    progress("bm25", 0, 1)
                all_pids, all_toks = P.all_tokens(db)
                BM25Index.build(all_toks, all_pids).save(build / "bm25")
                ndocs = db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
                db.close()
                stats.passages, stats.documents = len(all_pids), ndocs
                indexdir.write_manifest(build, {
                    "model": {"name": emb.name, "dim": emb.dim, "fingerprint": emb.fingerprint,
                              "setting": cfg.model},
                    "tokenizer": {"engine": engine_name(), "library": "pythainlp"},
                    "chunking": {"target_words": cfg.chunk_tokens, "overlap": cfg.chunk_overlap},
                    "dense": {"kind": dense.kind(index), "ntotal": int(index.ntotal)},
                    "counts": {"documents": ndocs, "passages": len(all_pids)},
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                })
                final = indexdir.publish(home, build, grace=grace)
                stats.build = final.name
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
    stats.seconds = time.perf_counter() - t0
    return stats

