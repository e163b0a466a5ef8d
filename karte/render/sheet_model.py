"""What a printed district sheet is handed: plain data, already what the reader may see.

:mod:`karte.services.sheets` fills these from the build snapshot and the viewer's own reads of
the store (suppressed for the public edition); :mod:`karte.render.sheets` draws them. Nothing here
reads a store or knows an access rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from karte.domain.schema import Edition
from karte.render.sheet_map import MapData


@dataclass(frozen=True)
class SheetOptions:
    """How a sheet is printed: edition, paper, who printed it when, and the suppression threshold
    the public edition was prepared with (printed in its note)."""

    edition: Edition = Edition.PUBLIC
    paper: str = "A4"
    user: str = "anonymous"
    printed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    max_small: int = 2
    #: A numbered copy (the hand-out ledger, :mod:`karte.services.copies`): its number, printed
    #: as text and as a QR code on every page, the register version it lists and the date it is
    #: due back.
    copy_id: str | None = None
    register_version: str | None = None
    due_back: dt.date | None = None


@dataclass
class DistrictSheet:
    """Everything printed on one district's sheet.

    ``karte`` is the district's karte as the reader may see it (suppressed for the public
    edition); the ``*_rows`` are (label, count, rate, city rate) or (label, count) with counts as
    ints or the suppression mark; ``roster`` and ``register`` only in the personal editions.
    """

    karte: dict
    options: SheetOptions
    map: MapData
    salon_numbers: dict[str, int]
    shelter_labels: dict[str, str]
    gap_rows: list[tuple[str, object, float | None, float | None]]
    coverage_rows: list[tuple[str, object, float | None, float | None]]
    role_rows: list[tuple[str, object]]
    roster: list[dict] | None = None
    #: consented people in risk order (:mod:`gis.risk`), ``number`` 1.. as on the map
    register: list[dict] | None = None
    #: shelters the register sends people to that are not the district's own (lettered after
    #: the district's; ``in_map``: whether the map shows them)
    outside_shelters: list[dict] = field(default_factory=list)
    #: personal editions: the district's support-needers not listed because they have not
    #: consented (a count only)
    unlisted: int = 0
    #: cooperator_id -> (assigned people not listed for want of consent, listed in another
    #: district's sheet): counts only, so 担当 7 with 5 listed is explained
    unlisted_by_supporter: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.karte["district"]["code"]

    @property
    def name(self) -> str:
        return self.karte["district"]["name"]


@dataclass(frozen=True)
class TocEntry:
    """One district in the merged batch's table of contents."""

    code: str
    name: str
    population: object
    pages: int
    #: the district's copy number in a personal edition (its pages, and its blank back, carry it)
    copy_id: str | None = None
    register_version: str | None = None
