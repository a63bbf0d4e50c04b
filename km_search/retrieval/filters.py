"""A backend-neutral filter expression: which passages may answer a query.

Why: filters used to become SQL lists of allowed passage ids, which only the local
backends (bm25s + FAISS over passages.db) can use. An expression is a conjunction of
small conditions on a passage's document fields; each backend compiles it to what its
engine runs: the local backends to SQL over passages.db (then an id allow-list), Milvus
to a boolean expression over its scalar fields.

Fields: ``published`` (ISO date, ``YYYY-MM-DD``), ``publisher``, ``province`` (one of the
document's provinces), ``source``, ``doc_id``. Operators: ``eq``, ``gte``, ``lte`` (ISO
dates compare as text), ``contains`` (substring), ``has`` (list membership, provinces).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FIELDS = ("published", "publisher", "province", "source", "doc_id")
OPS = ("eq", "gte", "lte", "contains", "has")


@dataclass(frozen=True)
class Cond:
    field: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.field not in FIELDS:
            raise ValueError(f"unknown filter field {self.field!r}; one of {', '.join(FIELDS)}")
        if self.op not in OPS:
            raise ValueError(f"unknown filter operator {self.op!r}; one of {', '.join(OPS)}")


@dataclass(frozen=True)
class Filter:
    """All conditions must hold (AND). Hashable, so backends may cache by it."""

    conds: tuple[Cond, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conds)

    @classmethod
    def of(cls, *conds: tuple[str, str, Any]) -> "Filter":
        return cls(tuple(Cond(f, op, str(v)) for f, op, v in conds))

    # -- compilers -------------------------------------------------------------------
    def to_sql(self) -> tuple[str, list[Any]]:
        """WHERE clause over ``passages p JOIN docs d`` (see km_search.passages), and args."""
        col = {"published": "d.published", "publisher": "d.publisher", "province": "d.provinces",
               "source": "d.source", "doc_id": "p.doc_id"}
        where, args = [], []
        for c in self.conds:
            if c.op == "eq":
                where.append(f"{col[c.field]} = ?"); args.append(c.value)
            elif c.op == "gte":
                where.append(f"{col[c.field]} >= ?"); args.append(c.value)
            elif c.op == "lte":
                where.append(f"{col[c.field]} <= ?"); args.append(c.value)
            elif c.op == "contains":
                where.append(f"{col[c.field]} LIKE ?"); args.append(f"%{c.value}%")
            else:  # has: provinces are stored as a JSON list of names
                where.append(f"{col[c.field]} LIKE ?"); args.append(f"%{json.dumps(c.value, ensure_ascii=False)}%")
        return " AND ".join(where) or "1", args

    def to_milvus(self) -> str:
        """Milvus boolean expression over the scalar fields written by the Milvus backend
        (``published`` is an INT64 ``YYYYMMDD``, 0 when unknown; ``provinces`` an array)."""
        out = []
        for c in self.conds:
            if c.field == "published":
                day = published_int(c.value)
                op = {"eq": "==", "gte": ">=", "lte": "<="}[c.op]
                out.append(f"(published != 0 and published {op} {day})")
            elif c.op == "has" or c.field == "province":
                out.append(f"ARRAY_CONTAINS(provinces, {_quote(c.value)})")
            elif c.op == "contains":
                out.append(f"{c.field} like {_quote('%' + _like_escape(c.value) + '%')}")
            else:
                op = {"eq": "==", "gte": ">=", "lte": "<="}[c.op]
                out.append(f"{c.field} {op} {_quote(c.value)}")
        return " and ".join(out)


def published_int(iso: str | None) -> int:
    """``YYYY-MM-DD`` as the INT64 ``YYYYMMDD`` engines compare; 0 when unknown."""
    return int(iso.replace("-", "")[:8]) if iso and iso[:4].isdigit() else 0


def _quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a double-quoted, backslash-escaped literal


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
