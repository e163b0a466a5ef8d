"""Evacuation-support gaps (避難支援の空白): which links are missing for each support-needer.

A support-needer (避難行動要支援者) is safe only when every link of the chain holds. Each missing
link is one gap kind (a boolean column, see :data:`GAP_KINDS`):

``no_consent``
    the ``consent`` value is not shareable (:attr:`gis.vocab.Vocabulary.consent_shareable`, e.g.
    neither 同意 nor 条例による推定同意): the district may not see the entry in normal times.
    Counted, never listed outside city staff.
``no_location``
    the person has no point (``location_precision == "none"``, null or empty geometry): no
    distance can be checked and nobody can find the home on a map.
``no_supporter``
    no assigned supporter (避難支援等関係者, listed in ``supporter_ids``) that exists in the
    cooperators layer.
``supporter_far``
    every assigned supporter is farther than ``supporter_max_m`` (walking distance).
``supporter_overloaded``
    every assigned supporter is assigned to more people than their ``capacity``.
``no_plan``
    the individual evacuation plan (個別避難計画) is not done (``plan_status != "done"``).
``no_shelter``
    no suitable place within reach: a welfare shelter (福祉避難所) within ``welfare_m`` for a
    person who needs care (:func:`needs_care`), otherwise an emergency site (指定緊急避難場所)
    flagged for ``params.hazard`` within ``site_walk_m``.

"Every assigned supporter" is deliberate: a person with two supporters, one near and one far, has
a supporter near enough. Distance gaps are only judged when both ends have a location; an
unknown distance is not a gap (the missing location is, as ``no_location``). A cooperator with a
null capacity is never overloaded (unknown is not a gap). A supporter in another district counts
like any other: only the distance matters.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.check import crs_problems, frame_problems
from gis.distance import nearest_walking, paired_walking, point_xy
from gis.params import AnalysisParams
from gis.vocab import Vocabulary

if TYPE_CHECKING:  # the network (networkx) is the caller's: never imported for the type alone
    from gis.network import WalkNetwork

GAP_KINDS = ("no_consent", "no_location", "no_supporter", "supporter_far", "supporter_overloaded",
             "no_plan", "no_shelter")

#: 要介護 level from which a person needs care.
CARE_FROM_LEVEL = 3
_CARE_LEVEL = re.compile(r"要介護\s*([1-5])")


def needs_care(register: pd.DataFrame, *, vocab: Vocabulary) -> pd.Series:
    """Who needs care, and so a welfare shelter (福祉避難所) rather than an ordinary one.

    True when any of: ``care_level`` is 要介護3, 4 or 5 (full-width digits accepted);
    ``mobility`` is one of ``vocab.care_mobility`` (e.g. bedridden, wheelchair);
    ``medical_devices`` names a device (在宅酸素, 人工呼吸器, ...). Missing columns count as "no".

    Parameters
    ----------
    register
        Support-needers (``care_level``, ``mobility``, ``medical_devices``; any may be missing).
    vocab
        The caller's vocabularies (:class:`gis.vocab.Vocabulary`): the mobility values that need
        care.
    """
    n = len(register)
    out = np.zeros(n, dtype=bool)
    if "care_level" in register.columns:
        levels = register["care_level"].map(_care_level)
        out |= levels.to_numpy(dtype=float, na_value=0.0) >= CARE_FROM_LEVEL
    if "mobility" in register.columns:
        out |= register["mobility"].isin(list(vocab.care_mobility)).to_numpy()
    if "medical_devices" in register.columns:
        dev = register["medical_devices"]
        out |= (dev.notna() & (dev.astype(str).str.strip() != "")).to_numpy()
    return pd.Series(out, index=register.index, name="needs_care")


def supporter_load(register: pd.DataFrame, cooperators: pd.DataFrame, *,
                   vocab: Vocabulary) -> pd.DataFrame:
    """How many support-needers each cooperator is assigned to, against their capacity.

    Parameters
    ----------
    register
        Support-needers (``supporter_ids``).
    cooperators
        Cooperators (``cooperator_id``, ``capacity``, optional ``help_kinds``).
    vocab
        The caller's vocabularies (:class:`gis.vocab.Vocabulary`): the list separator and the
        ``help_kinds`` value of evacuation help.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``cooperator_id``: ``load`` (register rows naming the cooperator in
        ``supporter_ids``), ``capacity`` (nullable integer), ``spare`` (capacity - load, null when
        capacity is), ``overloaded`` (load > capacity; False when capacity is null) and ``willing``
        (``help_kinds`` contains ``vocab.evacuation_help``).
    """
    pairs = assigned_supporters(register, vocab=vocab)
    load = pairs.drop_duplicates().groupby("cooperator_id").size()
    ids = cooperators["cooperator_id"].astype(str).to_numpy()
    out = pd.DataFrame(index=pd.Index(ids, name="cooperator_id"))
    out["load"] = load.reindex(out.index).fillna(0).astype(int).to_numpy()
    capacity = pd.to_numeric(cooperators["capacity"], errors="coerce").astype("Int64").to_numpy()
    out["capacity"] = pd.array(capacity, dtype="Int64")
    out["spare"] = out["capacity"] - out["load"]
    out["overloaded"] = (out["load"] > out["capacity"]).fillna(False).astype(bool)
    kinds = cooperators["help_kinds"] if "help_kinds" in cooperators.columns else pd.Series(
        [None] * len(cooperators))
    out["willing"] = [vocab.evacuation_help in vocab.split(k) for k in kinds]
    return out


def assigned_supporters(register: pd.DataFrame, *, vocab: Vocabulary) -> pd.DataFrame:
    """Every (register row position, cooperator_id) pair listed in ``supporter_ids``.

    Parameters
    ----------
    register
        Support-needers (``supporter_ids``: cooperator ids separated by ``vocab.list_separator``;
        a missing column means nobody has a supporter).
    vocab
        The caller's vocabularies (:class:`gis.vocab.Vocabulary`): the list separator.

    Returns
    -------
    pandas.DataFrame
        ``row`` (0..n-1 position in ``register``) and ``cooperator_id``.
    """
    rows, ids = [], []
    if "supporter_ids" in register.columns:
        for i, value in enumerate(register["supporter_ids"].to_numpy(dtype=object)):
            for cid in vocab.split(value):
                rows.append(i)
                ids.append(cid)
    return pd.DataFrame({"row": np.array(rows, dtype=int), "cooperator_id": np.array(ids, dtype=object)})


def evacuation_gaps(
    register: gpd.GeoDataFrame,
    cooperators: gpd.GeoDataFrame,
    shelters: gpd.GeoDataFrame,
    emergency_sites: gpd.GeoDataFrame,
    *,
    vocab: Vocabulary,
    params: AnalysisParams | None = None,
    network: WalkNetwork | None = None,
    at_risk_kinds: tuple[str, ...] = GAP_KINDS,
) -> gpd.GeoDataFrame:
    """The gaps of every support-needer (personal data: filter before listing).

    Parameters
    ----------
    register
        Support-needers with ``consent``, ``plan_status``, ``supporter_ids`` (optionally
        ``person_id``, ``district_code``, ``key_code`` and the :func:`needs_care` columns) and
        point geometry (may be null or empty).
    cooperators
        Cooperators with ``cooperator_id``, ``capacity`` and point geometry.
    shelters
        Designated shelters (指定避難所) with a boolean ``welfare``.
    emergency_sites
        Emergency sites with ``hazard_<name>`` flags.
    vocab
        The caller's vocabularies (:class:`gis.vocab.Vocabulary`): which ``consent`` values are
        known and shareable (an unknown value is an input error), the mobility values that need
        care and the list separator of ``supporter_ids``.
    params
        Distances, the hazard, winter.
    network
        Optional walking network.
    at_risk_kinds
        Gap kinds that make a person "at risk" (default: all of :data:`GAP_KINDS`).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed like ``register``: ``person_id``, ``district_code``, ``key_code`` (when present),
        ``needs_care``, ``supporters`` (valid assigned supporters), ``supporter_m`` (walking
        distance to the nearest of them), ``shelter_m`` (to the nearest suitable shelter or site),
        one boolean per :data:`GAP_KINDS`, ``gaps`` (how many) and ``at_risk``; the person's point.
    """
    params = params or AnalysisParams()
    _check(register, cooperators, shelters, emergency_sites, params, at_risk_kinds, vocab)
    n = len(register)
    _, located = point_xy(register.geometry)
    care = needs_care(register, vocab=vocab).to_numpy()

    # supporters: valid assigned ids, their distance and load
    load = supporter_load(register, cooperators, vocab=vocab)
    pairs = assigned_supporters(register, vocab=vocab)
    pairs = pairs[pairs["cooperator_id"].isin(load.index)].drop_duplicates()
    coop_pos = pd.Series(np.arange(len(cooperators)),
                         index=cooperators["cooperator_id"].astype(str).to_numpy())
    coop_pos = coop_pos[~coop_pos.index.duplicated()]
    supporters = np.bincount(pairs["row"].to_numpy(), minlength=n)
    pair_m = paired_walking(register.geometry.values[pairs["row"].to_numpy()],
                            cooperators.geometry.values[coop_pos[pairs["cooperator_id"]].to_numpy()],
                            detour_factor=params.detour_factor, network=network)
    pairs = pairs.assign(distance_m=pair_m,
                         far=pair_m > params.supporter_max_m + 1e-6,
                         over=load["overloaded"].reindex(pairs["cooperator_id"]).to_numpy())
    by_row = pairs.groupby("row")
    supporter_m = by_row["distance_m"].min().reindex(range(n)).to_numpy()
    all_far = by_row["far"].all().reindex(range(n), fill_value=False).to_numpy(dtype=bool)
    all_over = by_row["over"].all().reindex(range(n), fill_value=False).to_numpy(dtype=bool)

    # shelters: a welfare shelter for those who need care, an emergency site for the hazard
    shelter_m = np.full(n, np.nan)
    welfare = shelters[shelters["welfare"].fillna(False).astype(bool).to_numpy()]
    flag = emergency_sites[f"hazard_{params.hazard}"].fillna(False).astype(bool).to_numpy()
    sites = emergency_sites[flag]
    reach = np.where(care, params.welfare_m, params.site_walk_m)
    for group, targets in ((care, welfare), (~care, sites)):
        rows = np.flatnonzero(group)
        if len(rows):
            near = nearest_walking(register.geometry.values[rows], targets.geometry,
                                   detour_factor=params.detour_factor, network=network)
            shelter_m[rows] = near["distance_m"].to_numpy()

    consent = np.array([vocab.shareable(c) for c in register["consent"]], dtype=bool)
    gaps = {
        "no_consent": ~consent,
        "no_location": ~located,
        "no_supporter": supporters == 0,
        "supporter_far": located & (supporters > 0) & all_far,
        "supporter_overloaded": (supporters > 0) & all_over,
        "no_plan": (register["plan_status"].astype(object).to_numpy() != "done"),
        "no_shelter": located & (shelter_m > reach + 1e-6),
    }
    out = pd.DataFrame(index=register.index)
    for col in ("person_id", "district_code", "key_code"):
        if col in register.columns:
            out[col] = register[col].to_numpy()
    out["needs_care"] = care
    out["supporters"] = supporters
    out["supporter_m"] = supporter_m
    out["shelter_m"] = shelter_m
    for kind in GAP_KINDS:
        out[kind] = np.asarray(gaps[kind], dtype=bool)
    out["gaps"] = out[list(GAP_KINDS)].sum(axis=1).astype(int)
    out["at_risk"] = out[list(at_risk_kinds)].any(axis=1) if at_risk_kinds else False
    return gpd.GeoDataFrame(out, geometry=register.geometry.values, crs=register.crs)


def gaps_by_district(
    gaps: pd.DataFrame,
    *,
    districts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per district: support-needers, the count and rate of each gap kind, and the at-risk count.

    Parameters
    ----------
    gaps
        Output of :func:`evacuation_gaps`. Rows without a ``district_code`` are left out.
    districts
        Optional districts (``district_code``): every district gets a row, also one with no
        support-needers (counts 0, rates NaN).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``district_code``: ``persons``; for each kind and ``at_risk`` the count (same
        name) and ``rate_<kind>`` (count ÷ persons; NaN when there is nobody). No personal rows.
    """
    kinds = [k for k in (*GAP_KINDS, "at_risk") if k in gaps.columns]
    frame = gaps[["district_code", *kinds]].dropna(subset=["district_code"])
    grouped = frame.groupby("district_code", sort=True)
    counts = grouped[kinds].sum().astype(int)
    counts.insert(0, "persons", grouped.size().astype(int))
    if districts is not None:
        codes = pd.Index(pd.unique(districts["district_code"]), name="district_code")
        counts = counts.reindex(codes.union(counts.index, sort=True)).fillna(0).astype(int)
    persons = counts["persons"].where(counts["persons"] > 0)
    for kind in kinds:
        counts[f"rate_{kind}"] = (counts[kind] / persons).astype(float)
    counts.index.name = "district_code"
    return counts


# --- private steps ------------------------------------------------------------------------------

def _care_level(value) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return np.nan
    match = _CARE_LEVEL.search(unicodedata.normalize("NFKC", str(value)))
    return float(match.group(1)) if match else np.nan


def _check(register, cooperators, shelters, emergency_sites, params, at_risk_kinds, vocab) -> None:
    """Collect every problem with the inputs and raise one error listing them all."""
    needed = {
        "register": (register, ("consent", "plan_status", "supporter_ids")),
        "cooperators": (cooperators, ("cooperator_id", "capacity")),
        "shelters": (shelters, ("welfare",)),
        "emergency_sites": (emergency_sites, (f"hazard_{params.hazard}",)),
    }
    problems = frame_problems(needed, kind=gpd.GeoDataFrame)
    problems += crs_problems(("register", register), **{name: frame for name, (frame, _) in needed.items()})
    if "consent" in register.columns:
        known = vocab.consent_shareable
        bad = sorted({str(v) for v in register["consent"] if v not in known})
        if bad:
            problems.append(f"unknown consent values {bad}; expected one of {sorted(known)}")
    unknown_kinds = [k for k in at_risk_kinds if k not in GAP_KINDS]
    if unknown_kinds:
        problems.append(f"at_risk_kinds should be among {GAP_KINDS}, got {unknown_kinds}")
    if problems:
        raise ValueError("cannot compute evacuation gaps: " + "; ".join(problems))
