"""km-search, the library: Thai text, embeddings, retrieval backends, search, answers,
lessons, query understanding and the index layout.

It imports nothing from the packages that sit on it (``corpus``, ``indexer``, ``api``,
``bench``, ``cli``); tests/km_search/test_layers.py checks that. See docs/architecture.md.
"""
__version__ = "0.1.0"  # the one place: pyproject.toml and the API read it from here
