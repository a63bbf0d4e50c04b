"""Site chrome that never belongs in a document: the default removal list.

Collected from the layouts of Thai department and provincial sites: div-based headers
and footers (Elementor, Joomla, Bootstrap templates), cookie/PDPA consent bars, AddToAny
and other share boxes, view counters, "recommended"/"related" post blocks and the
header's "today" clock. A source's ``remove`` selectors are added to this list.
"""
from __future__ import annotations

DEFAULT_REMOVE: tuple[str, ...] = (
    # structure
    "script", "style", "noscript", "template", "iframe", "input", "select", "button",
    "textarea", "nav", "header", "footer", "aside", "[role=navigation]", "[role=banner]", "[role=contentinfo]", "[role=search]",
    ".skip-link", ".screen-reader-text",
    # div-based headers/footers and menus
    "#header", ".header", ".site-header", ".page-header-top", ".topbar", ".top-bar", ".navbar",
    "#navbar", "#menu", ".menu", ".main-menu", ".mega-menu", ".dropdown-menu", "#footer",
    ".footer", ".site-footer", ".copyright", ".elementor-location-header",
    ".elementor-location-footer", "[data-elementor-type=header]", "[data-elementor-type=footer]",
    ".sidebar", "#sidebar", ".widget-area", ".breadcrumb", ".breadcrumbs", "[class*=breadcrumb]",
    ".moduletable", ".pagination", ".pager", ".page-numbers", ".nav-links", ".post-navigation",
    # consent bars
    "[id*=cookie]", "[class*=cookie]", "[id*=pdpa]", "[class*=pdpa]", "[class*=consent]",
    "[id*=consent]", "[class*=gdpr]",
    # share boxes and counters
    ".addtoany_share_save_container", ".addtoany_content", ".a2a_kit", "[class*=addtoany]",
    ".sharedaddy", ".share", ".shares", ".social", ".social-share", "[class*=share-]",
    "[class*=sharing]", ".post-views", ".views", ".view-count", "[class*=visitor]",
    "[class*=counter]", ".print", ".font-size",
    # recommended / related posts
    "[class*=related]", "[class*=recommend]", ".elementor-widget-posts", ".elementor-posts",
    ".jp-relatedposts", ".yarpp", ".more-news", ".other-news", ".latest-news",
    # header clocks
    "[class*=today]", "[id*=today]", ".date-now", ".current-date", "#clock", ".clock",
    # comments
    "#comments", ".comments", ".comment-respond",
)

# <header> inside the article holds its title and date: only page-level ones are chrome
KEEP_INSIDE = ("article", "main")

# A block introduced by one of these headings is a list of other posts, not the content.
RELATED_HEADINGS = ("บทความแนะนำ", "ข่าวแนะนำ", "ข่าวที่เกี่ยวข้อง", "บทความที่เกี่ยวข้อง",
                    "เรื่องที่เกี่ยวข้อง", "ข่าวล่าสุด", "ข่าวอื่น ๆ", "ข่าวอื่นๆ", "เรื่องอื่นๆ",
                    "อ่านเพิ่มเติม", "โพสต์ล่าสุด", "related posts", "recommended", "you may also like")
