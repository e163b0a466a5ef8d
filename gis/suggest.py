"""Supporter suggestions (避難支援者の候補): nearby willing cooperators for people who have none.

For every support-needer with a location and no assigned supporter, suggest a cooperator who
offers evacuation help (``help_kinds`` contains the caller's
:attr:`gis.vocab.Vocabulary.evacuation_help`), has spare capacity
(``capacity`` minus the people already assigned to them; a null capacity is unknown and gets no
suggestions) and lives within ``params.suggest_m`` walking distance. A cooperator in another
district is as good as one in the person's own: only the distance matters.

The suggestions are one assignment for all at once, solved as a minimum-cost flow
(:func:`networkx.max_flow_min_cost`): source → person (capacity 1) → cooperator (capacity 1,
cost = walking distance in decimetres) → sink (capacity = spare). It first suggests a supporter
to *as many people as possible*, then, among all such assignments, minimises the total walking
distance. Suggesting each person's nearest free cooperator one by one can leave people without a
suggestion whom the flow serves, and can make the total longer; a plain assignment
(``linear_sum_assignment`` on capacity-expanded columns) would need an artificial penalty to put
"most people served" first. The flow is solved separately for each connected group of people and
cooperators (they do not interact), which keeps it fast on a whole city.

These are suggestions only: nothing is assigned until a coordinator has asked both people.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from gis.distance import point_xy, walking_pairs
from gis.gaps import assigned_supporters, supporter_load
from gis.network import WalkNetwork
from gis.params import AnalysisParams
from gis.vocab import Vocabulary

#: Flow costs are integers: walking distance in units of 0.1 m.
_COST_PER_M = 10


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
        person. People with no suggestion are absent.
    """
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
    spare = load["spare"].fillna(0).to_numpy(dtype=int)
    helpers = np.flatnonzero(load["willing"].to_numpy(dtype=bool) & (spare > 0)
                             & point_xy(cooperators.geometry)[1])
    pairs = walking_pairs(register.geometry.values[people], cooperators.geometry.values[helpers],
                          max_m=params.suggest_m, detour_factor=params.detour_factor,
                          network=network)
    matches = _min_cost_assignment(pairs, spare[helpers], len(people), len(helpers))

    p_rows = people[matches["origin"].to_numpy(dtype=int)]
    c_rows = helpers[matches["destination"].to_numpy(dtype=int)]
    out = pd.DataFrame({
        "person_id": register["person_id"].to_numpy()[p_rows],
        "district_code": _column(register, "district_code")[p_rows],
        "cooperator_id": cooperators["cooperator_id"].to_numpy()[c_rows],
        "cooperator_district_code": _column(cooperators, "district_code")[c_rows],
        "distance_m": matches["distance_m"].to_numpy(dtype=float),
    })
    return out.sort_values(["district_code", "person_id"], na_position="last").reset_index(drop=True)


def _without_supporter(register, cooperators, *, vocab: Vocabulary,
                       only_shareable: bool) -> np.ndarray:
    """Positions of located people with no valid assigned supporter."""
    pairs = assigned_supporters(register, vocab=vocab)
    known = set(cooperators["cooperator_id"].astype(str))
    has = np.zeros(len(register), dtype=bool)
    has[pairs.loc[pairs["cooperator_id"].isin(known), "row"].to_numpy()] = True
    keep = ~has & point_xy(register.geometry)[1]
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


def _min_cost_assignment(pairs: pd.DataFrame, spare: np.ndarray, n_people: int,
                         n_helpers: int) -> pd.DataFrame:
    """Most people served, then least total distance; one connected group at a time."""
    empty = pairs.iloc[0:0][["origin", "destination", "distance_m"]]
    if pairs.empty:
        return empty
    o = pairs["origin"].to_numpy()
    d = pairs["destination"].to_numpy()
    bip = sparse.coo_matrix((np.ones(len(pairs)), (o, n_people + d)),
                            shape=(n_people + n_helpers,) * 2)
    _, label = connected_components(bip, directed=False)
    chosen = []
    for _, group in pairs.groupby(label[o], sort=True):
        if len(group) == 1:
            chosen.append(group)
            continue
        chosen.append(_solve_group(group, spare))
    return pd.concat(chosen, ignore_index=True) if chosen else empty


def _solve_group(group: pd.DataFrame, spare: np.ndarray) -> pd.DataFrame:
    graph = nx.DiGraph()
    for person in pd.unique(group["origin"]):
        graph.add_edge("source", ("p", int(person)), capacity=1, weight=0)
    for helper in pd.unique(group["destination"]):
        graph.add_edge(("c", int(helper)), "sink", capacity=int(spare[helper]), weight=0)
    for person, helper, dist in group[["origin", "destination", "distance_m"]].itertuples(index=False):
        graph.add_edge(("p", int(person)), ("c", int(helper)), capacity=1,
                       weight=round(float(dist) * _COST_PER_M))
    flow = nx.max_flow_min_cost(graph, "source", "sink")
    used = [flow[("p", int(p))][("c", int(h))] > 0
            for p, h in group[["origin", "destination"]].itertuples(index=False)]
    return group[np.asarray(used, dtype=bool)]
