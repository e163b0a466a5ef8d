"""Every copy of the register accounted for: the hand-out ledger of printed and exported copies.

The record layers of this topic (:class:`karte.domain.layers.LayerSpec`), added to the one
registry by :mod:`karte.domain.layers`, and the topic's own vocabularies.
"""

from __future__ import annotations

from karte.domain.layers import Column, LayerSpec  # noqa: F401 (the topic's layers use them)

#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = ()
