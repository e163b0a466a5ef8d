"""Security records: server-side web sessions and what the login throttle keeps (issue 16).

The record layers of this topic (:class:`karte.domain.layers.LayerSpec`), added to the one
registry by :mod:`karte.domain.layers`.
"""

from __future__ import annotations

from karte.domain.layers import Column, LayerSpec  # noqa: F401 (the topic's layers use them)

#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = ()
