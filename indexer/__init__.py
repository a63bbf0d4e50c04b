"""Build, persist and update the search index (see km_search.indexdir for the layout)."""
from .build import IndexStats, update_index

__all__ = ["IndexStats", "update_index"]
