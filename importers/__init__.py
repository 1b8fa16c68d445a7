"""Corpus importers: one module per corpus behind one contract (`importers.base`), and the registry."""
