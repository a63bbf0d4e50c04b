"""The ways documents get in: seeds, local files, crawlers. They write into the library's
document store (km_search.docstore)."""
