"""Retrievers (BM25 over Thai tokens, dense FAISS vectors) and their fusion."""
