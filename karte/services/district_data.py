"""What every view of one district takes from the build snapshot before anything else: the check
that the district exists and the karte's sources block as of now.

Apart from :mod:`karte.services.kartes` (which re-exports both) so that a printed sheet imports
neither the yearly trends (:mod:`karte.services.history`) nor, through them, the import pipeline:
0.2 s of a cold ``karte sheets S01``.
"""

from __future__ import annotations

from karte import history
from karte.domain.errors import NotFoundError
from karte.snapshot import Snapshot


def check_district(snap: Snapshot, code: str) -> None:
    """Raise :class:`NotFoundError` (naming a few known codes) unless ``code`` is a district."""
    if code not in snap.kartes:
        raise NotFoundError(f"地区 {code} はありません (例: {', '.join(snap.codes[:5])} …)")


def sources_now(snap: Snapshot, karte: dict) -> dict:
    """A karte's ``sources`` block as of now: the build's dates with the analysis line renewed for
    the parameters in force (a winter walk is shorter), and the census reconciliation the build
    stored (:mod:`karte.census.reconcile`)."""
    census_total = (karte.get("sources") or {}).get("census_total")
    return {**history.sources_block(snap.meta, params=snap.params), "census_total": census_total}
