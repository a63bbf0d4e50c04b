"""Strip web-page noise from extracted text.

Pages come with share boxes ("แชร์หน้านี้"), print links ("พิมพ์"), view counters
("(Visited 1 times, 1 visits today)"), and headlines repeated two or three times.
Removing them keeps passages about the content, and keeps the BM25 statistics honest.
"""
from __future__ import annotations

import re

from km_search.thai import normalize

_NOISE_LINES = re.compile(
    r"^\s*(แชร์หน้านี้|แชร์|พิมพ์|print|share|\(visited \d+ times?(, \d+ visits? today)?\)|"
    r"tags?\s*:.*|อ่านต่อ|กลับหน้าหลัก)\s*$", re.IGNORECASE)


def clean_text(text: str, title: str = "") -> str:
    """Normalised body text with noise lines and repeated headlines removed."""
    out: list[str] = []
    seen_title = False
    for raw in normalize(text).split("\n"):
        line = raw.strip()
        if not line or _NOISE_LINES.match(line):
            continue
        if out and line == out[-1]:
            continue
        if title and line == title:
            if seen_title:
                continue
            seen_title = True
            continue  # the headline is kept as the title, not repeated in the body
        out.append(line)
    return "\n".join(out)
