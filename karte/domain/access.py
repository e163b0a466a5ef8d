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
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from karte.domain.layers import MUNICIPALITY, Layer, spec
from karte.domain.schema import DEFAULT_MUNICIPALITY, Consent

#: Consent answers under which a register row may be shared outside city staff.
SHAREABLE = frozenset(c.value for c in Consent if c.shareable)

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

    def __post_init__(self):
        if self.level in AGGREGATES_ONLY:  # every municipality's aggregates, none's rows
            object.__setattr__(self, "municipality", None)
        if self.level == Level.DISTRICT_MEMBER and not self.district:
            raise ValueError("a district member needs a district")
        if self.level not in AGGREGATES_ONLY and not self.municipality:
            raise ValueError(f"a {self.level.value} user belongs to a municipality")

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
        if not self.sees_personal:
            return register.iloc[0:0]
        keep = np.ones(len(register), dtype=bool)
        if MUNICIPALITY in register.columns:
            keep &= _column(register, MUNICIPALITY) == self.municipality
        if self.level == Level.DISTRICT_MEMBER:
            keep &= _column(register, "district_code") == self.district
        if self.level != Level.CITY_STAFF:
            consent = _column(register, "consent")
            keep &= np.fromiter((c in SHAREABLE for c in consent), dtype=bool, count=len(consent))
        return register if keep.all() else register[keep]

    def filter_rows(self, layer: str, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``layer`` this user may see; layers without personal data pass unchanged.

        The same rules as the PostGIS row-level security policies, for every personal layer of
        :data:`karte.domain.layers.LAYERS`: none for the public and the prefecture level; own
        municipality for everyone else; own district (the layer's ``district_column``) for
        district members; and on the register, shareable consent only for everyone below city
        staff (:meth:`filter_register`).
        """
        if str(layer) == Layer.REGISTER:
            return self.filter_register(rows)
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
        return rows if keep.all() else rows[keep]

    def may_see_row(self, layer: str, row) -> bool:
        """:meth:`filter_rows` for one row (a mapping of column to value)."""
        entry = spec(layer)
        if entry is None or not entry.personal:
            return True
        if not self.sees_personal:
            return False
        if MUNICIPALITY in row and row[MUNICIPALITY] != self.municipality:
            return False
        if self.level == Level.DISTRICT_MEMBER and entry.district_column \
                and row.get(entry.district_column) != self.district:
            return False
        return not (str(layer) == Layer.REGISTER and self.level != Level.CITY_STAFF
                    and row.get("consent") not in SHAREABLE)

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
