"""The 77 provinces of Thailand (Thai names), for tagging documents by province."""
from __future__ import annotations

import re

PROVINCES: tuple[str, ...] = (
    "กรุงเทพมหานคร", "กระบี่", "กาญจนบุรี", "กาฬสินธุ์", "กำแพงเพชร", "ขอนแก่น", "จันทบุรี",
    "ฉะเชิงเทรา", "ชลบุรี", "ชัยนาท", "ชัยภูมิ", "ชุมพร", "เชียงราย", "เชียงใหม่", "ตรัง", "ตราด",
    "ตาก", "นครนายก", "นครปฐม", "นครพนม", "นครราชสีมา", "นครศรีธรรมราช", "นครสวรรค์",
    "นนทบุรี", "นราธิวาส", "น่าน", "บึงกาฬ", "บุรีรัมย์", "ปทุมธานี", "ประจวบคีรีขันธ์",
    "ปราจีนบุรี", "ปัตตานี", "พระนครศรีอยุธยา", "พะเยา", "พังงา", "พัทลุง", "พิจิตร", "พิษณุโลก",
    "เพชรบุรี", "เพชรบูรณ์", "แพร่", "ภูเก็ต", "มหาสารคาม", "มุกดาหาร", "แม่ฮ่องสอน", "ยโสธร",
    "ยะลา", "ร้อยเอ็ด", "ระนอง", "ระยอง", "ราชบุรี", "ลพบุรี", "ลำปาง", "ลำพูน", "เลย", "ศรีสะเกษ",
    "สกลนคร", "สงขลา", "สตูล", "สมุทรปราการ", "สมุทรสงคราม", "สมุทรสาคร", "สระแก้ว", "สระบุรี",
    "สิงห์บุรี", "สุโขทัย", "สุพรรณบุรี", "สุราษฎร์ธานี", "สุรินทร์", "หนองคาย", "หนองบัวลำภู",
    "อ่างทอง", "อำนาจเจริญ", "อุดรธานี", "อุตรดิตถ์", "อุทัยธานี", "อุบลราชธานี",
)
assert len(PROVINCES) == 77
_RX = re.compile("|".join(sorted(map(re.escape, PROVINCES), key=len, reverse=True)))


def provinces_in(text: str) -> list[str]:
    """Provinces named in ``text``, in order of first mention.

    Names that occur inside longer ones (ตาก in ตากใบ is rare; น่าน, เลย, ตรัง are common
    words) are only counted after "จังหวัด"/"จ." or when they appear as whole tokens.
    """
    seen: dict[str, None] = {}
    for m in _RX.finditer(text):
        name = m.group(0)
        before = text[max(0, m.start() - 7):m.start()]
        if len(name) <= 4 and not re.search(r"(จังหวัด|จ\.)\s*$", before):
            continue
        seen.setdefault(name, None)
    return list(seen)
