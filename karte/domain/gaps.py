"""The evacuation-support gap kinds (避難支援の空白): one registry for the analysis' output, the
web map, the karte JSON and every sheet.

:func:`gis.gaps.evacuation_gaps` emits one boolean column per kind it is given
(:data:`ANALYSED`); everything that shows a gap takes its label, colour, map marker shape and
order from here. Adding a kind means: compute it in :mod:`gis.gaps`, add one :class:`GapKind`
below. A test fails when the analysis emits a kind this registry does not know
(``tests/test_architecture.py``), and when a kind's shape is missing, unknown to the web map or
shared with another marker of the district map (``tests/test_map_palette.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GapKind:
    """One missing link of a support-needer's evacuation chain.

    ``label`` may hold ``{supporter_m}`` (the walking limit to a supporter, metres); ``short``
    is the label without figures (map legends and tooltips); ``priority`` decides a person's
    colour on the map (the first kind they have, lowest first); ``colour`` is the map colour of
    a person whose first gap this is, and ``shape`` their marker's shape (WCAG 1.4.1: told apart
    without colour): one of the names of :data:`karte.render.webmap.SHAPES`, none shared with
    another gap kind or point layer of the district map; empty for a kind that is never drawn as
    a marker (:data:`AT_RISK`).
    """

    key: str
    label: str
    colour: str
    priority: int
    shape: str
    short: str = ""

    @property
    def short_label(self) -> str:
        return self.short or self.label

    def text(self, *, supporter_m: float | None = None) -> str:
        """The label with the walking limit filled in."""
        return self.label.format(supporter_m=supporter_m) if "{" in self.label else self.label


#: Every gap kind, in the order tables and sheets print them.
GAP_KINDS: tuple[GapKind, ...] = (
    GapKind("no_consent", "名簿提供の同意がない", "#616161", 0, shape="x"),
    GapKind("no_supporter", "支援者が決まっていない", "#d32f2f", 1, shape="triangle"),
    GapKind("supporter_far", "支援者が遠い（徒歩{supporter_m:.0f}m超）", "#ef6c00", 2,
            shape="triangle_down", short="支援者が遠い"),
    GapKind("supporter_overloaded", "支援者の受け持ちが定員超過", "#f9a825", 3, shape="diamond"),
    GapKind("no_plan", "個別避難計画が未作成・作成中", "#ad1457", 5, shape="bar"),
    GapKind("no_shelter", "避難先が遠い", "#6d4c41", 4, shape="hexagon"),
    GapKind("no_location", "所在地が不明", "#455a64", 6, shape="hourglass"),
)

#: The key of each kind, in print order: what :func:`gis.gaps.evacuation_gaps` is asked for.
ANALYSED: tuple[str, ...] = tuple(k.key for k in GAP_KINDS)
BY_KEY: dict[str, GapKind] = {k.key: k for k in GAP_KINDS}

#: The summary row: a person with at least one gap (a table row, never a map marker: no shape).
AT_RISK = GapKind("at_risk", "いずれかの空白がある", "#b71c1c", 99, shape="")
#: A person with no gap at all (map colour, marker shape and label).
NO_GAP = GapKind("none", "空白なし", "#2e7d32", 100, shape="circle")


_BY_PRIORITY: tuple[GapKind, ...] = tuple(sorted(GAP_KINDS, key=lambda k: k.priority))


def by_priority() -> tuple[GapKind, ...]:
    """The kinds in the order that decides a person's map colour."""
    return _BY_PRIORITY


def primary_gap(flags) -> GapKind:
    """The kind that colours a person: the first of :func:`by_priority` whose flag is true in
    ``flags`` (a mapping or row of booleans by key), else :data:`NO_GAP`."""
    for kind in by_priority():
        value = flags.get(kind.key) if hasattr(flags, "get") else None
        if is_set(value):
            return kind
    return NO_GAP


def is_set(value) -> bool:
    """Is this gap flag set? ``True``, a non-zero number, or the text ``true``/``True``/``1`` (a
    flag read back from a file); None, NaN, pandas' NA and any other text are not. The one rule
    for every view of a person's gaps (map colour, popup, table)."""
    if value is None or isinstance(value, str):
        return value in ("true", "True", "1")
    try:
        return bool(value) and value == value  # NaN is not a gap
    except (TypeError, ValueError):
        return False
