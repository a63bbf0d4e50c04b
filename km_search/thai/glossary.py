"""English -> Thai glossary for cross-lingual query expansion.

The default embedding model (multilingual-e5-small) links English and Thai at the
document level but is weak at passage level (see the eval's seed-question table):
"Khon Kaen" alone does not pull the passage about ขอนแก่น. Named entities and KM
vocabulary are where it fails, so English queries are expanded for BM25 with the Thai
names of provinces (RTGS spelling), agencies and common public-sector KM terms. The
dense side always sees the user's original query.
"""
from __future__ import annotations

import re

PROVINCES_EN = {
    "bangkok": "กรุงเทพมหานคร", "krabi": "กระบี่", "kanchanaburi": "กาญจนบุรี",
    "kalasin": "กาฬสินธุ์", "kamphaeng phet": "กำแพงเพชร", "khon kaen": "ขอนแก่น",
    "chanthaburi": "จันทบุรี", "chachoengsao": "ฉะเชิงเทรา", "chonburi": "ชลบุรี",
    "chon buri": "ชลบุรี", "chai nat": "ชัยนาท", "chaiyaphum": "ชัยภูมิ", "chumphon": "ชุมพร",
    "chiang rai": "เชียงราย", "chiang mai": "เชียงใหม่", "trang": "ตรัง", "trat": "ตราด",
    "tak": "ตาก", "nakhon nayok": "นครนายก", "nakhon pathom": "นครปฐม",
    "nakhon phanom": "นครพนม", "nakhon ratchasima": "นครราชสีมา", "korat": "นครราชสีมา",
    "nakhon si thammarat": "นครศรีธรรมราช", "nakhon sawan": "นครสวรรค์",
    "nonthaburi": "นนทบุรี", "narathiwat": "นราธิวาส", "nan": "น่าน", "bueng kan": "บึงกาฬ",
    "buriram": "บุรีรัมย์", "buri ram": "บุรีรัมย์", "pathum thani": "ปทุมธานี",
    "prachuap khiri khan": "ประจวบคีรีขันธ์", "prachinburi": "ปราจีนบุรี",
    "prachin buri": "ปราจีนบุรี", "pattani": "ปัตตานี", "ayutthaya": "พระนครศรีอยุธยา",
    "phra nakhon si ayutthaya": "พระนครศรีอยุธยา", "phayao": "พะเยา", "phang nga": "พังงา",
    "phangnga": "พังงา", "phatthalung": "พัทลุง", "phichit": "พิจิตร", "phitsanulok": "พิษณุโลก",
    "phetchaburi": "เพชรบุรี", "phetchabun": "เพชรบูรณ์", "phrae": "แพร่", "phuket": "ภูเก็ต",
    "maha sarakham": "มหาสารคาม", "mukdahan": "มุกดาหาร", "mae hong son": "แม่ฮ่องสอน",
    "yasothon": "ยโสธร", "yala": "ยะลา", "roi et": "ร้อยเอ็ด", "ranong": "ระนอง",
    "rayong": "ระยอง", "ratchaburi": "ราชบุรี", "lopburi": "ลพบุรี", "lop buri": "ลพบุรี",
    "lampang": "ลำปาง", "lamphun": "ลำพูน", "loei": "เลย", "sisaket": "ศรีสะเกษ",
    "si sa ket": "ศรีสะเกษ", "sakon nakhon": "สกลนคร", "songkhla": "สงขลา", "satun": "สตูล",
    "samut prakan": "สมุทรปราการ", "samut songkhram": "สมุทรสงคราม",
    "samut sakhon": "สมุทรสาคร", "sa kaeo": "สระแก้ว", "saraburi": "สระบุรี",
    "sing buri": "สิงห์บุรี", "sukhothai": "สุโขทัย", "suphan buri": "สุพรรณบุรี",
    "suphanburi": "สุพรรณบุรี", "surat thani": "สุราษฎร์ธานี", "surin": "สุรินทร์",
    "nong khai": "หนองคาย", "nong bua lam phu": "หนองบัวลำภู", "ang thong": "อ่างทอง",
    "amnat charoen": "อำนาจเจริญ", "udon thani": "อุดรธานี", "uttaradit": "อุตรดิตถ์",
    "uthai thani": "อุทัยธานี", "ubon ratchathani": "อุบลราชธานี",
}

AGENCIES_EN = {
    "opdc": "สำนักงาน ก.พ.ร.", "office of the public sector development commission": "สำนักงาน ก.พ.ร.",
    "ministry of interior": "กระทรวงมหาดไทย", "interior ministry": "กระทรวงมหาดไทย",
    "community development department": "กรมการพัฒนาชุมชน",
    "department of disease control": "กรมควบคุมโรค", "ddc": "กรมควบคุมโรค",
    "ministry of public health": "กระทรวงสาธารณสุข", "ministry of education": "กระทรวงศึกษาธิการ",
    "ministry of finance": "กระทรวงการคลัง", "ministry of agriculture": "กระทรวงเกษตรและสหกรณ์",
    "government house": "ทำเนียบรัฐบาล", "civil service commission": "สำนักงาน ก.พ.",
    "permanent secretary": "ปลัดกระทรวง", "governor": "ผู้ว่าราชการจังหวัด",
    "university": "มหาวิทยาลัย", "local administration": "องค์กรปกครองส่วนท้องถิ่น",
}

TERMS_EN = {
    "success factors": "ปัจจัยความสำเร็จ", "success factor": "ปัจจัยความสำเร็จ",
    "key success": "ปัจจัยความสำเร็จ", "success": "ความสำเร็จ", "successful": "ความสำเร็จ",
    "knowledge management": "การจัดการความรู้", "lessons learned": "บทเรียน",
    "lesson": "บทเรียน", "best practice": "แนวปฏิบัติที่ดี", "good practice": "แนวปฏิบัติที่ดี",
    "innovation": "นวัตกรรม", "collaboration": "การสานพลัง ความร่วมมือ",
    "participation": "การมีส่วนร่วม", "citizen-centric": "ยึดประชาชนเป็นศูนย์กลาง",
    "citizen centric": "ยึดประชาชนเป็นศูนย์กลาง", "citizens": "ประชาชน", "citizen": "ประชาชน",
    "people": "ประชาชน", "open and connected": "เปิดกว้างและเชื่อมโยง",
    "high performance": "สมรรถนะสูง", "digitalization": "ดิจิทัล", "digital": "ดิจิทัล",
    "government 4.0": "ระบบราชการ 4.0", "thailand 4.0": "ไทยแลนด์ 4.0", "province 4.0": "จังหวัด 4.0",
    "award": "รางวัล", "quality award": "รางวัลคุณภาพ", "workshop": "ประชุมเชิงปฏิบัติการ",
    "training": "อบรม", "seminar": "สัมมนา", "forum": "เสวนา", "poverty": "ความยากจน",
    "study": "ศึกษา", "learning organization": "องค์กรแห่งการเรียนรู้",
    "learning organisation": "องค์กรแห่งการเรียนรู้", "province": "จังหวัด",
    "provincial": "จังหวัด", "plan": "แผน", "efficiency": "ประสิทธิภาพ",
    "effectiveness": "ประสิทธิผล", "network": "เครือข่าย", "tips": "เคล็ดลับ", "secret": "เคล็ดลับ",
    "secrets": "เคล็ดลับ", "strategy": "ยุทธศาสตร์", "report": "รายงาน",
    "application report": "Application Report", "budget": "งบประมาณ", "fiscal year": "ปีงบประมาณ",
    "governance": "ธรรมาภิบาล", "sustainable development": "การพัฒนาอย่างยั่งยืน",
    "public service": "บริการประชาชน", "medical": "การแพทย์", "health": "สุขภาพ",
    "tourism": "ท่องเที่ยว", "education": "การศึกษา", "agriculture": "เกษตร",
    "community": "ชุมชน", "development": "การพัฒนา", "organisation": "องค์การ",
    "organization": "องค์การ", "working group": "คณะทำงาน", "principles": "หลักการ",
    "obstacles": "ปัญหาอุปสรรค", "recommendations": "ข้อเสนอแนะ", "results": "ผลการดำเนินงาน",
}

FAMILIES = {"terms": TERMS_EN, "agencies": AGENCIES_EN, "provinces": PROVINCES_EN}
GLOSSARY = {**TERMS_EN, **AGENCIES_EN, **PROVINCES_EN}
_RX = re.compile(r"(?<![a-z])(" + "|".join(
    re.escape(k) for k in sorted(GLOSSARY, key=len, reverse=True)) + r")(?![a-z])")
_LATIN = re.compile(r"[A-Za-z]")


def expand_english(query: str, families: tuple[str, ...] | None = None) -> str:
    """Thai equivalents of the glossary terms in an English (or mixed) query, or ''.
    ``families``: which parts of the glossary to use (default: all); the eval measures
    each (KM_SEARCH_EXPAND)."""
    if not _LATIN.search(query):
        return ""
    use = None if families is None else {k for f in families for k in FAMILIES.get(f, ())}
    found = dict.fromkeys(GLOSSARY[m.group(1)] for m in _RX.finditer(query.lower())
                          if use is None or m.group(1) in use)
    return " ".join(found)
