"""Query understanding: years, fiscal years, dates, provinces, agencies and PMQA
categories read out of a Thai or English query.

Each item says where it came from (``text``) and how it is used (``mode``):
- ``filter``: the user said it explicitly ("จังหวัดพังงา", "Phang Nga province",
  "ปีงบประมาณ 65", "FY2022"); only documents that match are searched. If a filter would
  leave nothing to search, the search runs unfiltered instead (a filter must never turn a
  good answer into none).
- ``boost``: it may be meant otherwise (a bare province name can be a club or a
  programme, "พ.ศ. 2564" may be the year a project ran, not the year a page was
  published); its canonical Thai form is added to the BM25 side of the query, which
  lifts documents that use it without excluding others ("พช." also searches
  กรมการพัฒนาชุมชน, "Korat" also searches นครราชสีมา, "in 2021" also 2564).

Gazetteers are the library's own: provinces (km_search.thai.provinces), agencies and
PMQA categories (km_search.lessons.facets), English province names
(km_search.thai.glossary).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from km_search.lessons.facets import (AGENCIES, PMQA_CATEGORIES, find_agencies, fiscal_year_range,
                                      pmqa_label)
from km_search.thai.dates import BE_OFFSET, find_date
from km_search.thai.glossary import PROVINCES_EN
from km_search.thai.normalize import thai_to_arabic_digits
from km_search.thai.provinces import PROVINCES

KINDS = ("province", "fiscal_year", "year", "date", "agency", "pmqa")

# Common short forms of province names (how people type them in a search box).
SHORT_FORMS = {
    "โคราช": "นครราชสีมา", "กทม.": "กรุงเทพมหานคร", "กทม": "กรุงเทพมหานคร",
    "กรุงเทพฯ": "กรุงเทพมหานคร", "กรุงเทพ": "กรุงเทพมหานคร", "อยุธยา": "พระนครศรีอยุธยา",
    "สุราษฎร์": "สุราษฎร์ธานี", "อุบลฯ": "อุบลราชธานี", "อุบล": "อุบลราชธานี",
    "อุดรฯ": "อุดรธานี", "อุดร": "อุดรธานี", "นครศรีฯ": "นครศรีธรรมราช",
    "เมืองคอน": "นครศรีธรรมราช", "สุพรรณ": "สุพรรณบุรี", "ศรีสะเกษ": "ศรีสะเกษ",
    "แปดริ้ว": "ฉะเชิงเทรา", "บุรีรัมย์": "บุรีรัมย์", "ปราจีน": "ปราจีนบุรี",
}
# Province names that are also everyday Thai words (เลย "at all", ตาก "to dry", แพร่
# "to spread", น่าน/ตรัง inside other words): only a place after จังหวัด / จ.
AMBIGUOUS_TH = {"เลย", "ตาก", "แพร่", "น่าน", "ตรัง"}
# English names that are also English words or common abbreviations.
AMBIGUOUS_EN = {"nan", "tak", "loei", "trang", "phrae", "yala", "surin", "trat"}

_PROV_PREFIX = re.compile(r"(?:จังหวัด|จ\.|จว\.)\s*$")
_TH_NAMES = {**{p: p for p in PROVINCES}, **SHORT_FORMS}
_TH_RX = re.compile("|".join(map(re.escape, sorted(_TH_NAMES, key=len, reverse=True))))
_EN_RX = re.compile(r"(?<![A-Za-z])(" + "|".join(
    re.escape(k) for k in sorted(PROVINCES_EN, key=len, reverse=True)) + r")(?![A-Za-z])", re.I)
_EN_PROVINCE_WORD = re.compile(r"^\s*province\b|\bprovince\s+of\s*$|\bprovince\s*$", re.I)

_D = r"(\d{4}|\d{2})(?!\d)"
_FISCAL = [
    re.compile(rf"ปีงบ(?:ประมาณ)?\s*(?:พ\.\s?ศ\.\s*)?{_D}"),
    re.compile(rf"(?<![A-Za-z])(?:FY|fiscal\s+year|budget\s+year)\s*'?{_D}", re.I),
]
_YEAR = [
    re.compile(r"(?:ปี\s*)?(?:พ\.\s?ศ\.|พุทธศักราช)\s*(\d{4})(?!\d)"),
    re.compile(r"ปี\s*(\d{4})(?!\d)"),
    re.compile(r"(?:ค\.\s?ศ\.|คริสต์ศักราช)\s*(\d{4})(?!\d)"),
    re.compile(r"(?<![A-Za-z])(?:in|year|during|since|of)\s+(\d{4})(?!\d)", re.I),
    re.compile(r"(?<![A-Za-z])(?:B\.?E\.?)\s*(\d{4})(?!\d)"),
]


@dataclass(frozen=True)
class Understood:
    """One thing read out of the query (the API's ``understood`` item)."""

    kind: str  # one of KINDS
    value: str  # canonical: Thai province/agency name, B.E. year, ISO date, PMQA number
    text: str  # the words of the query it came from
    mode: str  # "filter" | "boost"
    label: str  # for display
    start: int = field(default=-1, compare=False)

    @property
    def key(self) -> str:
        """The "kind:value" string a request's ``ignore_understood`` names."""
        return f"{self.kind}:{self.value}"

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("start")
        return d


def _be_year(digits: str, era_ce: bool = False) -> int:
    y = int(digits)
    if y < 100:  # "ปีงบ 65": a two-digit B.E. year
        return 2500 + y
    if era_ce or y < 2400:
        return y + BE_OFFSET
    return y


def _provinces(q: str) -> list[Understood]:
    out: list[Understood] = []
    for m in _TH_RX.finditer(q):
        word, name = m.group(0), _TH_NAMES[m.group(0)]
        explicit = bool(_PROV_PREFIX.search(q[max(0, m.start() - 8):m.start()]))
        if word in AMBIGUOUS_TH and not explicit:
            continue
        start = m.start()
        if explicit:
            start = q.rfind("จ", 0, m.start())
        out.append(Understood("province", name, q[start:m.end()], "filter" if explicit else "boost",
                              f"จังหวัด{name}", start))
    for m in _EN_RX.finditer(q):
        word = m.group(1)
        name = PROVINCES_EN[word.lower()]
        before, after = q[max(0, m.start() - 20):m.start()], q[m.end():m.end() + 10]
        explicit = bool(_EN_PROVINCE_WORD.search(after) or re.search(r"province\s+of\s*$", before, re.I))
        if word.lower() in AMBIGUOUS_EN and not explicit and not word[0].isupper():
            continue
        out.append(Understood("province", name, word, "filter" if explicit else "boost",
                              f"จังหวัด{name}", m.start()))
    return out


def _years(q: str) -> list[Understood]:
    out: list[Understood] = []
    taken: list[tuple[int, int]] = []
    for rx in _FISCAL:
        for m in rx.finditer(q):
            fy = _be_year(m.group(1), era_ce=False) if rx is _FISCAL[0] else _be_year(m.group(1))
            if not 2400 < fy < 2700:
                continue
            lo, hi = fiscal_year_range(fy)
            out.append(Understood("fiscal_year", str(fy), m.group(0), "filter",
                                  f"ปีงบประมาณ {fy} ({lo} – {hi})", m.start()))
            taken.append(m.span())
    for i, rx in enumerate(_YEAR):
        for m in rx.finditer(q):
            if any(a <= m.start() < b or m.start() <= a < m.end() for a, b in taken):
                continue
            y = _be_year(m.group(1), era_ce=i in (2, 3))
            if not 2400 < y < 2700:
                continue
            out.append(Understood("year", str(y), m.group(0), "boost", f"พ.ศ. {y} ({y - BE_OFFSET})", m.start()))
            taken.append(m.span())
    return out


def _dates(q: str) -> list[Understood]:
    found = find_date(q)
    if not found:
        return []
    iso, text = found
    return [Understood("date", iso, text, "boost", iso, q.find(text))]


def _agencies(q: str) -> list[Understood]:
    out = [Understood("agency", name, q[s:e], "boost", name, s) for name, s, e in find_agencies(q)]
    low = q.lower()
    for a in AGENCIES:
        if a.en and len(a.en) > 12 and a.en.lower() in low:
            s = low.find(a.en.lower())
            out.append(Understood("agency", a.name, q[s:s + len(a.en)], "boost", a.name, s))
    return out


_PMQA_RX = re.compile(r"(?:PMQA\s*(?:4\.0)?\s*)?หมวด(?:ที่)?\s*([1-7])(?!\d)|PMQA\s*category\s*([1-7])",
                      re.I)


def _pmqa(q: str) -> list[Understood]:
    out = []
    for m in _PMQA_RX.finditer(q):
        n = int(m.group(1) or m.group(2))
        out.append(Understood("pmqa", str(n), m.group(0), "boost", pmqa_label(n), m.start()))
    return out


def understand(query: str) -> list[Understood]:
    """Everything read out of ``query``, in order of appearance, one item per kind:value
    (a date's year is not repeated as a year)."""
    q = thai_to_arabic_digits(query)
    items = _provinces(q) + _years(q) + _dates(q) + _agencies(q) + _pmqa(q)
    dates = {i.value[:4] for i in items if i.kind == "date"}
    seen: dict[str, Understood] = {}
    for it in sorted(items, key=lambda i: (i.start, i.mode != "filter")):
        if it.kind == "year" and str(int(it.value) - BE_OFFSET) in dates:
            continue
        old = seen.get(it.key)
        if old is None or (old.mode == "boost" and it.mode == "filter"):
            seen[it.key] = it
    return sorted(seen.values(), key=lambda i: i.start)


@dataclass
class QueryPlan:
    """How the understood items change a search: document filters and BM25 terms."""

    items: list[Understood]
    province: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    boost_terms: list[str] = field(default_factory=list)

    @property
    def understood(self) -> list[dict]:
        return [i.as_dict() for i in self.items]

    def demote_filters(self) -> None:
        """The filters left nothing to search: keep the items as boosts instead."""
        self.items = [Understood(i.kind, i.value, i.text, "boost", i.label, i.start)
                      if i.mode == "filter" else i for i in self.items]
        self.boost_terms += [i.value for i in self.items if i.kind == "province"
                             and i.value not in self.boost_terms]
        self.province = self.date_from = self.date_to = None


def plan(query: str, ignore: list[str] | tuple[str, ...] = ()) -> QueryPlan:
    """Understood items of ``query`` minus those named in ``ignore`` ("kind:value"),
    turned into filters (explicit items) and BM25 boost terms (the rest)."""
    drop = set(ignore or ())
    items = [i for i in understand(query) if i.key not in drop]
    p = QueryPlan(items)
    for it in items:
        if it.mode == "filter" and it.kind == "province" and p.province is None:
            p.province = it.value
        elif it.mode == "filter" and it.kind == "fiscal_year" and p.date_from is None:
            p.date_from, p.date_to = fiscal_year_range(int(it.value))
        elif it.mode == "boost":
            if it.kind in ("province", "agency"):
                term = it.value
            elif it.kind == "year":
                term = f"{it.value} {int(it.value) - BE_OFFSET}"
            elif it.kind == "pmqa":
                term = PMQA_CATEGORIES[int(it.value)]
            else:
                continue  # a date boosts through its words, already in the query
            if term not in query and term not in p.boost_terms:
                p.boost_terms.append(term)
    # a province filtered on is the place the user means: search its name too
    if p.province and p.province not in query:
        p.boost_terms.append(p.province)
    return p
