"""The karte web API (FastAPI). Routes are thin: they call :mod:`karte`, they do not compute."""
