"""Evacuation risk order of support-needers (避難の優先順): who is visited first in a drill or on the day.

Pure: a frame of register rows in, an order out. The vocabulary (device names, mobility codes,
care levels) is data in :class:`RiskWeights`, so the caller may pass its own.

The order is lexicographic, most urgent first:

1. medical devices: life-sustaining ones (人工呼吸器, たん吸引) before other devices (在宅酸素, 人工透析,
   any other) before none;
2. mobility: bedridden (寝たきり) before wheelchair before walking with help before independent;
3. no supporter assigned before having one (the person nobody is going to yet);
4. care level: 要介護5 down to 要支援1, then none;
5. the person's id, so the order is total and stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RiskWeights:
    """Ranks of each factor (higher: more urgent); unknown values rank 0 (or ``other_device``)."""

    #: device name -> rank; a device not listed ranks ``other_device``
    devices: dict[str, int] = field(default_factory=lambda: {
        "人工呼吸器": 3, "たん吸引": 3, "喀痰吸引": 3, "在宅酸素": 2, "人工透析": 2})
    other_device: int = 1
    mobility: dict[str, int] = field(default_factory=lambda: {
        "bedridden": 3, "wheelchair": 2, "walk_with_help": 1, "independent": 0})
    care_levels: dict[str, int] = field(default_factory=lambda: {
        "要介護5": 7, "要介護4": 6, "要介護3": 5, "要介護2": 4, "要介護1": 3, "要支援2": 2, "要支援1": 1})


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def device_rank(value, weights: RiskWeights) -> int:
    """Rank of a ``medical_devices`` cell (several devices joined by ・ ; , or 、: the most urgent)."""
    if _missing(value):
        return 0
    parts = [p.strip() for p in str(value).replace("、", ";").replace("・", ";").replace(",", ";").split(";")]
    return max((weights.devices.get(p, weights.other_device) for p in parts if p), default=0)


def risk_keys(register: pd.DataFrame, *, weights: RiskWeights | None = None) -> pd.DataFrame:
    """The factors of the order, one row per register row (same index): ``device``, ``mobility``,
    ``no_supporter`` (1 when ``supporter_ids`` is empty), ``care`` (ranks, higher more urgent)."""
    weights = weights or RiskWeights()

    def col(name):
        return register[name] if name in register.columns else pd.Series([None] * len(register),
                                                                          index=register.index)

    return pd.DataFrame({
        "device": [device_rank(v, weights) for v in col("medical_devices")],
        "mobility": [0 if _missing(v) else weights.mobility.get(str(v), 0) for v in col("mobility")],
        "no_supporter": [int(_missing(v)) for v in col("supporter_ids")],
        "care": [0 if _missing(v) else weights.care_levels.get(str(v), 0) for v in col("care_level")],
    }, index=register.index)


def risk_order(register: pd.DataFrame, *, weights: RiskWeights | None = None,
               id_column: str = "person_id") -> pd.DataFrame:
    """``register`` sorted most urgent first (see the module docstring for the order)."""
    if not len(register):
        return register
    keys = risk_keys(register, weights=weights)
    ids = register[id_column].astype(str) if id_column in register.columns else pd.Series(
        [str(i) for i in register.index], index=register.index)
    order = np.lexsort((ids.to_numpy(), -keys["care"].to_numpy(), -keys["no_supporter"].to_numpy(),
                        -keys["mobility"].to_numpy(), -keys["device"].to_numpy()))
    return register.iloc[order]
