"""Scale-out ingestion on Ray: chunk -> tokenise -> embed on a cluster, assemble locally.

The expensive part of indexing is embedding (a few passages/s per CPU core). With
``km-search index --ray ADDRESS`` the documents that the live index lacks are sent
through a Ray Data pipeline whose stages call the SAME functions as a local build
(``chunk_document``, ``passage_input``, ``tokenize``, the configured embedder); the
vectors come back into the embedding cache, and the normal :func:`update_index` then
assembles the index from the cache. The result is the index a local build would make,
by construction: same passages, same tokens, same vectors.

Point it at a real cluster with ``--ray ray://HEAD:10001`` (Ray client) or, on a cluster
node, ``--ray auto``; give workers GPUs with ``KM_SEARCH_RAY_GPUS=1`` (one GPU per embedding
actor) and scale actors with ``KM_SEARCH_RAY_ACTORS``. Every node needs km-search installed
and the model folder (``KM_SEARCH_MODELS_DIR``) readable.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from km_search import indexdir
from km_search.chunking import chunk_document, passage_input
from km_search.docstore import DocumentStore
from km_search.embed import Embedder, get_embedder
from km_search.embed.cache import EmbeddingCache
from km_search.models import Document
from km_search.settings import Config, load_config
from km_search.thai import tokenize

from .build import IndexStats, plan_update, update_index


def _chunk_rows(batch: dict[str, Any], cfg_values: dict) -> dict[str, list]:
    """Ray stage 1: documents -> passages (text to embed) with their search tokens."""
    cfg = load_config(**cfg_values)
    texts, tokens, doc_ids = [], [], []
    for d in batch["doc"]:
        doc = Document.from_dict(d)
        for c in chunk_document(doc, cfg.chunk_tokens, cfg.chunk_overlap):
            t = passage_input(c)
            texts.append(t)
            tokens.append(len(tokenize(t)))
            doc_ids.append(doc.doc_id)
    return {"text": texts, "n_tokens": tokens, "doc_id": doc_ids}


class _EmbedActor:
    """Ray stage 2: one embedding model per actor, loaded once."""
    def __init__(self, cfg_values: dict):
        self.emb = get_embedder(load_config(**cfg_values))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = list(batch["text"])
        vecs = self.emb.encode_passages(texts)
        return {"text": texts, "vec": list(vecs.astype(np.float32)),
                "fingerprint": [self.emb.fingerprint] * len(texts)}


def _pending_docs(cfg: Config, emb, full: bool) -> list[str]:
    """Ids of documents that a local update would (re-)embed: the same plan step."""
    with DocumentStore(cfg.corpus_db) as store:
        return plan_update(cfg, emb, store.hashes(), full).new


def update_index_ray(cfg: Config, address: str, *, full: bool = False,
                     log: Callable[[str], None] = print, batch_size: int = 16,
                     embedder: Embedder | None = None) -> IndexStats:
    """Embed pending documents on a Ray cluster, then build the index locally.

    ``embedder`` is the driver's (default: the configured one); it only checks fingerprints
    and assembles from the cache, so after a complete Ray run it encodes nothing itself.
    """
    import ray

    t0 = time.perf_counter()
    emb = embedder or get_embedder(cfg)
    todo = _pending_docs(cfg, emb, full)
    cfg_values = {k: v for k, v in cfg.values.items()}
    cfg_values["models_dir"] = str(cfg.models_dir)
    if todo:
        with DocumentStore(cfg.corpus_db) as store:
            docs = [store.get(d).to_dict() for d in todo]
        own = not ray.is_initialized()
        if own:
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address == "local" or address.startswith(("127.", "localhost")):
                kw["_node_ip_address"] = "127.0.0.1"  # a one-machine cluster stays on loopback
            if address == "local":
                ray.init(**kw)
            else:
                ray.init(address=address, **kw)
        try:
            import ray.data

            actors = cfg.ray_actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
            gpus = cfg.ray_gpus
            ds = ray.data.from_items([{"doc": d} for d in docs])
            ds = ds.map_batches(_chunk_rows, fn_kwargs={"cfg_values": cfg_values}, batch_size=32)
            ds = ds.map_batches(_EmbedActor, fn_constructor_kwargs={"cfg_values": cfg_values},
                                batch_size=batch_size, concurrency=actors,
                                num_cpus=0 if gpus else 1, num_gpus=gpus)
            cache = EmbeddingCache(cfg.cache_db)
            n = 0
            for batch in ds.iter_batches(batch_size=256, batch_format="numpy"):
                fps = set(batch["fingerprint"].tolist())
                if fps != {emb.fingerprint}:
                    raise indexdir.IndexMismatch(
                        f"Ray workers embedded with model {sorted(fps)}, the driver has "
                        f"{emb.fingerprint}: install the same km-search and model on every node")
                cache.put(emb.fingerprint, batch["text"].tolist(), np.stack(batch["vec"]))
                n += len(batch["text"])
            cache.close()
            log(f"ray: {len(docs)} documents -> {n} passages embedded on {actors} actor(s) "
                f"in {time.perf_counter() - t0:.1f}s")
        finally:
            if own:
                ray.shutdown()
    stats = update_index(cfg, full=full, embedder=emb)
    stats.notes.append(f"embedding ran on Ray ({address}); assembled locally")
    return stats
