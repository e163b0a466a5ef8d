"""Input checks shared by the analyses: every problem found, one error listing them all.

:func:`require` and :func:`same_crs` raise at once; an analysis with checks of its own collects
:func:`frame_problems` and :func:`crs_problems` beside them and raises one error for all.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd


def frame_problems(frames: dict[str, tuple[object, tuple[str, ...]]], *,
                   kind: type = pd.DataFrame) -> list[str]:
    """Every frame of ``{name: (frame, columns)}`` that is not a ``kind`` or lacks columns."""
    problems = []
    for name, (frame, columns) in frames.items():
        if not isinstance(frame, kind):
            problems.append(f"'{name}' should be a {kind.__name__}, got {type(frame).__name__}")
            continue
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            problems.append(f"'{name}' lacks the columns {missing}")
    return problems


def crs_problems(reference: tuple[str, gpd.GeoDataFrame], **frames) -> list[str]:
    """Every frame whose CRS differs from the reference's (frames without a CRS are passed over:
    :func:`frame_problems` names them)."""
    ref_name, ref = reference
    return [f"'{name}' should be in the CRS of '{ref_name}' ({ref.crs}), got {frame.crs}"
            for name, frame in frames.items() if hasattr(frame, "crs") and frame.crs != ref.crs]


def require(what: str, **frames: tuple[object, tuple[str, ...]]) -> None:
    """Raise one ``ValueError`` naming every frame that is not a DataFrame or lacks columns.

    ``require("salon coverage", surface=(surface, ("x", "y")), services=(services, ("kind",)))``
    """
    _raise(what, frame_problems(frames))


def same_crs(what: str, reference: tuple[str, gpd.GeoDataFrame], **frames: gpd.GeoDataFrame) -> None:
    """Raise one ``ValueError`` naming every frame whose CRS differs from the reference's."""
    _raise(what, crs_problems(reference, **frames))


def _raise(what: str, problems: list[str]) -> None:
    if problems:
        raise ValueError(f"cannot compute {what}: " + "; ".join(problems))
