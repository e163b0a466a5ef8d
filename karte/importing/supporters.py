"""``karte import`` of the supporters and help requests (issue 14): the record kinds of this topic.

Each kind is a :class:`karte.importing.records.RecordKind` registered with
:func:`karte.importing.records.register` when this module is imported.
"""

from __future__ import annotations
