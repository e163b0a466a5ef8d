"""The vocabularies an analysis needs, passed in by the caller (``gis`` defines no domain words).

The analyses read a few coded columns (consent, salon frequency, mobility, lists of ids). What
those codes mean belongs to the application's data model; it hands its meaning in as one
:class:`Vocabulary`, so ``gis`` stays free of any application import and any data model can use
it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Vocabulary:
    """What the coded values of the input frames mean.

    Attributes
    ----------
    consent_shareable
        Every known ``consent`` value -> whether the register entry may be shared with district
        supporters in normal times (a value not listed is an input error).
    frequency_per_month
        Every known salon ``frequency`` word -> sessions per month.
    care_mobility
        ``mobility`` values of people who need care (and so a welfare shelter).
    list_separator
        The separator of id lists in text columns (``supporter_ids``, ``help_kinds``).
    evacuation_help
        The ``help_kinds`` value of a cooperator willing to help evacuate.
    """

    consent_shareable: Mapping[str, bool]
    frequency_per_month: Mapping[str, float]
    care_mobility: frozenset[str] = field(default_factory=frozenset)
    list_separator: str = ";"
    evacuation_help: str = "evacuation"

    def shareable(self, consent) -> bool:
        """Whether ``consent`` may be shared (unknown values: False)."""
        return bool(self.consent_shareable.get(consent, False))

    def split(self, value) -> list[str]:
        """An id list as written in a text column -> its ids (empty, None or NaN -> [])."""
        if value is None or value != value or value == "":
            return []
        return [v.strip() for v in str(value).split(self.list_separator) if v.strip()]
