"""District lines across censuses: which small areas changed, and which district each new one joins.

Districts are sets of small areas. When a new census redraws, splits, merges or renames small
areas, the district a new area belongs to is decided from where it lies on the previous district
polygons, by areal interpolation (:func:`tobler.area_weighted.area_interpolate`): an area keeps the
district its land belonged to, or the one holding most of it when it straddles a line. The people
of the part that lay in another district move with it; :func:`carry_districts` reports every such
move (how many people, from where to where, and which change caused it), so nothing moves
silently. Areas whose code and boundary did not change keep their district as they are.
"""

from __future__ import annotations

import unicodedata
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from tobler.area_weighted import area_interpolate

#: Kinds of change between two censuses' small areas, with their Japanese names.
CHANGE_JA = {
    "renamed": "名称変更",
    "boundary": "境界変更",
    "split": "分割",
    "merged": "統合",
    "recoded": "コード変更",
    "new": "新設",
    "abolished": "廃止",
}
#: Two polygons of one KEY_CODE are "the same area" above this intersection-over-union (the
#: shipped 2015 polygons are simplified, so even unchanged areas never match exactly).
SAME_IOU = 0.9
#: An old and a new area are linked when their overlap exceeds this share of the smaller one.
LINK_SHARE = 0.05
#: A part of a changed area's land on another district below this share is the slivers and overlaps
#: of the simplified polygons rather than a real move: such parts are still reported, summed per
#: pair of districts, as 境界線の微小なずれ.
SLIVER_SHARE = 0.05
SLIVER_JA = "境界線の微小なずれ（面積の5%未満）"


@dataclass(frozen=True)
class AreaChange:
    """One change between the previous and the new census's small areas."""

    kind: str
    old: tuple[tuple[str, str], ...]   # (key_code, name) before
    new: tuple[tuple[str, str], ...]   # (key_code, name) after

    def text_ja(self) -> str:
        before = "、".join(f"{n}（{k}）" for k, n in self.old) or "なし"
        after = "、".join(f"{n}（{k}）" for k, n in self.new) or "なし"
        return f"{CHANGE_JA[self.kind]}: {before} → {after}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "kind_ja": CHANGE_JA[self.kind],
                "old": [{"key_code": k, "name": n} for k, n in self.old],
                "new": [{"key_code": k, "name": n} for k, n in self.new], "text": self.text_ja()}


@dataclass
class Move:
    """People (an areal-interpolation estimate) whose small area now counts in another district."""

    key_code: str
    name: str
    from_district: str
    to_district: str
    population: float
    households: float
    reason: str

    def text_ja(self) -> str:
        return (f"約 {round(self.population):,} 人（{round(self.households):,} 世帯）: "
                f"地区 {self.from_district} → 地区 {self.to_district}（{self.name}: {self.reason}）")


@dataclass
class Carry:
    """The new small areas' districts and what the change of lines moved."""

    mapping: pd.DataFrame                  # key_code, district_code, district_name (every new area)
    changes: list[AreaChange]
    moves: list[Move]
    districts: pd.DataFrame                # per district: before/after counts and people moved
    unchanged: int = 0
    outside: list[str] = field(default_factory=list)   # new areas on no previous district

    def as_dict(self) -> dict:
        return {
            "changes": [c.as_dict() for c in self.changes],
            "moves": [{"key_code": m.key_code, "name": m.name, "from": m.from_district, "to": m.to_district,
                       "population": round(m.population, 1), "households": round(m.households, 1),
                       "reason": m.reason, "text": m.text_ja()} for m in self.moves],
            "districts": self.districts.reset_index().to_dict("records"),
            "unchanged": self.unchanged,
            "outside": self.outside,
        }


def compare_areas(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> tuple[list[AreaChange], dict[str, str]]:
    """The changes between two censuses' small areas (``key_code``, ``name``, polygons in one
    metric CRS), and for each new area whose code or boundary changed, the reason in Japanese."""
    links = _links(old, new)
    old_names = dict(zip(old["key_code"].astype(str), old["name"].astype(str), strict=True))
    new_names = dict(zip(new["key_code"].astype(str), new["name"].astype(str), strict=True))
    both = set(old_names) & set(new_names)
    changes: list[AreaChange] = []
    reasons: dict[str, str] = {}
    iou = _same_code_iou(old, new, both)
    for key in sorted(both):
        if _norm(old_names[key]) != _norm(new_names[key]):
            changes.append(AreaChange("renamed", ((key, old_names[key]),), ((key, new_names[key]),)))
            reasons.setdefault(key, CHANGE_JA["renamed"])
        if iou.get(key, 0.0) < SAME_IOU:
            changes.append(AreaChange("boundary", ((key, old_names[key]),), ((key, new_names[key]),)))
            reasons[key] = CHANGE_JA["boundary"]
    children = links.groupby("old")["new"].apply(list).to_dict()
    parents = links.groupby("new")["old"].apply(list).to_dict()
    done_new: set[str] = set()
    for key in sorted(set(old_names) - both):
        kids = sorted(children.get(key, []))
        if not kids:
            changes.append(AreaChange("abolished", ((key, old_names[key]),), ()))
        elif len(kids) >= 2:
            changes.append(AreaChange("split", ((key, old_names[key]),),
                                      tuple((k, new_names[k]) for k in kids)))
            for k in kids:
                reasons[k] = f"{old_names[key]}の{CHANGE_JA['split']}"
            done_new.update(kids)
        else:
            kid = kids[0]
            olds = sorted(parents.get(kid, []))
            kind = "merged" if len(olds) >= 2 else "recoded"
            if kid in done_new:
                continue
            changes.append(AreaChange(kind, tuple((k, old_names[k]) for k in olds), ((kid, new_names[kid]),)))
            reasons[kid] = CHANGE_JA[kind]
            done_new.add(kid)
    for key in sorted(set(new_names) - both - done_new):
        olds = sorted(parents.get(key, []))
        if olds:   # carved out of areas that still exist
            changes.append(AreaChange("split", tuple((k, old_names[k]) for k in olds),
                                      tuple([(k, new_names[k]) for k in olds if k in new_names]
                                            + [(key, new_names[key])])))
            reasons[key] = f"{'、'.join(old_names[k] for k in olds)}からの{CHANGE_JA['split']}"
        else:
            changes.append(AreaChange("new", (), ((key, new_names[key]),)))
            reasons[key] = CHANGE_JA["new"]
    return changes, reasons


def carry_districts(new: gpd.GeoDataFrame, old: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, *,
                    counts: tuple[str, str] = ("population", "households")) -> Carry:
    """Give each new small area a district and report what moved.

    Parameters
    ----------
    new
        The new census's small areas: ``key_code``, ``name``, the ``counts`` (null where
        concealed: they count as 0, their people are in their merge target) and polygons.
    old
        The previous census's small areas with their ``district_code``.
    districts
        The previous district polygons (``district_code``, ``district_name``).
    """
    new = new.to_crs(districts.crs)
    old = old.to_crs(districts.crs)
    changes, reasons = compare_areas(old, new)
    old_district = dict(zip(old["key_code"].astype(str), old["district_code"], strict=True))
    names = dict(zip(districts["district_code"], districts["district_name"], strict=True))
    codes = list(districts["district_code"])
    shares = _district_shares(new, districts)
    values = new[list(counts)].apply(pd.to_numeric, errors="coerce").fillna(0.0).astype(float)
    assigned: list[str] = []
    moves: list[Move] = []
    outside: list[str] = []
    unchanged = 0
    for i, key in enumerate(new["key_code"].astype(str)):
        row = shares[i]
        if key in old_district and reasons.get(key, CHANGE_JA["renamed"]) == CHANGE_JA["renamed"]:
            assigned.append(old_district[key])   # same land (perhaps a new name): same district
            unchanged += 1
            continue
        if row.sum() <= 0:
            near = districts.distance(new.geometry.iat[i].representative_point()).to_numpy().argmin()
            assigned.append(codes[near])
            outside.append(key)
            continue
        target = codes[int(row.argmax())]
        assigned.append(target)
        total = row.sum()
        for j, share in enumerate(row):
            if codes[j] == target or share <= 0:
                continue
            part = share / total
            reason = reasons.get(key, CHANGE_JA["boundary"]) if part >= SLIVER_SHARE else SLIVER_JA
            moves.append(Move(key, str(new["name"].iat[i]), codes[j], target,
                              float(values.iat[i, 0] * part), float(values.iat[i, 1] * part), reason))
    mapping = pd.DataFrame({"key_code": new["key_code"].astype(str).to_numpy(), "district_code": assigned})
    mapping["district_name"] = mapping["district_code"].map(names)
    report = _district_report(new, old, districts, mapping, moves, list(counts))
    return Carry(mapping, changes, [m for m in moves if round(m.population) or round(m.households)],
                 report, unchanged, outside)


def _district_shares(new: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> np.ndarray:
    """Share of each new area's land in each previous district (rows: areas, columns: districts),
    by areal interpolation of district indicator columns (intensive variables)."""
    codes = list(districts["district_code"])
    source = gpd.GeoDataFrame(pd.DataFrame(np.eye(len(codes)), columns=[f"d{j}" for j in range(len(codes))]),
                              geometry=districts.geometry.to_numpy(), crs=districts.crs)
    target = gpd.GeoDataFrame(geometry=new.geometry.to_numpy(), crs=new.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = area_interpolate(source, target, intensive_variables=list(source.columns[:-1]))
    return est[[f"d{j}" for j in range(len(codes))]].fillna(0.0).to_numpy()


def _district_report(new, old, districts, mapping, moves: list[Move], counts: list[str]) -> pd.DataFrame:
    """Per district: small areas before and after, the new census's people on the previous lines
    (areal interpolation) and by the carried membership, and the people moved in and out."""
    values = new[counts].apply(pd.to_numeric, errors="coerce").fillna(0.0).astype(float)
    source = gpd.GeoDataFrame(values.reset_index(drop=True), geometry=new.geometry.to_numpy(), crs=new.crs)
    target = districts[["district_code", districts.geometry.name]].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_lines = area_interpolate(source, target, extensive_variables=counts)
    out = pd.DataFrame(index=pd.Index(districts["district_code"], name="district_code"))
    out["district_name"] = districts["district_name"].to_numpy()
    out["areas_before"] = old.groupby("district_code").size().reindex(out.index).fillna(0).astype(int)
    out["areas_after"] = mapping.groupby("district_code").size().reindex(out.index).fillna(0).astype(int)
    out["population_on_previous_lines"] = np.round(on_lines["population"].to_numpy()).astype(int)
    by_member = pd.Series(values["population"].to_numpy(), index=mapping["district_code"])
    by_member = by_member.groupby(level=0).sum()
    out["population_by_membership"] = by_member.reindex(out.index).fillna(0).round().astype(int)
    moved = pd.DataFrame([(m.from_district, m.to_district, m.population) for m in moves],
                         columns=["from", "to", "population"])
    for column, side in (("moved_out", "from"), ("moved_in", "to")):
        sums = moved.groupby(side)["population"].sum().reindex(out.index)
        out[column] = sums.fillna(0).round().astype(int)
    return out


def _links(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> pd.DataFrame:
    """Pairs (old key, new key) whose overlap is more than :data:`LINK_SHARE` of the smaller."""
    a = gpd.GeoDataFrame({"old": old["key_code"].astype(str).to_numpy(),
                          "old_area": old.geometry.area.to_numpy()},
                         geometry=old.geometry.to_numpy(), crs=old.crs)
    b = gpd.GeoDataFrame({"new": new["key_code"].astype(str).to_numpy(),
                          "new_area": new.geometry.area.to_numpy()},
                         geometry=new.geometry.to_numpy(), crs=new.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inter = gpd.overlay(a, b, how="intersection", keep_geom_type=True)
    inter["share"] = inter.geometry.area / np.minimum(inter["old_area"], inter["new_area"]).clip(lower=1.0)
    keep = inter[inter["share"] > LINK_SHARE]
    return pd.DataFrame(keep[["old", "new"]]).reset_index(drop=True)


def _same_code_iou(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame, keys: set[str]) -> dict[str, float]:
    a = old.set_index(old["key_code"].astype(str)).geometry
    b = new.set_index(new["key_code"].astype(str)).geometry
    out = {}
    for key in keys:
        g1, g2 = a.loc[key], b.loc[key]
        union = g1.union(g2).area
        out[key] = g1.intersection(g2).area / union if union else 1.0
    return out


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).replace("ヶ", "ケ").strip()


def trend(census_areas: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, *, before: int, after: int,
          counts: tuple[str, ...] = ("population", "households")) -> pd.DataFrame:
    """Each current district's people and households in two census years.

    Both years' small areas are interpolated onto the current district polygons (extensive
    counts, :func:`tobler.area_weighted.area_interpolate`), so a district whose lines or small
    areas changed between the censuses is compared on the same ground. Concealed areas count as
    0 in their own polygon (their people are in their merge target's). Returns per district
    ``<count>_<year>`` for both years and the change of population (people and %).
    """
    target = districts[["district_code", districts.geometry.name]].reset_index(drop=True)
    out = pd.DataFrame(index=pd.Index(districts["district_code"], name="district_code"))
    out["district_name"] = districts["district_name"].to_numpy()
    for year in (before, after):
        part = census_areas[census_areas["year"].astype(int) == year]
        values = part[list(counts)].apply(pd.to_numeric, errors="coerce").fillna(0.0).astype(float)
        source = gpd.GeoDataFrame(values.reset_index(drop=True), geometry=part.geometry.to_numpy(),
                                  crs=part.crs).to_crs(districts.crs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = area_interpolate(source, target, extensive_variables=list(counts))
        for c in counts:
            out[f"{c}_{year}"] = np.round(est[c].to_numpy()).astype(int)
    first, last = out[f"population_{before}"], out[f"population_{after}"]
    out["population_change"] = last - first
    out["population_change_pct"] = ((last - first) / first.where(first > 0)).mul(100).round(1)
    return out


def carried_counts(previous: gpd.GeoDataFrame, new: gpd.GeoDataFrame,
                   counts: tuple[str, ...] = ("population", "households", "age_0_14", "age_15_64",
                                              "age_65_74", "age_75_plus")) -> pd.DataFrame:
    """The previous census's counts carried onto the new small areas (areal interpolation of
    extensive counts; concealed areas count as 0): indexed by the new ``key_code``, what the
    per-fiscal-year history needs to record the previous census on today's small areas and
    districts (docs/census.md, the history hook)."""
    cols = [c for c in counts if c in previous.columns]
    values = previous[cols].apply(pd.to_numeric, errors="coerce").fillna(0.0).astype(float)
    source = gpd.GeoDataFrame(values.reset_index(drop=True), geometry=previous.geometry.to_numpy(),
                              crs=previous.crs)
    target = gpd.GeoDataFrame(geometry=new.geometry.to_numpy(), crs=new.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = area_interpolate(source.to_crs(new.crs), target, extensive_variables=cols)
    out = pd.DataFrame(np.round(est[cols].to_numpy()).astype("int64"), columns=cols,
                       index=pd.Index(new["key_code"].astype(str).to_numpy(), name="key_code"))
    return out.astype("Int64")
