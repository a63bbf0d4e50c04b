"""The document store and the ways documents get in: seeds, local files, crawlers."""
from .store import DocumentStore

__all__ = ["DocumentStore"]
