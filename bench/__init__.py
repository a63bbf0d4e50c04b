"""Measurements on top of the library: retrieval quality (``evaluate``: iapp-wiki-qa and
the English seed questions; ``lessons``: card extraction against labels), speed
(``speed``: in-process; ``serving`` and ``loadtest``: over HTTP). They build indexes
with ``indexer`` and serve with ``api``, so they live outside the library."""
