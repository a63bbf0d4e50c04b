"""URL canonical form, used for the crawl queue and for document ids.

courlan's ``normalize_url`` lower-cases scheme and host, drops default ports, sorts the
query and removes tracking parameters (utm_*, fbclid, gclid, ...). On top of it this
drops the fragment and a few more trackers Thai government sites pick up from LINE and
Facebook shares, so ``/news/1?utm_source=line#top`` and ``/news/1`` are one document.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin, urlsplit, urlunsplit

from courlan import normalize_url

# courlan already strips utm_*, fbclid, gclid and friends; these are the extra ones seen on
# shared links (LINE, Facebook, Google Analytics linker, session ids)
_EXTRA_TRACKERS = re.compile(r"^(?:_ga|_gl|fb_action_ids|fb_action_types|fb_source|action_object_map"
                             r"|openExternalBrowser|phpsessid|jsessionid|sid|share|s_cid)$", re.I)


def canonical(url: str) -> str:
    """The crawl's one spelling of ``url`` (no fragment, no trackers, no default port)."""
    url = urldefrag(url.strip())[0]
    try:
        url = normalize_url(url)
    except (ValueError, AttributeError):  # courlan refuses some odd URLs: keep them as they are
        pass
    parts = urlsplit(urldefrag(url)[0])
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not _EXTRA_TRACKERS.match(k)]
    path = parts.path or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def absolute(base: str, href: str | None) -> str | None:
    """``href`` resolved against ``base`` and canonicalised; None for javascript:/mailto:/#."""
    if not href:
        return None
    href = href.strip()
    if href.startswith(("javascript:", "mailto:", "tel:", "#", "data:")):
        return None
    joined = urljoin(base, href)
    if urlsplit(joined).scheme not in ("http", "https"):
        return None
    return canonical(joined)
