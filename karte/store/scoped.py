"""One municipality of a store that holds several (the prefecture demo, a prefecture council).

District codes are unique within a municipality only (``S01`` in each), so everything that
reads a store by district code (the build snapshot, pages, sheets, OGC) reads it through a
:class:`MunicipalityView`: the same store, every read limited to one municipality's rows. The
web app hands each request the view of the municipality in view (:func:`api.deps.get_store`);
the snapshot cache keeps one snapshot per municipality (:func:`karte.snapshot.current`).

A view only narrows reads. Row writes pass through unchanged (the store stamps a row without
``municipality_code`` with the acting user's, and row-level security refuses another's); a
whole-layer write through a view is refused, since it would replace every municipality's rows
with one municipality's.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from karte.domain.access import Access
from karte.domain.errors import StoreError
from karte.store.base import Store


class MunicipalityView:
    """``store`` with every read limited to ``municipality`` (JIS code); anything else is the
    store's own (attributes and methods pass through)."""

    def __init__(self, store: Store, municipality: str):
        self._store = store
        self.municipality = municipality

    def read(self, layer: str, *, district: str | None = None, municipality: str | None = None,
             access: Access | None = None) -> pd.DataFrame:
        return self._store.read(layer, district=district, municipality=municipality or self.municipality,
                                access=access)

    def read_records(self, layer: str, *, district: str | None = None, municipality: str | None = None,
                     access: Access | None = None, match: Mapping[str, object] | None = None) -> list[dict]:
        return self._store.read_records(layer, district=district,
                                        municipality=municipality or self.municipality, access=access,
                                        match=match)

    def write(self, layers: Mapping[str, pd.DataFrame], *, access: Access | None = None) -> None:
        raise StoreError(f"{self._store.location} の市町村 {self.municipality} だけを見ている状態では、"
                         "レイヤ全体を書き換えられません")

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"MunicipalityView({self._store!r}, {self.municipality!r})"


def scoped(store: Store, municipality: str | None) -> Store:
    """``store`` limited to ``municipality`` (None: the store itself, every row)."""
    if municipality is None:
        return store
    if isinstance(store, MunicipalityView):
        store = store._store
    return MunicipalityView(store, municipality)  # type: ignore[return-value]


def unscoped(store: Store) -> Store:
    """The store beneath a :class:`MunicipalityView` (``store`` itself otherwise): where a
    whole-layer write of what every municipality keeps side by side goes (the build snapshot's
    kept salon coverage, :mod:`karte.snapshot`)."""
    return store._store if isinstance(store, MunicipalityView) else store  # type: ignore[return-value]
