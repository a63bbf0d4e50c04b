"""Thai dates to ISO C.E.

Thai pages write dates in the Buddhist Era (พ.ศ. 2564 = 2021 C.E.; B.E. = C.E. + 543),
with full or abbreviated month names, optional weekday ("วันพุธที่"), ranges
("7-8 ธ.ค. 2564") and Thai digits (๒๕๖๔). English and ISO forms are accepted too.
"""
from __future__ import annotations

import re
from datetime import date

from .normalize import thai_to_arabic_digits

_MONTHS = {
    "มกราคม": 1, "ม.ค.": 1, "กุมภาพันธ์": 2, "ก.พ.": 2, "มีนาคม": 3, "มี.ค.": 3,
    "เมษายน": 4, "เม.ย.": 4, "พฤษภาคม": 5, "พ.ค.": 5, "มิถุนายน": 6, "มิ.ย.": 6,
    "กรกฎาคม": 7, "ก.ค.": 7, "สิงหาคม": 8, "ส.ค.": 8, "กันยายน": 9, "ก.ย.": 9,
    "ตุลาคม": 10, "ต.ค.": 10, "พฤศจิกายน": 11, "พ.ย.": 11, "ธันวาคม": 12, "ธ.ค.": 12,
}
_EN_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_TH_MONTH_RE = "|".join(re.escape(m) for m in sorted(_MONTHS, key=len, reverse=True))
_THAI = re.compile(
    rf"(?P<day>\d{{1,2}})(?:\s*[-–]\s*\d{{1,2}})?\s*(?P<month>{_TH_MONTH_RE})\s*"
    rf"(?:(?P<era>พ\.\s?ศ\.|ค\.\s?ศ\.)\s*)?(?P<year>\d{{4}}|\d{{2}})(?!\d)")
_EN = re.compile(r"(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3})[a-z]*\.?,?\s+(?P<year>\d{4})")
_ISO = re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})")


BE_OFFSET = 543  # พ.ศ. = ค.ศ. + 543


def year_ce(year: int, era: str | None = None) -> int:
    """C.E. year of a year as Thai pages write it: two-digit years ("พ.ย. 63", "08/01/59")
    and four-digit years after 2400 are Buddhist Era unless the era says ค.ศ."""
    if year < 100:
        year += 2500
    if era and era.startswith("ค"):
        return year
    return year - BE_OFFSET if year > 2400 else year


def _make(y: int, m: int, d: int) -> str | None:
    try:
        return date(y, m, d).isoformat()
    except ValueError:
        return None


def find_date(text: str) -> tuple[str, str] | None:
    """First date in ``text`` as (ISO C.E. date, the matched original string)."""
    folded = thai_to_arabic_digits(text)
    best: tuple[int, str, str] | None = None
    for rx in (_THAI, _EN, _ISO):
        for m in rx.finditer(folded):
            g = m.groupdict()
            if rx is _THAI:
                iso = _make(year_ce(int(g["year"]), g.get("era")), _MONTHS[g["month"]], int(g["day"]))
            elif rx is _EN:
                mon = _EN_MONTHS.get(g["month"].lower())
                iso = _make(int(g["year"]), mon, int(g["day"])) if mon else None
            else:
                iso = _make(int(g["year"]), int(g["month"]), int(g["day"]))
            if iso and (best is None or m.start() < best[0]):
                best = (m.start(), iso, text[m.start():m.end()])
            if iso:
                break
    return (best[1], best[2]) if best else None


def parse_thai_date(text: str) -> str | None:
    """ISO C.E. date of the first date in ``text``, or None."""
    found = find_date(text)
    return found[0] if found else None


_TH_MONTH_NAMES = [m for m in _MONTHS if not m.endswith(".")]  # full names, in month order


def thai_date(iso: str | None) -> str:
    """The Buddhist-Era form Thai pages write: 2021-12-08 -> '8 ธันวาคม พ.ศ. 2564'."""
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", iso or "")
    if not m:
        return ""
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    return f"{d} {_TH_MONTH_NAMES[mo - 1]} พ.ศ. {y + BE_OFFSET}" if 1 <= mo <= 12 else ""
