"""The bundled seed corpus: five real Thai public-sector news texts.

The raw files live in ../shared/seeds (read-only); ``build_seed_jsonl`` cleans them,
attaches the metadata from that folder's README, and writes corpus/data/seeds.jsonl,
which ships with the package so a fresh install indexes them with no network.
"""
from __future__ import annotations

import json
from pathlib import Path

from km_search.models import Document
from km_search.thai import find_date
from km_search.thai.provinces import provinces_in

from .clean import clean_text

BUNDLED = Path(__file__).parent / "data" / "seeds.jsonl"

# From ../shared/seeds/README.md; titles are the page headlines.
SEED_META: dict[str, dict[str, str]] = {
    "000_6fcee9b62a8409b7": {
        "publisher": "สำนักงาน ก.พ.ร. (OPDC)", "site": "www.opdc.go.th", "url": "",
        "title": "สำนักงาน ก.พ.ร. จัดกิจกรรมแลกเปลี่ยนเรียนรู้ เรื่อง \"เคล็ดที่ไม่ลับ...ความสำเร็จในการพัฒนาองค์การสู่การเป็นระบบราชการ 4.0” ของจังหวัด ผ่านสื่ออิเล็กทรอนิกส์",
    },
    "001_060103db4d9e3160": {
        "publisher": "กรมการพัฒนาชุมชน (พช.)", "site": "", "url": "",
        "title": "พช. ประชุมคณะทำงาน PMQA 4.0 ครั้งที่ 2/2565",
    },
    "002_d7880ede011fff30": {
        "publisher": "สำนักงาน ก.พ.ร. (OPDC)", "site": "www.opdc.go.th", "url": "",
        "title": "สำนักงาน ก.พ.ร. จัดอบรมเชิงปฏิบัติการแนวทางการจัดทำรายงานผลการดำเนินการพัฒนาองค์การ (Application Report) รางวัลคุณภาพการบริหารจัดการภาครัฐ 4.0",
    },
    "003_c548de22d8cc4494": {
        "publisher": "สำนักงาน ก.พ.ร. (OPDC) / กระทรวงมหาดไทย", "site": "www.opdc.go.th", "url": "",
        "title": "สำนักงาน ก.พ.ร. จับมือกระทรวงมหาดไทย ผลักดันการขยายผลจังหวัด 4.0",
    },
    "004_7b7b360df6402293": {
        "publisher": "ทำเนียบรัฐบาล (thaigov.go.th) / กระทรวงมหาดไทย", "site": "www.thaigov.go.th",
        "url": "https://www.thaigov.go.th/news/contents/details/36994",
        "title": "มหาดไทย จัดประชุมเชิงปฏิบัติการเพื่อจัดทำแผนเพิ่มประสิทธิภาพองค์การ ประจำปี 2564 มุ่งสู่การเป็นระบบราชการ 4.0 และการพัฒนาอย่างยั่งยืน",
    },
}


def seed_document(path: Path) -> Document:
    """One raw seed file -> a cleaned Document with metadata."""
    stem = path.stem
    meta = SEED_META[stem]
    raw = path.read_text(encoding="utf-8")
    # The first line of 004 carries the site's breadcrumb before the headline.
    first, _, rest = raw.partition("\n")
    if first.startswith("รัฐบาลไทย-ข่าวทำเนียบรัฐบาล-"):
        raw = rest
    body = clean_text(raw, meta["title"])
    if body.startswith(meta["title"]):
        body = body[len(meta["title"]):].lstrip()
    date = find_date(raw)
    return Document(
        doc_id=stem.split("_", 1)[1], title=meta["title"], body=body, url=meta["url"],
        publisher=meta["publisher"], provinces=provinces_in(body),
        published=date[0] if date else None, published_raw=date[1] if date else "",
        source="seed", fetched_at="2026-11-22T00:00:00+00:00",
        metadata={"seed_file": path.name, "site": meta["site"]})


def build_seed_jsonl(seed_dir: Path, out: Path = BUNDLED) -> list[Document]:
    docs = [seed_document(p) for p in sorted(Path(seed_dir).glob("0*.txt"))]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in docs),
                   encoding="utf-8")
    tmp.replace(out)
    return docs


def bundled_seeds() -> list[Document]:
    with open(BUNDLED, encoding="utf-8") as fh:
        return [Document.from_dict(json.loads(line)) for line in fh if line.strip()]


if __name__ == "__main__":  # python -m corpus.seeds ../shared/seeds
    import sys
    for d in build_seed_jsonl(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/seeds")):
        print(d.doc_id, d.published, d.provinces, len(d.body), d.title[:50])
