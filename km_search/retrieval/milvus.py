"""The ``milvus`` backend: dense vectors and BM25 (as sparse vectors) in Milvus.

Why: one machine holds the local backend's FAISS and bm25s files comfortably up to a
few million passages; beyond that, or where an organisation already runs Milvus, the
same product runs on Milvus Standalone or Distributed (``KM_SEARCH_MILVUS_URI``). Without
a URI, Milvus Lite (the embedded engine from the ``milvus-lite`` wheel, same client API)
keeps one file inside each build folder, so the atomic build swap works unchanged and
CI tests the backend without a server.

BM25 stays ours: the passages are tokenised by km_search.thai as for every backend, and
bm25s computes each passage's per-term BM25 weights (the Lucene variant, same k1/b). Each
passage is stored as a sparse vector {term id: weight}; a query is the sparse vector
{term id: count in the query}, so Milvus' exact inner-product search over the inverted
index returns exactly the BM25 score the local backend computes. The vocabulary
(token -> term id) is a JSON file in the build folder. Milvus' own BM25 function would
re-tokenise with its analyzers, which break Thai.

Filters (km_search.retrieval.filters) compile to Milvus expressions over scalar fields
stored in both collections: doc_id, published (INT64 YYYYMMDD), publisher, source,
provinces (array).

Each build gets its own pair of collections, named after the build and the home, so a
rebuild never changes the collections a running server searches; with a server URI the
collections of builds that no longer exist are dropped after each publish.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pymilvus import DataType, MilvusClient

from km_search import indexdir
from km_search.atomic import write_atomic
from km_search.settings import Config
from km_search.thai.ngrams import token_weight

from .backend import EMPTY, Backend, Fields, Ranked, Resolver
from .bm25 import BM25Index
from .filters import Filter

VOCAB = "bm25-vocab.json"
BATCH = 1000  # rows per insert call
MAX_TEXT = 1024  # VARCHAR length of publisher / source / doc_id / province fields
_clients: dict[str, MilvusClient] = {}
_clients_lock = threading.Lock()


def _uri(folder: Path, cfg: Config) -> str:
    return cfg.milvus_uri or str(Path(folder) / indexdir.MILVUS_LITE)


def _client(uri: str, cfg: Config) -> MilvusClient:
    """One client per URI and process (Milvus Lite runs one engine per file)."""
    with _clients_lock:
        for old in [u for u in _clients if u.endswith(".db") and not Path(u).exists()]:
            _stop(old, _clients.pop(old))  # a superseded build's Lite engine
        if uri not in _clients:
            _clients[uri] = MilvusClient(uri=uri, token=cfg.milvus_token or "")
        return _clients[uri]


def release(folder: Path, cfg: Config) -> None:
    """Close the client of a build's Lite file (before the folder is renamed or deleted)."""
    uri = _uri(folder, cfg)
    if cfg.milvus_uri:
        return
    with _clients_lock:
        c = _clients.pop(uri, None)
    if c is not None:
        _stop(uri, c)


def _stop(uri: str, client: MilvusClient) -> None:
    """Close a client; for a Lite file also stop its in-process engine, which holds a
    lock on the folder until stopped (pymilvus starts it through this same manager)."""
    client.close()
    if uri.endswith(".db"):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def _home_tag(cfg: Config) -> str:
    return hashlib.sha1(str(cfg.home_path.resolve()).encode()).hexdigest()[:8]


def collection_names(folder: Path, cfg: Config) -> tuple[str, str]:
    """(dense, bm25) collection names of a build: stable across its ``.tmp`` rename."""
    build = re.sub(r"[^0-9A-Za-z_]", "_", Path(folder).name.removesuffix(".tmp"))
    base = f"km_{_home_tag(cfg)}_{build}"
    return base + "_dense", base + "_bm25"


def _schema(client: MilvusClient, vector: str, dim: int | None):
    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("pid", DataType.INT64, is_primary=True)
    if dim is None:
        s.add_field(vector, DataType.SPARSE_FLOAT_VECTOR)
    else:
        s.add_field(vector, DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("doc_id", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("published", DataType.INT64)
    s.add_field("publisher", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("source", DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field("provinces", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=128,
                max_length=MAX_TEXT)
    return s


def _create(client: MilvusClient, name: str, vector: str, dim: int | None, index: dict) -> None:
    if client.has_collection(name):  # left by a killed build of the same name
        client.drop_collection(name)
    params = client.prepare_index_params()
    params.add_index(vector, **index)
    client.create_collection(name, schema=_schema(client, vector, dim), index_params=params,
                             consistency_level="Strong")


def _rows(ids: np.ndarray, vector: str, values: Sequence[Any], fields: Fields | None) -> list[dict]:
    if fields is None:
        raise ValueError("the milvus backend stores filter fields: pass them with the vectors")
    out = []
    for pid, v, f in zip(ids.tolist(), values, fields):
        out.append({"pid": int(pid), vector: v, "doc_id": f["doc_id"][:MAX_TEXT],
                    "published": int(f["published"]), "publisher": f["publisher"][:MAX_TEXT],
                    "source": f["source"][:MAX_TEXT],
                    "provinces": [p[:MAX_TEXT] for p in f["provinces"]][:128]})
    return out


def _search(client, name: str, vector: str, data: Any, k: int, where: Filter | None,
            params: dict) -> Ranked:
    res = client.search(name, data=[data], anns_field=vector, limit=k,
                        filter=where.to_milvus() if where else "", output_fields=[],
                        search_params=params)
    hits = res[0] if res else []
    if not hits:
        return EMPTY
    return (np.asarray([h["pid"] if "pid" in h else h["id"] for h in hits], dtype=np.int64),
            np.asarray([h["distance"] for h in hits], dtype=np.float32))


def _count(client, name: str) -> int:
    return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


class MilvusVectors:
    """Dense passage vectors in a Milvus collection (inner product on unit vectors)."""

    def __init__(self, client: MilvusClient, name: str, dim: int, uri: str, kind: str):
        self.client, self.name, self.dim, self.uri, self.kind = client, name, dim, uri, kind

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: Fields | None = None) -> None:
        vecs = np.asarray(vectors, np.float32)
        for s in range(0, len(ids), BATCH):
            self.client.insert(self.name, _rows(ids[s:s + BATCH], "dense", list(vecs[s:s + BATCH]),
                                                 None if fields is None else fields[s:s + BATCH]))

    def delete(self, ids: np.ndarray) -> None:
        if len(ids):
            self.client.delete(self.name, ids=[int(i) for i in ids])

    def search(self, query: np.ndarray, k: int, where: Filter | None = None) -> Ranked:
        params = {"metric_type": "IP"}
        if self.kind == "hnsw":
            params["params"] = {"ef": max(64, k)}
        return _search(self.client, self.name, "dense", np.asarray(query, np.float32).tolist(),
                       k, where, params)

    def count(self) -> int:
        return _count(self.client, self.name)

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        got = {r["pid"]: r["dense"] for r in self.client.query(
            self.name, ids=[int(i) for i in ids], output_fields=["dense"])}
        return np.asarray([got[int(i)] for i in ids], dtype=np.float32)

    def save(self, folder: Path) -> None:
        self.client.flush(self.name)

    def describe(self) -> dict:
        return {"kind": f"milvus-{self.kind}", "ntotal": self.count(), "collection": self.name,
                "server": not self.uri.endswith(".db")}


class MilvusBM25:
    """BM25 as sparse vectors: bm25s' per-passage term weights, scored by inner product."""

    def __init__(self, client: MilvusClient, name: str, vocab: dict[str, int],
                 df: list[int], n: int, ngram_weight: float = 1.0):
        self.client, self.name, self.vocab, self.df, self.n = client, name, vocab, df, n
        self.ngram_weight = ngram_weight  # a Thai character n-gram's weight (as the local one)

    def coverage(self, tokens: list[str], ids: np.ndarray) -> np.ndarray:
        """Share of the query's idf mass each passage holds (as BM25Index.coverage), read
        from the passages' stored sparse vectors and the document frequencies."""
        idf = {}
        for t in dict.fromkeys(tokens):
            i = self.vocab.get(t)
            df = self.df[i] if i is not None else 0
            idf[t] = (float(np.log1p((self.n - df + 0.5) / (df + 0.5)))
                      * token_weight(t, self.ngram_weight))
        total = sum(idf.values())
        if not len(ids) or total <= 0:
            return np.zeros(len(ids), dtype=np.float32)
        rows = {r["pid"]: r["sparse"] for r in self.client.query(
            self.name, ids=[int(i) for i in ids], output_fields=["sparse"])}
        out = np.zeros(len(ids), dtype=np.float64)
        for j, pid in enumerate(ids.tolist()):
            terms = {int(k) for k in (rows.get(pid) or {})}
            out[j] = sum(w for t, w in idf.items() if self.vocab.get(t) in terms)
        return (out / total).astype(np.float32)

    def search(self, tokens: list[str], k: int, where: Filter | None = None) -> Ranked:
        q: Counter = Counter()
        for t in tokens:
            if t in self.vocab:
                q[self.vocab[t]] += token_weight(t, self.ngram_weight)
        if not q:
            return EMPTY
        return _search(self.client, self.name, "sparse", {i: float(c) for i, c in q.items()},
                       k, where, {"metric_type": "IP"})

    def count(self) -> int:
        return _count(self.client, self.name)

    def save(self, folder: Path) -> None:
        self.client.flush(self.name)
        write_atomic(Path(folder) / VOCAB, json.dumps(
            {"vocab": self.vocab, "df": self.df, "n": self.n}, ensure_ascii=False))


def _build_lexical(folder: Path, cfg: Config, ids: Sequence[int], tokens: Sequence[list[str]],
                   fields: Fields | None = None) -> MilvusBM25:
    bm = BM25Index.build(tokens, ids)  # the same weights as the local backend
    vocab, rows = bm.vocab, bm.passage_weights()
    df = np.diff(rows.tocsc().indptr).astype(int).tolist()
    uri = _uri(folder, cfg)
    client = _client(uri, cfg)
    name = collection_names(folder, cfg)[1]
    _create(client, name, "sparse", None, {"index_type": "SPARSE_INVERTED_INDEX",
                                           "metric_type": "IP"})
    pid_arr = np.asarray(ids, dtype=np.int64)
    for s in range(0, len(pid_arr), BATCH):
        part = range(s, min(s + BATCH, len(pid_arr)))
        sparse = []
        for r in part:
            lo, hi = rows.indptr[r], rows.indptr[r + 1]
            sparse.append({int(c): float(v) for c, v in zip(rows.indices[lo:hi], rows.data[lo:hi])
                           if v > 0})
        client.insert(name, _rows(pid_arr[s:s + BATCH], "sparse", sparse,
                                  None if fields is None else fields[s:s + BATCH]))
    client.load_collection(name)
    return MilvusBM25(client, name, vocab, df, len(ids))


def _new_vectors(folder: Path, cfg: Config, dim: int, n_expected: int,
                 train: np.ndarray | None) -> MilvusVectors:
    uri = _uri(folder, cfg)
    client = _client(uri, cfg)
    name = collection_names(folder, cfg)[0]
    # Lite runs exact FLAT search; a server gets HNSW past the exact-search limit
    kind = "hnsw" if cfg.milvus_uri and n_expected > cfg.flat_limit else "flat"
    index = {"index_type": "FLAT", "metric_type": "IP"} if kind == "flat" else \
        {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 16, "efConstruction": 200}}
    _create(client, name, "dense", dim, index)
    client.load_collection(name)
    return MilvusVectors(client, name, dim, uri, kind)


def _load_lexical(folder: Path, cfg: Config, manifest: dict, resolve: Resolver) -> MilvusBM25:
    client = _client(_uri(folder, cfg), cfg)
    name = collection_names(folder, cfg)[1]
    client.load_collection(name)
    saved = json.loads((Path(folder) / VOCAB).read_text(encoding="utf-8"))
    return MilvusBM25(client, name, saved["vocab"], saved["df"], saved["n"], cfg.thai_ngram_weight)


def _load_vectors(folder: Path, cfg: Config, manifest: dict, resolve: Resolver,
                  readonly: bool = False) -> MilvusVectors:
    uri = _uri(folder, cfg)
    client = _client(uri, cfg)
    name = collection_names(folder, cfg)[0]
    client.load_collection(name)
    kind = manifest.get("dense", {}).get("kind", "milvus-flat").removeprefix("milvus-")
    return MilvusVectors(client, name, int(manifest["model"]["dim"]), uri, kind)


def _finish(folder: Path, cfg: Config, live_builds: list[Path]) -> None:
    """After a build: stop its Lite engine (the folder is about to be renamed); on a
    server, drop this home's collections whose build folder is gone."""
    release(folder, cfg)
    if not cfg.milvus_uri:
        return
    client = _client(cfg.milvus_uri, cfg)
    keep = {n for b in live_builds for n in collection_names(b, cfg)}
    prefix = f"km_{_home_tag(cfg)}_"
    for name in client.list_collections():
        if name.startswith(prefix) and name not in keep:
            client.drop_collection(name)


BACKEND = Backend("milvus", _build_lexical, _new_vectors, _load_lexical, _load_vectors,
                  incremental=False, filters_natively=True, finish=_finish)
