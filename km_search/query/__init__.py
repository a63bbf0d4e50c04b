"""Query-side understanding: stop words, follow-up rewriting, dates/places/agencies."""
