"""Who may see what: access levels and the rules on personal data, checked in one place.

Access levels (each is also a PostgreSQL role ``karte_<level>`` in the PostGIS store):

* ``city_staff`` (市職員): every row, consented or not;
* ``coordinator`` (コーディネーター/CSW): every district, consented (shareable) rows only, plus counts;
* ``district_member`` (地区社協): own district only, consented rows only;
* ``public`` (一般): no personal rows at all; aggregates with small counts suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from karte.domain.layers import Layer, spec
from karte.domain.schema import Consent

#: Consent answers under which a register row may be shared outside city staff.
SHAREABLE = frozenset(c.value for c in Consent if c.shareable)

#: Counts from 1 up to this value are shown as suppressed to public users (default 2).
DEFAULT_SUPPRESS_MAX = 2
SUPPRESSED = "秘匿"


class Level(StrEnum):
    CITY_STAFF = "city_staff"
    COORDINATOR = "coordinator"
    DISTRICT_MEMBER = "district_member"
    PUBLIC = "public"


LEVEL_JA = {Level.CITY_STAFF: "市職員", Level.COORDINATOR: "コーディネーター",
            Level.DISTRICT_MEMBER: "地区社協", Level.PUBLIC: "一般"}


@dataclass(frozen=True)
class Access:
    """The acting user: who, at which level, (district members) for which district, and the
    route the request came through (``cli:show``, ``api:register``, ``export``…) for the access log."""

    user: str
    level: Level
    district: str | None = None
    route: str = "store"

    def __post_init__(self):
        if self.level == Level.DISTRICT_MEMBER and not self.district:
            raise ValueError("a district member needs a district")

    @property
    def sees_personal(self) -> bool:
        return self.level != Level.PUBLIC

    def may_see_district_rows(self, district: str) -> bool:
        """May this user see personal rows of ``district`` at all?"""
        if self.level == Level.PUBLIC:
            return False
        if self.level == Level.DISTRICT_MEMBER:
            return district == self.district
        return True

    def filter_register(self, register: pd.DataFrame) -> pd.DataFrame:
        """The register rows this user may see (empty for the public)."""
        if self.level == Level.PUBLIC:
            return register.iloc[0:0]
        keep = np.ones(len(register), dtype=bool)
        if self.level == Level.DISTRICT_MEMBER:
            keep &= _column(register, "district_code") == self.district
        if self.level != Level.CITY_STAFF:
            consent = _column(register, "consent")
            keep &= np.fromiter((c in SHAREABLE for c in consent), dtype=bool, count=len(consent))
        return register if keep.all() else register[keep]

    def filter_rows(self, layer: str, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``layer`` this user may see; layers without personal data pass unchanged.

        The same rules as the PostGIS row-level security policies, for every personal layer of
        :data:`karte.domain.layers.LAYERS`: none for the public; own district (the layer's
        ``district_column``) for district members; everything for coordinators and city staff;
        and on the register, shareable consent only for everyone below city staff
        (:meth:`filter_register`).
        """
        if str(layer) == Layer.REGISTER:
            return self.filter_register(rows)
        entry = spec(layer)
        if entry is None or not entry.personal:
            return rows
        if self.level == Level.PUBLIC:
            return rows.iloc[0:0]
        if self.level == Level.DISTRICT_MEMBER and entry.district_column:
            keep = _column(rows, entry.district_column) == self.district
            return rows if keep.all() else rows[keep]
        return rows

    def may_see_row(self, layer: str, row) -> bool:
        """:meth:`filter_rows` for one row (a mapping of column to value)."""
        if self.level == Level.PUBLIC:
            entry = spec(layer)
            return entry is None or not entry.personal
        entry = spec(layer)
        if entry is None or not entry.personal:
            return True
        if self.level == Level.DISTRICT_MEMBER and entry.district_column \
                and row.get(entry.district_column) != self.district:
            return False
        return not (str(layer) == Layer.REGISTER and self.level != Level.CITY_STAFF
                    and row.get("consent") not in SHAREABLE)

    def may_write(self, layer: str, district: str | None) -> bool:
        """May this user write a row of ``layer`` for ``district``? Its level must be one of the
        layer's ``writers``; a district member writes only in their own district."""
        entry = spec(layer)
        if entry is None or self.level.value not in entry.writers:
            return False
        if self.level == Level.DISTRICT_MEMBER:
            return entry.district_column is not None and district == self.district
        return True


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as a numpy object array (comparing it is vectorised, unlike pandas' string arrays)."""
    return frame[name].to_numpy(dtype=object)


PUBLIC = Access(user="anonymous", level=Level.PUBLIC)


def suppress(count: int | None, *, access: Access, max_small: int = DEFAULT_SUPPRESS_MAX):
    """A count as this user may see it: public users get ``"秘匿"`` for 1..max_small."""
    if count is None or access.level != Level.PUBLIC:
        return count
    return SUPPRESSED if 1 <= int(count) <= max_small else count
