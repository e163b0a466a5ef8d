"""Import kinds of the record layers (``karte import concerns FILE``…), one registry.

The built layers (register, cooperators, services, shelters, statistics, districts) are read by
:mod:`karte.importing.api`. A topic's records (meetings, supporters, the plan table…) come with
their own reader: the topic module registers a :class:`RecordKind` here with :func:`register`
when it is imported (:mod:`karte.importing` imports every topic), and ``karte import`` and
:func:`karte.importing.api.prepare_import` find it by name. The same rules hold as for every
import: every problem with file, row and column; nothing written when anything is wrong; the
changes shown before they are written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the readers build these; this module only keeps the registry
    from karte.domain.access import Access
    from karte.importing.api import PreparedImport
    from karte.store.base import Store


@dataclass(frozen=True)
class RecordKind:
    """One ``karte import KIND``.

    ``prepare(store, path, access, options)`` reads and validates the file and returns a
    :class:`~karte.importing.api.PreparedImport` (its report lists every problem, or the
    changes); ``options`` holds ``sheet``, ``encoding`` and ``today``. ``apply(store, prepared)``
    writes it (default: the whole layers of ``prepared.layers`` in one atomic write, as
    :func:`~karte.importing.api.apply_import` does for the built layers).
    """

    kind: str
    title_ja: str
    prepare: Callable[[Store, Path, Access, dict], PreparedImport]
    apply: Callable[[Store, PreparedImport], object] | None = None
    aliases: tuple[str, ...] = field(default=())


RECORD_KINDS: dict[str, RecordKind] = {}


def register(kind: RecordKind) -> RecordKind:
    """Add a record import kind (each name and alias once)."""
    for name in (kind.kind, *kind.aliases):
        if name in RECORD_KINDS or name in _ALIASES:
            raise ValueError(f"import kind {name} is registered twice")
    RECORD_KINDS[kind.kind] = kind
    for alias in kind.aliases:
        _ALIASES[alias] = kind.kind
    return kind


def find(name: str) -> RecordKind | None:
    """The record kind called ``name`` (or one of its aliases), else None."""
    key = str(name).strip().lower()
    return RECORD_KINDS.get(_ALIASES.get(key, key))


_ALIASES: dict[str, str] = {}
