"""The shared shapes: Document, Chunk (a passage) and Hit (a search result).

Crawlers, the indexer, the CLI and the API all speak these three types; keep them
here and only here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def canonical_url(url: str) -> str:
    """Lower-case scheme/host, drop default ports and trailing slash, and the fragment of
    web (http/https) URLs only: ``jsonl:/path#7`` names record 7 of a file (see
    corpus.ingest.jsonl_record_key), so its fragment is part of the identity."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.port and not (parts.scheme == "http" and parts.port == 80
                           or parts.scheme == "https" and parts.port == 443):
        host = f"{host}:{parts.port}"
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    scheme = parts.scheme.lower()
    fragment = "" if scheme in ("http", "https", "") else parts.fragment
    return urlunsplit((scheme, host, path, parts.query, fragment))


def doc_id_for(url: str) -> str:
    """Stable document id: the first 16 hex digits of sha1(canonical URL)."""
    return hashlib.sha1(canonical_url(url).encode("utf-8")).hexdigest()[:16]


def content_hash(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\n\n{body}".encode("utf-8")).hexdigest()


def utcnow() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Document:
    """One source document (a news item, a report, a user's file)."""

    doc_id: str
    title: str
    body: str
    url: str = ""
    publisher: str = ""
    provinces: list[str] = field(default_factory=list)
    published: str | None = None  # ISO C.E. date, e.g. "2021-12-08"
    published_raw: str = ""  # the date as written, e.g. "8 ธันวาคม พ.ศ. 2564"
    source: str = ""  # "seed", "file", "jsonl", "opdc", ...
    fetched_at: str = field(default_factory=utcnow)
    hash: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.hash:
            self.hash = content_hash(self.title, self.body)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Document":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Chunk:
    """A passage of a document: the unit that is embedded and ranked."""

    doc_id: str
    ordinal: int  # position within the document
    text: str
    title: str
    start: int = 0  # character offsets in the cleaned body
    end: int = 0


@dataclass
class Hit:
    """A ranked passage with its document's metadata."""

    rank: int
    score: float
    doc_id: str
    chunk_id: int
    ordinal: int
    title: str
    url: str
    publisher: str
    published: str | None
    published_raw: str
    provinces: list[str]
    text: str
    snippet: str
    highlights: list[tuple[int, int]] = field(default_factory=list)  # spans in snippet
    scores: dict[str, float] = field(default_factory=dict)  # per-retriever scores

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)
