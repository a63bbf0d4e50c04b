"""Stored text into Markdown, HTML links and Office XML, safely.

Document titles, URLs and passages come from crawled pages and users' files, so any of
them can hold ``<script>``, Markdown link syntax, a ``javascript:`` URL or control
characters. Every writer of Markdown/HTML/DOCX output passes stored text through these
few functions, so escaping rules live in one place.
"""
from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#|!~])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HTML_SPECIAL = re.compile("[&<>]")
# characters XML 1.0 cannot hold (lxml refuses them in a DOCX): C0 controls except tab,
# newline and carriage return, lone surrogates, U+FFFE/U+FFFF
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def md_escape(text: str) -> str:
    """Text as literal Markdown inline content: no markup, HTML or line breaks survive.
    ``<``, ``>`` and ``&`` become entities (inert in any Markdown or HTML viewer), the
    other Markdown punctuation gets a backslash."""
    text = _HTML_SPECIAL.sub(lambda m: _HTML[m.group()], " ".join(xml_safe(text).split()))
    return _MD_SPECIAL.sub(r"\\\1", text)


def safe_url(url: str) -> str | None:
    """``url`` if it is an absolute http(s) URL, percent-encoding spaces and brackets so
    it cannot end a Markdown/HTML link early; None for anything else (``javascript:``,
    ``data:``, relative or malformed)."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(xml_safe(url), safe=":/?#[]@!$&'*+,;=%-._~")


def md_link(text: str, url: str) -> str:
    """A Markdown link to an http(s) URL, or just the escaped text when the URL is unsafe."""
    u = safe_url(url)
    label = md_escape(text)
    return f"[{label}](<{u}>)" if u else label


def xml_safe(text: str) -> str:
    """Drop characters that XML (so DOCX) cannot store."""
    return _XML_INVALID.sub("", text) if text else text
