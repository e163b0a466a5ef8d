"""Storage: one interface (:class:`Store`), chosen by one setting.

``open_store(None)`` opens the workspace GeoPackage, a path opens that GeoPackage, and a
``postgresql+psycopg://`` URL (argument or ``KARTE_DATABASE_URL``) the PostGIS store.
"""

from __future__ import annotations

from pathlib import Path

from karte.settings import Settings, get_settings
from karte.store.base import Store
from karte.store.gpkg import GeoPackageStore

__all__ = ["GeoPackageStore", "Store", "open_store"]


def open_store(target: str | Path | None = None, *, settings: Settings | None = None) -> Store:
    settings = settings or get_settings()
    url = str(target) if target is not None else settings.database_url
    if url.startswith("postgresql"):
        from karte.store.postgis import PostGISStore  # imported when used: it costs 0.4 s

        return PostGISStore(url)
    return GeoPackageStore(Path(target) if target is not None else settings.default_store)
