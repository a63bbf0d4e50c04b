"""The ``km-search`` command: the top layer, calling corpus, indexer, api and bench."""
from .main import app, main

__all__ = ["app", "main"]
