"""Sitemaps (XML urlset and sitemap index, plain text, RSS/Atom) read with
ultimate-sitemap-parser. The crawler fetches each sitemap itself, politely, and hands the
text here; an index's children come back as URLs to fetch next."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

logging.getLogger("usp").setLevel(logging.ERROR)


@dataclass
class SitemapContent:
    pages: list[tuple[str, str | None]] = field(default_factory=list)  # (url, lastmod ISO)
    sitemaps: list[str] = field(default_factory=list)  # child sitemaps of an index


def parse_sitemap(text: str) -> SitemapContent:
    from usp.objects.sitemap import AbstractIndexSitemap, InvalidSitemap
    from usp.tree import sitemap_from_str

    out = SitemapContent()
    tree = sitemap_from_str(text)
    if isinstance(tree, AbstractIndexSitemap):
        out.sitemaps = [s.url for s in tree.sub_sitemaps if s.url]
        # children already parsed (rare for sitemap_from_str) also give pages
        for s in tree.sub_sitemaps:
            if not isinstance(s, InvalidSitemap):
                out.pages += [(p.url, p.last_modified.isoformat() if p.last_modified else None)
                              for p in s.all_pages()]
        return out
    if isinstance(tree, InvalidSitemap):
        return out
    for p in tree.all_pages():
        out.pages.append((p.url, p.last_modified.isoformat() if p.last_modified else None))
    return out
