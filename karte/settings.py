"""One settings object, read from the environment (``KARTE_*``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from karte.domain.access import DEFAULT_SUPPRESS_MAX
from karte.domain.schema import DEFAULT_MUNICIPALITY

#: The repository's shipped data (boundaries, shelters, town points, stand-in districts).
REPO_DATA = Path(__file__).resolve().parent.parent / "data"


class Settings(BaseSettings):
    """Runtime settings. Every field can be set as ``KARTE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="KARTE_", frozen=True)

    #: Folder for the store and generated outputs when no ``--store``/``--out`` is given.
    workspace: Path = Path("workspace")
    #: ``postgresql+psycopg://...`` selects the PostGIS store; empty means the GeoPackage.
    database_url: str = ""
    #: GeoPackage of the embedded store (default: ``WORKSPACE/karte.gpkg``).
    store: Path | None = None
    #: Shipped input data.
    data_dir: Path = REPO_DATA
    #: Fiscal year (年度) printed on kartes; default: the fiscal year of the build date.
    fiscal_year: int | None = None
    #: Seed of the synthetic demo data.
    seed: int = 2026
    #: The municipality (JIS code) of this deployment: of new users and of the command line's
    #: user unless they say otherwise (KARTE_MUNICIPALITY; Aomori city by default).
    municipality: str = DEFAULT_MUNICIPALITY
    #: The snow season (積雪期), month-day to month-day (KARTE_WINTER_START / KARTE_WINTER_END):
    #: inside it the pages and sheets use the winter walking distances (gis.params.AnalysisParams
    #: ``winter``); ``KARTE_WINTER`` = on / off forces the season either way (default: by date).
    winter_start: str = "12-01"
    winter_end: str = "03-31"
    winter: str = "auto"
    #: Counts of people from 1 to this are shown as 秘匿 in every public output: web pages, JSON,
    #: CSV, OGC API, public sheets (KARTE_SUPPRESS_MAX, default 2).
    suppress_max: int = DEFAULT_SUPPRESS_MAX

    @property
    def default_store(self) -> Path:
        return self.store or self.workspace / "karte.gpkg"


def get_settings() -> Settings:
    """The settings the environment gives now. Building them costs ~5 ms (pydantic reads and
    validates every field), and pages ask on every request (the season), so one object is kept
    per distinct set of ``KARTE_*`` variables: a changed variable gives fresh settings at once.
    Settings are frozen, so a shared object cannot be changed under another caller."""
    karte = sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("KARTE_"))
    return _settings_for(tuple(karte))


@lru_cache(maxsize=16)
def _settings_for(environment: tuple[tuple[str, str], ...]) -> Settings:  # the key of the cache
    return Settings()
