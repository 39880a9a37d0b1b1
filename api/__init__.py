"""The edges people and systems touch: the HTTP API (FastAPI) and the ``esup`` CLI."""
