"""Facets for lessons and search results: fiscal year, agency, province/region, PMQA 4.0
category and Government 4.0 dimension, plus counts per facet value.

Thai fiscal year (ปีงบประมาณ) runs October to September and is named by the B.E. year in
which it ends: FY2565 = 1 Oct 2021 - 30 Sep 2022.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

from km_search.thai.dates import BE_OFFSET
from km_search.thai.provinces import PROVINCES



# -- fiscal year ------------------------------------------------------------------------
def fiscal_year(iso_date: str | None) -> int | None:
    """Thai fiscal year (B.E.) of an ISO C.E. date: 2021-10-01 -> 2565, 2021-09-30 -> 2564."""
    if not iso_date:
        return None
    try:
        d = date.fromisoformat(iso_date[:10])
    except ValueError:
        return None
    return d.year + BE_OFFSET + (1 if d.month >= 10 else 0)


def fiscal_year_range(fy_be: int) -> tuple[str, str]:
    """ISO C.E. first and last day of a Thai fiscal year: 2565 -> (2021-10-01, 2022-09-30)."""
    ce_end = fy_be - BE_OFFSET
    return f"{ce_end - 1}-10-01", f"{ce_end}-09-30"


# -- regions ----------------------------------------------------------------------------
# The six geographical regions (National Geographical Committee, 1977).
REGIONS: dict[str, tuple[str, ...]] = {
    "ภาคเหนือ": ("เชียงราย", "เชียงใหม่", "น่าน", "พะเยา", "แพร่", "แม่ฮ่องสอน", "ลำปาง", "ลำพูน",
                 "อุตรดิตถ์"),
    "ภาคตะวันออกเฉียงเหนือ": (
        "กาฬสินธุ์", "ขอนแก่น", "ชัยภูมิ", "นครพนม", "นครราชสีมา", "บึงกาฬ", "บุรีรัมย์", "มหาสารคาม",
        "มุกดาหาร", "ยโสธร", "ร้อยเอ็ด", "เลย", "ศรีสะเกษ", "สกลนคร", "สุรินทร์", "หนองคาย",
        "หนองบัวลำภู", "อำนาจเจริญ", "อุดรธานี", "อุบลราชธานี"),
    "ภาคกลาง": (
        "กรุงเทพมหานคร", "กำแพงเพชร", "ชัยนาท", "นครนายก", "นครปฐม", "นครสวรรค์", "นนทบุรี",
        "ปทุมธานี", "พระนครศรีอยุธยา", "พิจิตร", "พิษณุโลก", "เพชรบูรณ์", "ลพบุรี", "สมุทรปราการ",
        "สมุทรสงคราม", "สมุทรสาคร", "สิงห์บุรี", "สุโขทัย", "สุพรรณบุรี", "สระบุรี", "อ่างทอง",
        "อุทัยธานี"),
    "ภาคตะวันออก": ("จันทบุรี", "ฉะเชิงเทรา", "ชลบุรี", "ตราด", "ปราจีนบุรี", "ระยอง", "สระแก้ว"),
    "ภาคตะวันตก": ("กาญจนบุรี", "ตาก", "ประจวบคีรีขันธ์", "เพชรบุรี", "ราชบุรี"),
    "ภาคใต้": ("กระบี่", "ชุมพร", "ตรัง", "นครศรีธรรมราช", "นราธิวาส", "ปัตตานี", "พังงา", "พัทลุง",
               "ภูเก็ต", "ระนอง", "สตูล", "สงขลา", "สุราษฎร์ธานี", "ยะลา"),
}
REGION_OF: dict[str, str] = {p: r for r, ps in REGIONS.items() for p in ps}
assert set(REGION_OF) == set(PROVINCES) and len(REGION_OF) == 77


def region_of(province: str) -> str | None:
    return REGION_OF.get(province)


# -- agencies ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Agency:
    name: str  # canonical Thai name
    abbrs: tuple[str, ...] = ()  # matched only at word boundaries
    en: str = ""
    parent: str = ""  # ministry (canonical name); "" for ministries themselves
    aliases: tuple[str, ...] = ()  # other full forms, matched anywhere
    kind: str = "department"


_NR, _MOI, _MOPH = "สำนักนายกรัฐมนตรี", "กระทรวงมหาดไทย", "กระทรวงสาธารณสุข"
_MOF, _MOAC, _MOT = "กระทรวงการคลัง", "กระทรวงเกษตรและสหกรณ์", "กระทรวงคมนาคม"
_MOL, _MOJ, _MOE = "กระทรวงแรงงาน", "กระทรวงยุติธรรม", "กระทรวงศึกษาธิการ"


def _m(name: str, abbrs: tuple[str, ...], en: str) -> Agency:
    return Agency(name, abbrs, en, "", (), "ministry")


MINISTRIES: tuple[Agency, ...] = (
    _m(_NR, ("นร.",), "Office of the Prime Minister"),
    _m("กระทรวงกลาโหม", ("กห.",), "Ministry of Defence"),
    _m(_MOF, ("กค.",), "Ministry of Finance"),
    _m("กระทรวงการต่างประเทศ", ("กต.",), "Ministry of Foreign Affairs"),
    _m("กระทรวงการท่องเที่ยวและกีฬา", (), "Ministry of Tourism and Sports"),
    _m("กระทรวงการพัฒนาสังคมและความมั่นคงของมนุษย์", ("พม.",), "Ministry of Social Development and Human Security"),
    _m("กระทรวงการอุดมศึกษา วิทยาศาสตร์ วิจัยและนวัตกรรม", ("อว.",), "Ministry of Higher Education, Science, Research and Innovation"),
    _m(_MOAC, ("กษ.",), "Ministry of Agriculture and Cooperatives"),
    _m(_MOT, ("คค.",), "Ministry of Transport"),
    _m("กระทรวงทรัพยากรธรรมชาติและสิ่งแวดล้อม", ("ทส.",), "Ministry of Natural Resources and Environment"),
    _m("กระทรวงดิจิทัลเพื่อเศรษฐกิจและสังคม", ("ดศ.",), "Ministry of Digital Economy and Society"),
    _m("กระทรวงพลังงาน", (), "Ministry of Energy"),
    _m("กระทรวงพาณิชย์", ("พณ.",), "Ministry of Commerce"),
    _m(_MOI, ("มท.",), "Ministry of Interior"),
    _m(_MOJ, ("ยธ.",), "Ministry of Justice"),
    _m(_MOL, ("รง.",), "Ministry of Labour"),
    _m("กระทรวงวัฒนธรรม", ("วธ.",), "Ministry of Culture"),
    _m(_MOE, ("ศธ.",), "Ministry of Education"),
    _m(_MOPH, ("สธ.",), "Ministry of Public Health"),
    _m("กระทรวงอุตสาหกรรม", ("อก.",), "Ministry of Industry"),
)

DEPARTMENTS: tuple[Agency, ...] = (
    Agency("สำนักงาน ก.พ.ร.", ("ก.พ.ร.", "OPDC"), "Office of the Public Sector Development Commission",
           _NR, ("สำนักงานคณะกรรมการพัฒนาระบบราชการ",)),
    Agency("สำนักงาน ก.พ.", ("OCSC",), "Office of the Civil Service Commission", _NR,
           ("สำนักงานคณะกรรมการข้าราชการพลเรือน",)),  # bare "ก.พ." is also February
    Agency("สำนักงบประมาณ", ("สงป.",), "Bureau of the Budget", _NR),
    Agency("สำนักงานสภาพัฒนาการเศรษฐกิจและสังคมแห่งชาติ", ("สศช.", "NESDC"),
           "Office of the National Economic and Social Development Council", _NR),
    Agency("สำนักงานปลัดสำนักนายกรัฐมนตรี", ("สปน.",), "Office of the Permanent Secretary, PMO", _NR),
    Agency("กรมประชาสัมพันธ์", ("กปส.",), "Government Public Relations Department", _NR),
    Agency("สำนักงานตำรวจแห่งชาติ", ("สตช.",), "Royal Thai Police", _NR),
    Agency("สำนักงานปลัดกระทรวงมหาดไทย", ("สป.มท.",), "Office of the Permanent Secretary, Ministry of Interior", _MOI),
    Agency("กรมการปกครอง", ("ปค.",), "Department of Provincial Administration", _MOI),
    Agency("กรมการพัฒนาชุมชน", ("พช.", "CDD"), "Community Development Department", _MOI),
    Agency("กรมส่งเสริมการปกครองท้องถิ่น", ("สถ.",), "Department of Local Administration", _MOI),
    Agency("กรมป้องกันและบรรเทาสาธารณภัย", ("ปภ.",), "Department of Disaster Prevention and Mitigation", _MOI),
    Agency("กรมที่ดิน", (), "Department of Lands", _MOI),
    Agency("กรมโยธาธิการและผังเมือง", ("ยผ.",), "Department of Public Works and Town & Country Planning", _MOI),
    Agency("กรมควบคุมโรค", ("คร.", "DDC"), "Department of Disease Control", _MOPH),
    Agency("กรมการแพทย์", (), "Department of Medical Services", _MOPH),
    Agency("กรมอนามัย", ("อน.",), "Department of Health", _MOPH),
    Agency("กรมสนับสนุนบริการสุขภาพ", ("สบส.",), "Department of Health Service Support", _MOPH),
    Agency("กรมสุขภาพจิต", (), "Department of Mental Health", _MOPH),
    Agency("สำนักงานปลัดกระทรวงสาธารณสุข", ("สป.สธ.",), "Office of the Permanent Secretary, Ministry of Public Health", _MOPH),
    Agency("กรมบัญชีกลาง", (), "Comptroller General's Department", _MOF),
    Agency("กรมสรรพากร", (), "Revenue Department", _MOF),
    Agency("กรมศุลกากร", (), "Customs Department", _MOF),
    Agency("กรมสรรพสามิต", (), "Excise Department", _MOF),
    Agency("กรมส่งเสริมการเกษตร", ("กสก.",), "Department of Agricultural Extension", _MOAC),
    Agency("กรมชลประทาน", ("ชป.",), "Royal Irrigation Department", _MOAC),
    Agency("กรมพัฒนาที่ดิน", ("พด.",), "Land Development Department", _MOAC),
    Agency("กรมวิชาการเกษตร", ("วก.",), "Department of Agriculture", _MOAC),
    Agency("กรมปศุสัตว์", ("ปศ.",), "Department of Livestock Development", _MOAC),
    Agency("กรมประมง", (), "Department of Fisheries", _MOAC),
    Agency("กรมทางหลวงชนบท", ("ทช.",), "Department of Rural Roads", _MOT),
    Agency("กรมทางหลวง", ("ทล.",), "Department of Highways", _MOT),
    Agency("กรมการขนส่งทางบก", ("ขบ.",), "Department of Land Transport", _MOT),
    Agency("กรมควบคุมมลพิษ", ("คพ.",), "Pollution Control Department", "กระทรวงทรัพยากรธรรมชาติและสิ่งแวดล้อม"),
    Agency("กรมป่าไม้", (), "Royal Forest Department", "กระทรวงทรัพยากรธรรมชาติและสิ่งแวดล้อม"),
    Agency("กรมอุตุนิยมวิทยา", (), "Thai Meteorological Department", "กระทรวงดิจิทัลเพื่อเศรษฐกิจและสังคม"),
    Agency("กรมพัฒนาธุรกิจการค้า", (), "Department of Business Development", "กระทรวงพาณิชย์"),
    Agency("กรมการค้าภายใน", (), "Department of Internal Trade", "กระทรวงพาณิชย์"),
    Agency("กรมพัฒนาฝีมือแรงงาน", (), "Department of Skill Development", _MOL),
    Agency("กรมการจัดหางาน", ("กกจ.",), "Department of Employment", _MOL),
    Agency("กรมสวัสดิการและคุ้มครองแรงงาน", ("กสร.",), "Department of Labour Protection and Welfare", _MOL),
    Agency("กรมราชทัณฑ์", (), "Department of Corrections", _MOJ),
    Agency("กรมคุมประพฤติ", (), "Department of Probation", _MOJ),
    Agency("กรมส่งเสริมวัฒนธรรม", ("สวธ.",), "Department of Cultural Promotion", "กระทรวงวัฒนธรรม"),
    Agency("กรมศิลปากร", (), "Fine Arts Department", "กระทรวงวัฒนธรรม"),
    Agency("สำนักงานคณะกรรมการการศึกษาขั้นพื้นฐาน", ("สพฐ.",), "Office of the Basic Education Commission", _MOE),
    Agency("สำนักงานปลัดกระทรวงศึกษาธิการ", ("สป.ศธ.",), "Office of the Permanent Secretary, Ministry of Education", _MOE),
    Agency("กรมพัฒนาสังคมและสวัสดิการ", ("พส.",), "Department of Social Development and Welfare",
           "กระทรวงการพัฒนาสังคมและความมั่นคงของมนุษย์"),
    Agency("กรมกิจการผู้สูงอายุ", ("ผส.",), "Department of Older Persons", "กระทรวงการพัฒนาสังคมและความมั่นคงของมนุษย์"),
    Agency("กรมโรงงานอุตสาหกรรม", ("กรอ.",), "Department of Industrial Works", "กระทรวงอุตสาหกรรม"),
    Agency("กรมพลังงานทดแทนและอนุรักษ์พลังงาน", ("พพ.",), "Department of Alternative Energy Development and Efficiency",
           "กระทรวงพลังงาน"),
)
AGENCIES: tuple[Agency, ...] = MINISTRIES + DEPARTMENTS
AGENCY_BY_NAME: dict[str, Agency] = {a.name: a for a in AGENCIES}

_THAI_CHAR = "\u0e00-\u0e7f"
_alts: list[tuple[str, str, str]] = []  # (regex alternative, canonical name, literal anchor)
for _a in AGENCIES:
    for _full in (_a.name, *_a.aliases):
        _alts.append((re.escape(_full).replace(r"\ ", r"\s*"), _a.name,
                      max(_full.split(), key=len)))
    for _ab in _a.abbrs:
        if _ab.isascii():
            _alts.append((rf"(?<![A-Za-z]){re.escape(_ab)}(?![A-Za-z])", _a.name, _ab))
        else:  # Thai abbreviation: not inside a longer abbreviation or word (อ.ก.พ.ร., ครม.)
            _alts.append((rf"(?<![{_THAI_CHAR}.]){re.escape(_ab)}(?![\u0e01-\u0e2e])", _a.name, _ab))
_alts.sort(key=lambda t: len(t[0]), reverse=True)  # longest first: สป.มท. before มท.
_AGENCY_GROUP = {f"a{i}": name for i, (_, name, _) in enumerate(_alts)}


@lru_cache(maxsize=512)
def _agency_rx(present: tuple[int, ...]) -> re.Pattern:
    """The alternation restricted to alternatives whose anchor occurs in the text. An
    absent anchor means that alternative cannot match, so the matches are the same as
    with the full 200-way pattern, which cost ~60 ms per search response on 10 hits."""
    return re.compile("|".join(f"(?P<a{i}>{_alts[i][0]})" for i in present))


def find_agencies(text: str) -> list[tuple[str, int, int]]:
    """(canonical name, start, end) for every agency mention, longest match first."""
    present = tuple(i for i, alt in enumerate(_alts) if alt[2] in text)
    if not present:
        return []
    return [(_AGENCY_GROUP[m.lastgroup], m.start(), m.end())
            for m in _agency_rx(present).finditer(text)]


def agencies_in(text: str) -> list[str]:
    """Canonical names of agencies named in ``text``, in order of first mention."""
    return list(dict.fromkeys(n for n, _, _ in find_agencies(text)))


def ministries_of(names: Iterable[str]) -> list[str]:
    out: dict[str, None] = {}
    for n in names:
        a = AGENCY_BY_NAME.get(n)
        if a:
            out.setdefault(a.parent or a.name, None)
    return list(out)


# -- PMQA 4.0 categories and Government 4.0 dimensions -----------------------------------
PMQA_CATEGORIES: dict[int, str] = {
    1: "การนำองค์การ", 2: "การวางแผนเชิงยุทธศาสตร์",
    3: "การให้ความสำคัญกับผู้รับบริการและผู้มีส่วนได้ส่วนเสีย",
    4: "การวัด การวิเคราะห์ และการจัดการความรู้", 5: "การมุ่งเน้นบุคลากร",
    6: "การมุ่งเน้นระบบปฏิบัติการ", 7: "ผลลัพธ์การดำเนินการ",
}
_PMQA_CUES: dict[int, str] = {
    1: r"การนำองค์การ",
    2: r"การวางแผนเชิงยุทธศาสตร์|strategic planning",
    3: r"ผู้รับบริการ(?:และ)?ผู้มีส่วนได้ส่วนเสีย|customer focus",
    4: r"การวัด\s*การวิเคราะห์|การจัดการความรู้|knowledge management",
    5: r"การมุ่งเน้นบุคลากร|การพัฒนาบุคลากร|workforce",
    6: r"การมุ่งเน้นระบบปฏิบัติการ|กระบวนการทำงาน|operation focus",
    7: r"ผลลัพธ์การดำเนินการ",
}
_PMQA_RX = {n: re.compile(rx, re.I) for n, rx in _PMQA_CUES.items()}
_PMQA_NUM = re.compile(r"หมวด(?:ที่)?\s*([1-7๑-๗])(?!\d)")


def pmqa_label(n: int) -> str:
    return f"หมวด {n} {PMQA_CATEGORIES[n]}"


def pmqa_categories(text: str) -> list[int]:
    """PMQA 4.0 categories (1-7) a text speaks of: "หมวด 3" or the category's own name."""
    found = {int(str(m.group(1)).translate(str.maketrans("๑๒๓๔๕๖๗", "1234567")))
             for m in _PMQA_NUM.finditer(text)}
    found |= {n for n, rx in _PMQA_RX.items() if rx.search(text)}
    return sorted(found)


GOV40_DIMENSIONS: dict[str, str] = {
    "open": "เปิดกว้างและเชื่อมโยง",
    "citizen": "ยึดประชาชนเป็นศูนย์กลาง",
    "smart": "สมรรถนะสูงและทันสมัย",
}
_GOV40_CUES: dict[str, str] = {
    "open": r"เปิดกว้างและเชื่อมโยง|open\s*(?:&|and)\s*connected",
    "citizen": r"ยึดประชาชนเป็นศูนย์กลาง|citizen[- ]centric",
    "smart": r"ขีดสมรรถนะสูง|สมรรถนะสูง(?:และ)?ทันสมัย|high\s+performance",
}

_GOV40_RX = {k: re.compile(rx, re.I) for k, rx in _GOV40_CUES.items()}


def gov40_dimensions(text: str) -> list[str]:
    """Government 4.0 dimensions (Thai labels) a text speaks of."""
    return [GOV40_DIMENSIONS[k] for k, rx in _GOV40_RX.items() if rx.search(text)]


# -- per-document facets and counts -------------------------------------------------------
FACETS = ("fiscal_year", "year", "agency", "ministry", "province", "region", "pmqa",
          "gov40", "factor")
INT_FACETS = ("fiscal_year", "year")  # values are years (ints); the rest are labels


def text_facets(title: str, body: str) -> dict[str, list]:
    """The facets a text's own words give: agencies it names, PMQA categories, Government
    4.0 dimensions. The indexer stores them per passage in passages.db, so a search
    response combines stored values (:func:`facet_counts`'s ``stored``) instead of running
    the agency patterns over every hit's text (~0.5 ms a hit)."""
    text = f"{title}\n{body}"
    return {"agency": agencies_in(text), "pmqa": [pmqa_label(n) for n in pmqa_categories(text)],
            "gov40": gov40_dimensions(text)}


@lru_cache(maxsize=4096)
def _publisher_agencies(publisher: str) -> tuple[str, ...]:
    return tuple(agencies_in(publisher))  # few distinct publishers: worth remembering


def doc_facets(*, title: str, body: str, publisher: str = "", published: str | None = None,
               provinces: Iterable[str] = (), factor_tags: Iterable[str] = (),
               text: dict[str, list] | None = None) -> dict[str, list]:
    """Facet values of one document. ``provinces`` is the document's province list (the
    same one the search filter uses), so a facet count equals what its filter returns.
    ``text``: :func:`text_facets` of ``title`` and ``body`` if already known (stored)."""
    tf = text if text is not None else text_facets(title, body)
    agencies = list(dict.fromkeys([*_publisher_agencies(publisher or ""), *tf["agency"]]))
    provs = list(dict.fromkeys(provinces))
    fy = fiscal_year(published)
    return {
        "fiscal_year": [fy] if fy else [],
        "year": [int(published[:4])] if published else [],
        "agency": agencies,
        "ministry": ministries_of(agencies),
        "province": provs,
        "region": list(dict.fromkeys(r for p in provs if (r := region_of(p)))),
        "pmqa": list(tf["pmqa"]),
        "gov40": list(tf["gov40"]),
        "factor": list(dict.fromkeys(factor_tags)),
    }


def count_facets(per_doc: Iterable[dict[str, list]]) -> dict[str, dict[Any, int]]:
    """Documents per facet value (each document counted once per value), most first."""
    counts: dict[str, Counter] = {f: Counter() for f in FACETS}
    for facets in per_doc:
        for name, values in facets.items():
            counts.setdefault(name, Counter()).update(set(values))
    return {name: dict(sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0]))))
            for name, c in counts.items()}


def facet_counts(items: Iterable[Any], store: Any = None,
                 stored: dict[int, dict[str, list]] | None = None) -> dict[str, dict[Any, int]]:
    """Facet counts for search hits (``Hit``) or doc ids, counting each document once.

    With a :class:`~km_search.lessons.store.LessonStore`, a document's facets come from its
    stored lesson card (whole document); without one, hits are faceted from their own
    metadata and passage text, whose :func:`text_facets` ``stored`` may hold by chunk id
    (the search's passages.db keeps them).
    """
    stored = stored or {}
    seen: dict[str, dict[str, list]] = {}
    items = list(items)
    carded = (store.facets_of(it if isinstance(it, str) else it.doc_id for it in items)
              if store is not None else {})
    for it in items:
        doc_id = it if isinstance(it, str) else it.doc_id
        if doc_id in seen:
            if not isinstance(it, str) and store is None:  # merge another passage's text
                more = _hit_facets(it, stored.get(it.chunk_id))
                for k, v in more.items():
                    seen[doc_id][k] = list(dict.fromkeys(seen[doc_id][k] + v))
            continue
        if doc_id in carded:
            seen[doc_id] = carded[doc_id]
        elif not isinstance(it, str):
            seen[doc_id] = _hit_facets(it, stored.get(it.chunk_id))
    return count_facets(seen.values())


def _hit_facets(hit: Any, text: dict[str, list] | None = None) -> dict[str, list]:
    return doc_facets(title=hit.title, body=hit.text, publisher=hit.publisher, text=text,
                      published=hit.published, provinces=hit.provinces)
