"""Web crawlers: sources (sources.toml), polite fetching, extraction, Thai PDF repair,
resumable SQLite crawl state, and the runner that feeds the document store and index."""
from .config import Source, Sources, SourceError, load_sources
from km_search.thai.pdfrepair import repair_thai_pdf_text

__all__ = ["Source", "Sources", "SourceError", "load_sources", "repair_thai_pdf_text"]
