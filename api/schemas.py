"""Request and response shapes of the API (pydantic; they make the OpenAPI at /docs)."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, Field

from km_search.search import Filters
from km_search.thai.dates import BE_OFFSET

Mode = Literal["bm25", "dense", "hybrid"]
_DATE = r"^\d{4}-\d{2}-\d{2}$"


def iso_ce_date(value: str) -> str:
    """A real calendar date in C.E.; a B.E. year (Thai documents' usual era) written in ISO
    form is refused with the C.E. date to send instead, rather than silently matching
    nothing (2564-01-01 is 543 years after every document)."""
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a calendar date: use YYYY-MM-DD (C.E.)") from None
    if d.year >= 2400:
        ce = f"{d.year - BE_OFFSET:04d}{value[4:]}"
        raise ValueError(f"'{value}' looks like a Buddhist Era year: send C.E. dates "
                         f"(B.E. {d.year} = C.E. {d.year - BE_OFFSET}, e.g. {ce})")
    return value


IsoDate = Annotated[str, Field(pattern=_DATE), AfterValidator(iso_ce_date)]


class FilterIn(BaseModel):
    date_from: Optional[IsoDate] = Field(None, description="ISO C.E. date, inclusive")
    date_to: Optional[IsoDate] = Field(None, description="ISO C.E. date, inclusive")
    publisher: Optional[str] = Field(None, max_length=200, description="substring of the publisher")
    province: Optional[str] = Field(None, max_length=100, description="Thai province name")
    source: Optional[str] = Field(None, max_length=100, description="seed, opdc, file, ...")

    def to_filters(self) -> Filters:
        return Filters(self.date_from, self.date_to, self.publisher or None,
                       self.province or None, self.source or None)


_IGNORE = Field(default_factory=list, max_length=50, description='understood items to drop, as '
               '"kind:value" strings (e.g. "province:ขอนแก่น"): a removed chip')


class SearchIn(BaseModel):
    query: str = Field(..., description="Question or keywords, Thai or English")
    k: int = Field(10, ge=1, le=100)
    mode: Mode = "hybrid"
    filters: FilterIn = Field(default_factory=FilterIn)
    max_per_doc: Optional[int] = Field(None, ge=1, le=100)
    ignore_understood: list[str] = _IGNORE


class UnderstoodOut(BaseModel):
    """Something read out of the query (km_search.query.understand)."""

    kind: Literal["province", "fiscal_year", "year", "date", "agency", "pmqa"]
    value: str = Field(..., description="canonical value; 'kind:value' names it in ignore_understood")
    text: str = Field(..., description="the words of the query it came from")
    mode: Literal["filter", "boost"] = Field(..., description="filter: only matching documents; "
                                             "boost: its canonical form is also searched")
    label: str


class HitOut(BaseModel):
    rank: int
    score: float
    doc_id: str
    chunk_id: int
    ordinal: int
    title: str
    url: str
    link: str = Field(..., description="source URL, or this API's document page at the passage")
    publisher: str
    published: Optional[str] = Field(None, description="ISO C.E. date")
    published_raw: str = Field(..., description="the date as written (usually Thai B.E.)")
    provinces: list[str]
    text: str
    snippet: str
    highlights: list[tuple[int, int]] = Field(..., description="character spans in snippet")
    scores: dict[str, float]


class SearchOut(BaseModel):
    query: str
    mode: Mode
    took_ms: float
    hits: list[HitOut]
    facets: dict[str, dict[str, int]] = Field(default_factory=dict,
                                               description="documents per facet value among the hits")
    understood: list[UnderstoodOut] = Field(default_factory=list)


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(..., max_length=20000)


class ChatIn(BaseModel):
    question: str
    history: list[Union[str, Turn]] = Field(
        default_factory=list, max_length=50,
        description="earlier questions of this conversation, oldest first (strings, or "
                    "{role, content} turns); the last 10 user questions resolve a follow-up")
    k: int = Field(5, ge=1, le=20)
    filters: FilterIn = Field(default_factory=FilterIn)
    ignore_understood: list[str] = _IGNORE
    generate: Optional[bool] = Field(None, description="use the generative endpoint "
                                     "(default: when KM_SEARCH_LLM_URL is set)")


class Citation(BaseModel):
    n: int
    doc_id: str
    chunk_id: int
    title: str
    url: str
    link: str
    publisher: str
    published: Optional[str]
    published_raw: str


class ChatOut(BaseModel):
    question: str
    answer: str = Field(..., description="answer text; [n] refers to citations[n-1]")
    found: bool = Field(..., description="false: no good answer (weak or no hits)")
    mode: Literal["extractive", "generative", "none"]
    note: str = ""
    citations: list[Citation]
    hits: list[HitOut]
    took_ms: float
    facets: dict[str, dict[str, int]] = Field(default_factory=dict,
                                               description="documents per facet value among the hits")
    understood: list[UnderstoodOut] = Field(default_factory=list)
    rewritten: Optional[str] = Field(None, description="the query actually searched when the "
                                     "question was a follow-up rewritten from the history")


class FeedbackIn(BaseModel):
    query: str = Field(..., min_length=1, max_length=2000)
    vote: Literal[1, -1]
    target: Literal["answer", "result"]
    doc_id: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    chunk_id: Optional[int] = Field(None, ge=0, le=2**63 - 1, description="a hit's chunk_id")
    answer: Optional[str] = Field(None, max_length=20000)


class ExportCitation(BaseModel):
    n: int
    title: str = Field(..., max_length=1000)
    link: str = Field("", max_length=2000)
    publisher: str = Field("", max_length=500)
    published: Optional[str] = Field(None, max_length=40)
    published_raw: str = Field("", max_length=100)


class ExportTurn(BaseModel):
    question: str = Field(..., max_length=5000)
    answer: str = Field("", max_length=20000)
    citations: list[ExportCitation] = Field(default_factory=list, max_length=50)


class ExportHit(BaseModel):
    title: str = Field(..., max_length=1000)
    link: str = Field("", max_length=2000)
    publisher: str = Field("", max_length=500)
    published: Optional[str] = Field(None, max_length=40)
    published_raw: str = Field("", max_length=100)
    snippet: str = Field("", max_length=5000)


class ExportIn(BaseModel):
    format: Literal["md", "docx"] = "md"
    title: str = Field("km-search", max_length=200)
    conversation: list[ExportTurn] = Field(default_factory=list, max_length=200)
    results: list[ExportHit] = Field(default_factory=list, max_length=500)
