"""The city overview web map: districts coloured by a measure, salons and shelters."""

from __future__ import annotations

import html
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from karte.render.webmap import copy_assets, for_web, legend_html, offline_map

#: Five greyscale-safe sequential colours (ColorBrewer YlOrRd 5).
PALETTE = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"]


def classify(values: pd.Series, k: int = 5) -> tuple[np.ndarray, list[float]]:
    """Quantile classes 0..k-1 and the class breaks (null values get -1)."""
    v = values.astype(float)
    breaks = list(np.nanquantile(v, np.linspace(0, 1, k + 1))) if v.notna().any() else [0.0] * (k + 1)
    cls = np.full(len(v), -1)
    ok = v.notna().to_numpy()
    cls[ok] = np.clip(np.searchsorted(breaks[1:-1], v[ok].to_numpy(), side="right"), 0, k - 1)
    return cls, breaks


def overview_map(
    districts: gpd.GeoDataFrame,
    stats: pd.DataFrame,
    services: gpd.GeoDataFrame,
    shelters: gpd.GeoDataFrame,
    *,
    asset_base: str,
    basemap: str = "gsi_pale",
    synthetic: bool = True,
) -> folium.Map:
    """Districts coloured by ageing rate (高齢化率), with names, salons and shelters."""
    d = districts.merge(stats, left_on="district_code", right_index=True, how="left")
    d["ageing_rate"] = d["elderly"].astype(float) / d["age_known"].astype(float)
    cls, breaks = classify(d["ageing_rate"])
    d["fill"] = [PALETTE[c] if c >= 0 else "#cccccc" for c in cls]
    d["rate_text"] = d["ageing_rate"].map(lambda r: "—" if pd.isna(r) else f"{r:.1%}")
    d["pop_text"] = d["population"].map(lambda p: "—" if pd.isna(p) else f"{int(p):,}人")
    web = for_web(d[["district_code", "district_name", "fill", "rate_text", "pop_text", "geometry"]],
                  close_gaps_m=60)

    m = offline_map(web.total_bounds, asset_base=asset_base, basemap=basemap)
    folium.GeoJson(
        web.to_json(),
        name="地区（高齢化率）",
        style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#333",
                                  "weight": 1, "fillOpacity": 0.65},
        highlight_function=lambda f: {"weight": 3},
        tooltip=folium.GeoJsonTooltip(["district_code", "district_name", "pop_text", "rate_text"],
                                      aliases=["地区コード", "地区名", "人口", "高齢化率"]),
    ).add_to(m)

    labels = folium.FeatureGroup(name="地区名", show=True)
    for row in web.itertuples():
        p = row.geometry.representative_point()
        folium.Marker(
            [p.y, p.x],
            icon=folium.DivIcon(html=f'<div style="font:11px sans-serif;white-space:nowrap;'
                                     f'text-shadow:0 0 3px #fff">'
                                     f'{html.escape(row.district_name.replace("（仮）", ""))}</div>'),
        ).add_to(labels)
    labels.add_to(m)

    salons = for_web(services[services["kind"] == "salon"], tolerance_m=0)
    layer = folium.FeatureGroup(name="サロン", show=True)
    for s in salons.itertuples():
        folium.CircleMarker([s.geometry.y, s.geometry.x], radius=4, color="#1b5e20", fill=True,
                            fill_opacity=0.9, tooltip=html.escape(s.name)).add_to(layer)
    layer.add_to(m)

    sh = for_web(shelters, tolerance_m=0)
    layer = folium.FeatureGroup(name="指定避難所（紫: 福祉避難所）", show=False)
    for s in sh.itertuples():
        colour = "#6a1b9a" if s.welfare else "#1565c0"
        label = f"{s.name}（福祉避難所）" if s.welfare else s.name
        folium.CircleMarker([s.geometry.y, s.geometry.x], radius=7 if s.welfare else 5,
                            color=colour, weight=3 if s.welfare else 1, fill=True,
                            fill_color="#ffffff" if s.welfare else colour, fill_opacity=0.9,
                            tooltip=html.escape(label)).add_to(layer)
    layer.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)

    items = [(PALETTE[i], f"{breaks[i]:.1%} 〜 {breaks[i + 1]:.1%}") for i in range(len(PALETTE))]
    title = "高齢化率（65歳以上）"
    if synthetic:
        title += "<br><small>※年齢構成は合成データ（デモ）</small>"
    if districts["district_name"].str.startswith("（仮）").any():
        title += "<br><small>※地区割りは代替（仮）: 実際の地区社協の区域ではありません</small>"
    m.get_root().html.add_child(folium.Element(legend_html(title, items)))
    m.get_root().header.add_child(folium.Element(
        '<meta charset="utf-8"><title>青森市 地区カルテ 全体図</title>'))
    return m


def write_overview(path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    copy_assets(path.parent)
    m = overview_map(asset_base="assets/leaflet", **kwargs)
    m.save(str(path))
    return path
