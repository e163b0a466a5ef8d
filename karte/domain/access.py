"""Who may see what: access levels and the rules on personal data, checked in one place.

Access levels (each is also a PostgreSQL role ``karte_<level>`` in the PostGIS store):

* ``city_staff`` (市職員): every row of their municipality, consented or not;
* ``coordinator`` (コーディネーター/CSW): every district of their municipality, consented
  (shareable) rows only, plus counts;
* ``district_member`` (地区社協): own district only, consented rows only;
* ``prefecture`` (県社協): every municipality's aggregates, no personal rows at all;
* ``public`` (一般): no personal rows at all; aggregates with small counts suppressed.

Every user but the prefecture level and the public belongs to one municipality (JIS code,
``02201`` for Aomori city) and sees personal rows of that municipality only; district codes are
unique within a municipality.

**Disaster mode** (災害対策基本法 第49条の11第3項: in a disaster the register may be given to the
supporters without consent, to protect life). ``Access.disaster`` holds the districts of the
user's municipality in an active disaster mode (:mod:`karte.services.disaster` sets it from the
``disaster_modes`` layer for every request). While a district member's own district is among
them, the consent rule is lifted for them in that district: they see its unconsented register
entries and evacuation plans too (PostGIS: the same in the register's and the plans' row-level
security, through ``karte.disaster_districts()``). Nothing else changes: no other district, no
other level, no write. Every read by a user with a non-empty ``disaster`` is logged with the mode:
the access log's ``route`` ends in :data:`DISASTER_ROUTE` (``web:district_page+disaster``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from karte.domain.layers import LAYERS, MUNICIPALITY, Layer, spec
from karte.domain.schema import DEFAULT_MUNICIPALITY, Consent

#: Consent answers under which a register row may be shared outside city staff.
SHAREABLE = frozenset(c.value for c in Consent if c.shareable)
#: Layers whose rows below city staff need a shareable ``consent``: the register, and every
#: personal record layer with a ``consent`` column of its own (the evacuation plans, shared on the
#: same consent rules: 第49条の15).
CONSENT_LAYERS = frozenset({str(Layer.REGISTER)} | {
    name for name, entry in LAYERS.items()
    if entry.personal and entry.records and "consent" in entry.column_names})
#: Appended to ``Access.route`` (and so to every access-log row) while the user's municipality
#: has a district in disaster mode.
DISASTER_ROUTE = "+disaster"

#: Counts from 1 up to this value are shown as suppressed to public users (default 2).
DEFAULT_SUPPRESS_MAX = 2
SUPPRESSED = "秘匿"


class Level(StrEnum):
    CITY_STAFF = "city_staff"
    COORDINATOR = "coordinator"
    DISTRICT_MEMBER = "district_member"
    PREFECTURE = "prefecture"
    PUBLIC = "public"


LEVEL_JA = {Level.CITY_STAFF: "市職員", Level.COORDINATOR: "コーディネーター",
            Level.DISTRICT_MEMBER: "地区社協", Level.PREFECTURE: "県社協", Level.PUBLIC: "一般"}

#: Levels that see no personal row at all (aggregates only).
AGGREGATES_ONLY = frozenset({Level.PUBLIC, Level.PREFECTURE})


@dataclass(frozen=True)
class Access:
    """The acting user: who, at which level, of which municipality, (district members) for which
    district, and the route the request came through (``cli:show``, ``web:karte``, ``export``…)
    for the access log.

    ``municipality`` is the JIS code of the user's municipality (default
    :data:`karte.domain.schema.DEFAULT_MUNICIPALITY`); None only for the prefecture level and the
    public, who see every municipality's aggregates and no personal row.
    """

    user: str
    level: Level
    district: str | None = None
    route: str = "store"
    municipality: str | None = DEFAULT_MUNICIPALITY
    #: Districts of the user's municipality in an active disaster mode (see the module docstring).
    disaster: frozenset[str] = frozenset()

    def __post_init__(self):
        if self.level in AGGREGATES_ONLY:  # every municipality's aggregates, none's rows
            object.__setattr__(self, "municipality", None)
            object.__setattr__(self, "disaster", frozenset())
        if self.level == Level.DISTRICT_MEMBER and not self.district:
            raise ValueError("a district member needs a district")
        if self.level not in AGGREGATES_ONLY and not self.municipality:
            raise ValueError(f"a {self.level.value} user belongs to a municipality")
        object.__setattr__(self, "disaster", frozenset(self.disaster))
        if self.disaster and DISASTER_ROUTE not in self.route:  # every read logged with the mode
            object.__setattr__(self, "route", f"{self.route}{DISASTER_ROUTE}")

    def in_disaster(self, district: str | None) -> bool:
        """Is ``district`` (of the user's municipality) in an active disaster mode?"""
        return district is not None and district in self.disaster

    @property
    def consent_lifted(self) -> bool:
        """Does disaster mode lift the consent rule for this user (a district member whose own
        district is in disaster mode)?"""
        return self.level == Level.DISTRICT_MEMBER and self.in_disaster(self.district)

    @property
    def sees_personal(self) -> bool:
        return self.level not in AGGREGATES_ONLY

    def may_see_district_rows(self, district: str, municipality: str | None = None) -> bool:
        """May this user see personal rows of ``district`` (of ``municipality``, default the
        user's own) at all?"""
        if not self.sees_personal:
            return False
        if municipality is not None and municipality != self.municipality:
            return False
        if self.level == Level.DISTRICT_MEMBER:
            return district == self.district
        return True

    def filter_register(self, register: pd.DataFrame) -> pd.DataFrame:
        """The register rows this user may see (empty for the public and the prefecture level)."""
        return self.filter_rows(Layer.REGISTER, register)

    def filter_rows(self, layer: str, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``layer`` this user may see; layers without personal data pass unchanged.

        The same rules as the PostGIS row-level security policies, for every personal layer of
        :data:`karte.domain.layers.LAYERS`: none for the public and the prefecture level; own
        municipality for everyone else; own district (the layer's ``district_column``) for
        district members; and on the layers of :data:`CONSENT_LAYERS` (the register, the
        evacuation plans), shareable consent only for everyone below city staff, except a
        district member whose district is in disaster mode (:attr:`consent_lifted`).
        """
        entry = spec(layer)
        if entry is None or not entry.personal:
            return rows
        if not self.sees_personal:
            return rows.iloc[0:0]
        keep = np.ones(len(rows), dtype=bool)
        if MUNICIPALITY in rows.columns:
            keep &= _column(rows, MUNICIPALITY) == self.municipality
        if self.level == Level.DISTRICT_MEMBER and entry.district_column:
            keep &= _column(rows, entry.district_column) == self.district
        if self._consent_applies(layer):
            consent = _column(rows, "consent") if "consent" in rows.columns else np.full(len(rows), None)
            keep &= np.fromiter((c in SHAREABLE for c in consent), dtype=bool, count=len(consent))
        return rows if keep.all() else rows[keep]

    def visible(self, layer: str, rows: list[dict]) -> list[dict]:
        """:meth:`filter_rows` for rows as dicts (what a page renders): the rules worked out once
        for the layer, then one comparison per row (what :meth:`may_see_row` asks of one row)."""
        entry = spec(layer)
        if entry is None or not entry.personal:
            return rows
        if not self.sees_personal:
            return []
        district = entry.district_column if self.level == Level.DISTRICT_MEMBER else None
        consent = self._consent_applies(layer)
        municipality = self.municipality
        return [r for r in rows
                if (MUNICIPALITY not in r or r[MUNICIPALITY] == municipality)
                and (district is None or r.get(district) == self.district)
                and not (consent and r.get("consent") not in SHAREABLE)]

    def may_see_row(self, layer: str, row) -> bool:
        """:meth:`filter_rows` for one row (a mapping of column to value)."""
        return bool(self.visible(layer, [row]))

    def _consent_applies(self, layer: str) -> bool:
        """Must rows of ``layer`` be shareable for this user (see :meth:`filter_rows`)?"""
        return str(layer) in CONSENT_LAYERS and self.level != Level.CITY_STAFF and not self.consent_lifted

    def may_write(self, layer: str, district: str | None, municipality: str | None = None, *,
                  update: bool = False) -> bool:
        """May this user add or delete (``update``: change) a row of ``layer`` for ``district``
        (of ``municipality``, default the user's own)? Its level must be one of the layer's
        ``writers`` (``updaters``), the row in the user's municipality; a district member writes
        only in their own district."""
        entry = spec(layer)
        allowed = entry.updaters if update and entry is not None and entry.updaters is not None else (
            entry.writers if entry is not None else ())
        if self.level.value not in allowed:
            return False
        if municipality is not None and municipality != self.municipality:
            return False
        if self.level == Level.DISTRICT_MEMBER:
            return entry.district_column is not None and district == self.district
        return True


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as a numpy object array (comparing it is vectorised, unlike pandas' string arrays)."""
    return frame[name].to_numpy(dtype=object)


PUBLIC = Access(user="anonymous", level=Level.PUBLIC, municipality=None)
