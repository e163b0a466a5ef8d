"""``karte import`` of the concerns and safety-net meetings (issue 13): the record kinds of this topic.

Each kind is a :class:`karte.importing.records.RecordKind` registered with
:func:`karte.importing.records.register` when this module is imported.
"""

from __future__ import annotations
