"""Years: the karte's history per fiscal year, activity indicators and targets, plan progress
and evaluation (年度の記録・活動指標・計画の進捗).

The record layers of this topic (:class:`karte.domain.layers.LayerSpec`), added to the one
registry by :mod:`karte.domain.layers`, and the topic's own vocabularies.
"""

from __future__ import annotations

from karte.domain.layers import Column, LayerSpec  # noqa: F401 (the topic's layers use them)

#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = ()
