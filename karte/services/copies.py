"""Every copy of the register accounted for: the hand-out ledger (issue 20).

:func:`record_export` is called for every personal export (a CSV download of the register or
the roster, a confidential or drill sheet) and returns the copy's number, printed on the copy
(``SheetOptions.copy_id``) or put in its file name; until the ledger exists it records nothing
and returns None.
"""

from __future__ import annotations

from karte.domain.access import Access
from karte.store.base import Store


def record_export(store: Store, access: Access, *, kind: str, district: str | None, layer: str,
                  rows: int) -> str | None:
    """Record one copy of personal rows leaving karte (``kind``: ``csv``, ``sheet``…) and return
    its copy number, or None when no ledger is kept."""
    return None
