"""Supporter suggestions (避難支援者の候補): nearby willing cooperators for people who have none.

For every support-needer with a location and no assigned supporter, suggest a cooperator who
offers evacuation help (``help_kinds`` contains the caller's
:attr:`gis.vocab.Vocabulary.evacuation_help`), has spare capacity
(``capacity`` minus the people already assigned to them; a null capacity is unknown and gets no
suggestions) and lives within ``params.suggest_m`` walking distance. A cooperator in another
district is as good as one in the person's own: only the distance matters.

The suggestions are one assignment for all at once, by the matching engine of
:mod:`gis.matching` (the same that matches help requests with 地域福祉サポーター): it first
suggests a supporter to *as many people as possible*, then, among all such assignments,
minimises the total walking distance. Suggesting each person's nearest free cooperator one by
one can leave people without a suggestion whom the assignment serves, and can make the total
longer.

When a person gets no suggestion, :func:`unsuggested` says why, in the engine's terms
(:data:`gis.matching.REASONS`): no location, nobody offers evacuation help (``no_kind``), nobody
willing lives within reach (``too_far``), or everyone near enough is at capacity
(``at_capacity``: full already, or given to other people by the assignment).

These are suggestions only: nothing is assigned until a coordinator has asked both people.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.gaps import assigned_supporters, supporter_load
from gis.matching import MatchParams, MatchResult, match
from gis.network import WalkNetwork
from gis.params import AnalysisParams
from gis.vocab import Vocabulary


def suggest_supporters(
    register: gpd.GeoDataFrame,
    cooperators: gpd.GeoDataFrame,
    *,
    vocab: Vocabulary,
    params: AnalysisParams | None = None,
    network: WalkNetwork | None = None,
    only_shareable: bool = False,
) -> pd.DataFrame:
    """Suggest supporters for support-needers without one (capacity-aware, least total distance).

    Parameters
    ----------
    register
        Support-needers (``person_id``, ``supporter_ids``, ``consent``, point geometry).
    cooperators
        Cooperators (``cooperator_id``, ``help_kinds``, ``capacity``, point geometry).
    vocab
        The caller's vocabularies (:class:`gis.vocab.Vocabulary`): the list separator of
        ``supporter_ids`` and ``help_kinds``, the ``help_kinds`` value of evacuation help and,
        with ``only_shareable``, which ``consent`` values are shareable (an unknown value is an
        error).
    params
        ``suggest_m`` (maximum distance) and the detour factor.
    network
        Optional walking network.
    only_shareable
        Only people whose register entry may be shared with district supporters (their
        ``consent`` is shareable in ``vocab.consent_shareable``); by default everyone without a
        supporter.

    Returns
    -------
    pandas.DataFrame
        One row per suggestion: ``person_id``, ``district_code`` (the person's),
        ``cooperator_id``, ``cooperator_district_code`` and ``distance_m``; sorted by district and
        person. People with no suggestion are absent (:func:`unsuggested` says why).
    """
    result = _match(register, cooperators, vocab=vocab, params=params, network=network,
                    only_shareable=only_shareable)
    found = result.assignments
    p_rows = found["request_id"].astype(int).to_numpy()
    c_rows = found["supporter_id"].astype(int).to_numpy()
    out = pd.DataFrame({
        "person_id": register["person_id"].to_numpy()[p_rows],
        "district_code": _column(register, "district_code")[p_rows],
        "cooperator_id": cooperators["cooperator_id"].to_numpy()[c_rows],
        "cooperator_district_code": _column(cooperators, "district_code")[c_rows],
        "distance_m": found["distance_m"].to_numpy(dtype=float),
    })
    return out.sort_values(["district_code", "person_id"], na_position="last").reset_index(drop=True)


def unsuggested(
    register: gpd.GeoDataFrame,
    cooperators: gpd.GeoDataFrame,
    *,
    vocab: Vocabulary,
    params: AnalysisParams | None = None,
    network: WalkNetwork | None = None,
    only_shareable: bool = False,
) -> pd.DataFrame:
    """Why the people without a supporter who get no suggestion get none (same arguments and the
    same assignment as :func:`suggest_supporters`).

    Returns
    -------
    pandas.DataFrame
        One row per such person: ``person_id``, ``district_code``, ``reason``
        (:data:`gis.matching.REASONS`: ``no_location``, ``no_kind``, ``too_far``, ``at_capacity``),
        ``near`` (willing cooperators within reach), ``nearest_m`` (the nearest willing one within
        three times the reach; NaN if none) and ``taken`` (near ones with spare capacity that
        the assignment gave to other people); sorted by district and person.
    """
    result = _match(register, cooperators, vocab=vocab, params=params, network=network,
                       only_shareable=only_shareable)
    why = result.unmet
    rows = why["request_id"].astype(int).to_numpy()
    out = pd.DataFrame({
        "person_id": register["person_id"].to_numpy()[rows],
        "district_code": _column(register, "district_code")[rows],
        "reason": why["reason"].to_numpy(),
        "near": why["near"].to_numpy(dtype=int),
        "nearest_m": why["nearest_m"].to_numpy(dtype=float),
        "taken": why["taken"].to_numpy(dtype=int),
    })
    return out.sort_values(["district_code", "person_id"], na_position="last").reset_index(drop=True)


def _match(register, cooperators, *, vocab: Vocabulary, params: AnalysisParams | None,
           network: WalkNetwork | None, only_shareable: bool) -> MatchResult:
    """The engine's answer for the people without a supporter; requests and supporters are
    identified by their positions in ``register`` and ``cooperators`` (as text)."""
    params = params or AnalysisParams()
    missing = [c for c in ("person_id", "supporter_ids") if c not in register.columns]
    missing += [c for c in ("cooperator_id", "help_kinds", "capacity") if c not in cooperators.columns]
    if missing:
        raise ValueError(f"register / cooperators lack the columns {missing}")
    if cooperators.crs != register.crs:
        raise ValueError(f"'cooperators' should be in the CRS of the register ({register.crs}), "
                         f"got {cooperators.crs}")
    people = _without_supporter(register, cooperators, vocab=vocab, only_shareable=only_shareable)
    load = supporter_load(register, cooperators, vocab=vocab)
    requests = gpd.GeoDataFrame({"request_id": people.astype(str), "kind": vocab.evacuation_help},
                                geometry=register.geometry.values[people], crs=register.crs)
    supporters = gpd.GeoDataFrame({
        "supporter_id": np.arange(len(cooperators)).astype(str),
        "kinds": [frozenset(vocab.split(k)) for k in cooperators["help_kinds"]],
        "capacity": load["capacity"].astype("Float64").to_numpy(dtype=float, na_value=np.nan),
        "load": load["load"].to_numpy(dtype=int),
        "reach_m": params.suggest_m,
    }, geometry=cooperators.geometry.values, crs=cooperators.crs)
    # pairs are searched up to three reaches away, so a "too far" says how far the nearest is
    engine = MatchParams(detour_factor=params.detour_factor, max_m=3 * params.suggest_m, min_overlap_min=0,
                         continuity_m=0.0)
    return match(requests, supporters, params=engine, network=network)


def _without_supporter(register, cooperators, *, vocab: Vocabulary,
                       only_shareable: bool) -> np.ndarray:
    """Positions of people with no valid assigned supporter (located or not)."""
    pairs = assigned_supporters(register, vocab=vocab)
    known = set(cooperators["cooperator_id"].astype(str))
    has = np.zeros(len(register), dtype=bool)
    has[pairs.loc[pairs["cooperator_id"].isin(known), "row"].to_numpy()] = True
    keep = ~has
    if only_shareable:
        keep &= _shareable(register, vocab)
    return np.flatnonzero(keep)


def _shareable(register, vocab: Vocabulary) -> np.ndarray:
    """Whether each entry may be shared; every unknown ``consent`` value is listed in one error."""
    if "consent" not in register.columns:
        raise ValueError("register should have the column 'consent' to keep only shareable entries")
    known = vocab.consent_shareable
    unknown = sorted({str(c) for c in register["consent"] if c not in known})
    if unknown:
        raise ValueError(f"unknown consent values {unknown}; expected one of {sorted(known)}")
    return np.array([vocab.shareable(c) for c in register["consent"]], dtype=bool)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name in frame.columns:
        return frame[name].to_numpy(dtype=object)
    return np.full(len(frame), None, dtype=object)

