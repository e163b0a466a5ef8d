"""``karte import`` of the indicator values and the plan table (issue 12): the record kinds of this topic.

Each kind is a :class:`karte.importing.records.RecordKind` registered with
:func:`karte.importing.records.register` when this module is imported.
"""

from __future__ import annotations
