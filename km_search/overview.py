"""What the indexed collection holds: document counts, publishers, provinces, date range.

The chat page's first screen and its refusal message say what can be asked about; both
read this through ``/stats`` (and the filter controls through ``/filters``), so the
numbers come from one query over the index's ``docs`` table.
"""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field


@dataclass
class Overview:
    documents: int = 0
    publishers: list[dict] = field(default_factory=list)  # [{"name", "documents"}], most first
    provinces: list[dict] = field(default_factory=list)   # [{"name", "documents"}], most first
    sources: list[str] = field(default_factory=list)
    date_min: str | None = None  # ISO C.E.
    date_max: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _ranked(c: Counter) -> list[dict]:
    return [{"name": k, "documents": n} for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]


def collection_overview(db: sqlite3.Connection) -> Overview:
    """The overview of an index's passages.db (its ``docs`` table: one row per document)."""
    pubs: Counter = Counter()
    provs: Counter = Counter()
    srcs: set[str] = set()
    dates: list[str] = []
    n = 0
    for pub, prov, src, date in db.execute("SELECT publisher, provinces, source, published FROM docs"):
        n += 1
        if pub:
            pubs[pub] += 1
        provs.update(set(json.loads(prov or "[]")))
        if src:
            srcs.add(src)
        if date:
            dates.append(date)
    return Overview(documents=n, publishers=_ranked(pubs), provinces=_ranked(provs),
                    sources=sorted(srcs), date_min=min(dates) if dates else None,
                    date_max=max(dates) if dates else None)
