"""The loaded index, shared by all requests, swapped when a rebuild finishes.

One :class:`~km_search.search.Searcher` is loaded at start-up. At most every
``reload_seconds`` a request asks it whether the ``index`` symlink now points at another
build; if so the Searcher loads the new build under its own lock, which every search
also holds, so a request sees the old build or the new one, never half of either. A
build that fails to load leaves the old one serving and the error visible in /health.
"""
from __future__ import annotations

import logging
import threading
import time

from km_search import indexdir
from km_search.embed import Embedder
from km_search.search import Searcher
from km_search.settings import Config

log = logging.getLogger("km_search.api")


class IndexUnavailable(Exception):
    """No usable index (never built, or damaged); the message says what to do."""


class SearchService:
    def __init__(self, cfg: Config, embedder: Embedder | None = None):
        self.cfg = cfg
        self.embedder = embedder
        self.searcher: Searcher | None = None
        self.error: str | None = None
        self.loaded_at: float | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._try_load()

    def _try_load(self) -> None:
        try:
            self.searcher = Searcher(self.cfg, self.embedder)
            self.loaded_at, self.error = time.time(), None
        except indexdir.IndexError_ as e:
            self.error = str(e)
            log.warning("index not loaded: %s", e)

    def get(self) -> Searcher:
        """The current Searcher, reloaded first if a rebuild swapped the index."""
        now = time.monotonic()
        if now - self._checked >= self.cfg.reload_seconds and self._lock.acquire(blocking=False):
            try:
                self._checked = now
                if self.searcher is None:
                    self._try_load()
                else:
                    try:
                        if self.searcher.reload_if_changed():
                            self.loaded_at, self.error = time.time(), None
                            log.info("loaded new index build %s", self.searcher.build.name)
                    except indexdir.IndexError_ as e:  # keep serving the old build
                        self.error = f"new build not loaded, still serving the old one: {e}"
                        log.error(self.error)
            finally:
                self._lock.release()
        if self.searcher is None:
            raise IndexUnavailable(self.error or "no index loaded")
        return self.searcher

    def warm(self) -> None:
        """Load the embedding model now rather than on the first query."""
        if self.searcher is not None:
            try:
                self.searcher.embedder
            except indexdir.IndexError_ as e:
                self.error = str(e)
