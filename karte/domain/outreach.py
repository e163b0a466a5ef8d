"""Outreach visits (アウトリーチの訪問記録): a coordinator's visits to a ranked place.

The outreach page ranks small areas (町丁・字) for coordinator visits (:mod:`gis.outreach`); a
coordinator or city staff opens a place and records each visit made there: the date, what came
of it and the next step. One personal record layer, :data:`VISITS` (``outreach_visits``), a row
per visit, **no names**: the place (``key_code``, with its ``district_code``), the date, a result
code (:class:`VisitResult`), the next step as short text; who recorded it and when are the store's
row fields and the access log's (``recorded_by``/``recorded_at`` are kept on the row as well, as
the other record layers do).

Personal (protected, audited, never public) because a visit's next step is about the people of a
place; written and read by coordinators and city staff of the municipality only (migration 0012:
row-level security as the other record layers), as the outreach page is theirs alone.
"""

from __future__ import annotations

from enum import StrEnum

from karte.domain.layers import MUNICIPALITY, Column, LayerSpec

#: The layer of outreach visits.
VISITS = "outreach_visits"
#: Who records visits and reads them (the outreach page's levels).
WRITERS = ("city_staff", "coordinator")


class VisitResult(StrEnum):
    """What came of a visit (訪問の結果)."""

    MET = "met"                # 話を聞けた
    ABSENT = "absent"          # 不在だった
    DECLINED = "declined"      # 訪問を断られた
    CONNECTED = "connected"    # 支援・サービスにつないだ
    WATCHING = "watching"      # 見守りを続ける
    OTHER = "other"            # その他


VISIT_RESULT_JA = {
    VisitResult.MET: "話を聞けた",
    VisitResult.ABSENT: "不在だった",
    VisitResult.DECLINED: "訪問を断られた",
    VisitResult.CONNECTED: "支援・サービスにつないだ",
    VisitResult.WATCHING: "見守りを続ける",
    VisitResult.OTHER: "その他",
}

#: The columns of a visit, in order (key first).
VISIT_COLUMNS = (
    Column("visit_id"), Column(MUNICIPALITY), Column("district_code"), Column("key_code"),
    Column("visited_on"), Column("result"), Column("next_step"), Column("recorded_by"),
    Column("recorded_at"),
)

#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec(VISITS, "visit_id", "アウトリーチの訪問記録", personal=True, records=True, id_prefix="OV",
              writers=WRITERS, updaters=WRITERS, columns=VISIT_COLUMNS),
)
