"""The QGIS package of a GeoPackage: its layers' styles and a project, stored in the file itself.

:func:`write_qgis` is what ``karte demo`` and ``karte export`` call on the GeoPackage they wrote:
it reads what the file holds (its feature layers, the small areas' age bands for the districts'
ageing rates, as the city map computes them), renders the styles and the project
(:mod:`karte.render.qgis_styles`, :mod:`karte.render.qgis_project`) and writes them in one
transaction (:mod:`karte.store.gpkg_styles`). Only public layers are read; a personal layer in the
file gets a style, never a look at its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from karte.basestats import district_counts
from karte.domain.layers import Layer
from karte.render import qgis_project, qgis_styles
from karte.store import gpkg_styles
from karte.store.gpkg import GeoPackageStore


@dataclass(frozen=True)
class QgisPackage:
    """What :func:`write_qgis` wrote: the styled layers (top first) and the project's name."""

    layers: tuple[str, ...]
    project: str


def write_qgis(path: str | Path, *, now: datetime | None = None) -> QgisPackage:
    """Store the karte styles of every feature layer of the GeoPackage ``path`` as their default
    QGIS styles, and the QGIS project ``karte`` that shows them as the web does."""
    path = Path(path)
    tables = gpkg_styles.feature_tables(path)
    layers = [qgis_styles.LayerInfo(t.name, t.geometry_column, t.geometry_type, t.columns, t.extent)
              for t in tables]
    ageing, synthetic = _ageing(path, {t.name for t in tables})
    styles = qgis_styles.layer_styles(layers, ageing=ageing, synthetic_age=synthetic)
    qgs = qgis_project.project_qgs(path.name, styles, layers, title="地区カルテ")
    gpkg_styles.write_qgis(path, styles, qgis_project.project_qgz(qgs),
                           project_name=qgis_project.PROJECT_NAME, now=now)
    return QgisPackage(tuple(s.layer for s in styles), qgis_project.PROJECT_NAME)


def _ageing(path: Path, names: set[str]) -> tuple[dict[str, float], bool]:
    """District code -> 65歳以上 / 年齢が分かる人口 from the file's small areas (the city map's measure)."""
    if Layer.SMALL_AREAS not in names:
        return {}, False
    store = GeoPackageStore(path)
    try:
        small = pd.DataFrame(store.read(Layer.SMALL_AREAS).drop(columns="geometry", errors="ignore"))
    finally:
        store.close()
    needed = {"district_code", "age_0_14", "age_15_64", "age_65_74", "age_75_plus", "concealed"}
    if not needed <= set(small.columns):
        return {}, False
    counts = district_counts(small)
    rate = counts["elderly"].astype(float) / counts["age_known"].astype(float).where(counts["age_known"] > 0)
    synthetic = "synthetic_age" in small and bool(small["synthetic_age"].fillna(False).astype(bool).any())
    return {str(k): float(v) for k, v in rate.items() if pd.notna(v)}, synthetic


