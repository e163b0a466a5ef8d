"""Input checks shared by the analyses: every problem found, one error listing them all."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd


def require(what: str, **frames: tuple[object, tuple[str, ...]]) -> None:
    """Raise one ``ValueError`` naming every frame that is not a DataFrame or lacks columns.

    ``require("salon coverage", surface=(surface, ("x", "y")), services=(services, ("kind",)))``
    """
    problems = []
    for name, (frame, columns) in frames.items():
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"'{name}' should be a DataFrame, got {type(frame).__name__}")
            continue
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            problems.append(f"'{name}' lacks the columns {missing}")
    if problems:
        raise ValueError(f"cannot compute {what}: " + "; ".join(problems))


def same_crs(what: str, reference: tuple[str, gpd.GeoDataFrame], **frames: gpd.GeoDataFrame) -> None:
    """Raise one ``ValueError`` naming every frame whose CRS differs from the reference's."""
    ref_name, ref = reference
    problems = [f"'{name}' should be in the CRS of '{ref_name}' ({ref.crs}), got {frame.crs}"
                for name, frame in frames.items() if frame.crs != ref.crs]
    if problems:
        raise ValueError(f"cannot compute {what}: " + "; ".join(problems))
