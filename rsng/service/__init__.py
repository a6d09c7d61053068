"""The sweep service: the only layer that imports Ray (lazily). Imports rsng.core, rsng.results, rsng.tracking."""
