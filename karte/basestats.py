"""Base statistics per district (基礎情報), with the city total beside each district.

Counts come either from the small areas mapped to each district (the usual case: districts are
sets of small areas) or, when districts were given as polygons that do not follow census lines,
from :func:`gis.districts.apportion` (areal interpolation). Concealed (秘匿) small areas contribute
nothing and are counted in ``concealed_areas`` so a reader knows the figure is a lower bound.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from gis.districts import apportion
from karte.domain.schema import AGE_BANDS, Consent

COUNT_COLUMNS = ("population", "households", *AGE_BANDS, "elderly_alone", "disabled")

#: (key, Japanese label, unit, denominator for the rate or None for a share of the city)
MEASURES = (
    ("population", "人口", "人", None),
    ("households", "世帯数", "世帯", None),
    ("age_0_14", "年少人口 (0〜14歳)", "人", "age_known"),
    ("age_15_64", "生産年齢人口 (15〜64歳)", "人", "age_known"),
    ("age_65_74", "前期高齢者 (65〜74歳)", "人", "age_known"),
    ("age_75_plus", "後期高齢者 (75歳以上)", "人", "age_known"),
    ("elderly", "高齢者 (65歳以上)", "人", "age_known"),
    ("elderly_alone", "一人暮らし高齢者", "人", "elderly"),
    ("disabled", "障がい者", "人", "population"),
    ("support_needers", "災害時要支援者", "人", "population"),
    ("support_needers_consented", "うち名簿提供に同意", "人", "support_needers"),
)


def district_counts(
    small_areas: gpd.GeoDataFrame,
    *,
    districts: gpd.GeoDataFrame | None = None,
    by_polygon: bool = False,
) -> pd.DataFrame:
    """Sum the small-area counts per district.

    With ``by_polygon=False`` the small areas' ``district_code`` decides; with ``True`` the counts
    are apportioned to ``districts`` polygons by area. Returns integer-like counts indexed by
    ``district_code`` plus ``concealed_areas`` and ``age_known`` (population whose age is known).
    """
    cols = [c for c in COUNT_COLUMNS if c in small_areas.columns]
    if by_polygon:
        if districts is None:
            raise ValueError("by_polygon needs the district polygons")
        out = apportion(small_areas, districts, cols).round().astype("Int64")
    else:
        grouped = small_areas.groupby("district_code")
        out = grouped[cols].sum(min_count=0).astype("Int64")
        out["concealed_areas"] = grouped["concealed"].sum().astype(int)
    out["age_known"] = out[list(AGE_BANDS)].sum(axis=1).astype("Int64")
    out["elderly"] = (out["age_65_74"] + out["age_75_plus"]).astype("Int64")
    out.index.name = "district_code"
    return out


def base_stats(counts: pd.DataFrame, register: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Add register counts to district counts; return (per district, city total)."""
    counts = counts.copy()
    reg = register.groupby("district_code")
    counts["support_needers"] = reg.size().reindex(counts.index).fillna(0).astype("Int64")
    shareable = register["consent"].map(lambda c: Consent(c).shareable)
    counts["support_needers_consented"] = (
        shareable.groupby(register["district_code"]).sum().reindex(counts.index).fillna(0)
        .astype("Int64")
    )
    city = counts.sum(numeric_only=True)
    return counts, city


def measure_rows(row: pd.Series, city: pd.Series) -> list[dict]:
    """The base-statistics table of one district: value, rate or share, and the city's."""
    rows = []
    for key, label, unit, denom in MEASURES:
        value = _int(row.get(key))
        city_value = _int(city.get(key))
        item = {"key": key, "label": label, "unit": unit, "value": value, "city": city_value}
        if denom is None:
            item["share_of_city"] = _ratio(value, city_value)
        else:
            item["rate"] = _ratio(value, _int(row.get(denom)))
            item["city_rate"] = _ratio(city_value, _int(city.get(denom)))
            item["rate_of"] = denom
        rows.append(item)
    return rows


def _int(v):
    if v is None or pd.isna(v):
        return None
    return int(v)


def _ratio(a, b):
    if a is None or not b:
        return None
    return round(a / b, 4)
