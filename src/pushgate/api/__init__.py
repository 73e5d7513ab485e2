"""The HTTP faces (FastAPI lives only in this package)."""
