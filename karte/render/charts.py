"""Small charts drawn on the server as inline SVG: an indicator's values against its target path,
and a district's trend beside the city's.

No chart library and nothing from a CDN (not even a namespace URL: an SVG inside HTML needs none):
a few lines and circles, with a text alternative
(``<title>`` and ``<desc>`` inside the SVG, referenced by ``aria-labelledby``) and the same numbers
in a table beside each chart on the page. The data comes prepared (and, for the public, already
suppressed: a value that is text, 秘匿, is left out of the drawing).
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence

#: Colours: actual values, the target path, the city beside a district.
VALUE = "#1f5fa8"
PATH = "#a05a00"
CITY = "#8c8c8c"
INK = "#1d2327"
GRID = "#e1e5e8"
_IDS = itertools.count(1)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _number(v) -> float | None:
    if v is None or isinstance(v, str | bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def format_value(value, unit: str) -> str:
    """``7159`` 人 -> ``7,159人``; ``34.87`` % -> ``34.9%``; text (秘匿) as it is; None -> ``—``."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if unit == "%":
        return f"{float(value):.1f}%"
    f = float(value)
    return (f"{round(f):,}" if abs(f - round(f)) < 1e-9 else f"{f:,.1f}") + unit


def indicator_chart(indicator: dict, *, width: int = 460, height: int = 200) -> str:
    """An indicator's values (solid line) against the straight path from its baseline through its
    targets (dashed), the targets as diamonds. ``indicator`` is
    :meth:`karte.indicators.Indicator.as_dict` (suppressed for the public)."""
    unit = indicator.get("unit", "")
    values = [(v["fiscal_year"], _number(v["value"])) for v in indicator.get("values", [])]
    values = [(y, v) for y, v in values if v is not None]
    targets = [(t["fiscal_year"], _number(t["value"])) for t in indicator.get("targets", [])]
    targets = [(y, v) for y, v in targets if v is not None]
    base_year, base = indicator.get("baseline_year"), _number(indicator.get("baseline"))
    path = ([(base_year, base)] if base is not None and base_year is not None else []) + sorted(targets)
    chart_id = f"chart{next(_IDS)}"
    title = f"{indicator.get('name', '')}（{unit}）"
    desc = describe_indicator(indicator)
    years = sorted({y for y, _ in values} | {y for y, _ in path})
    numbers = [v for _, v in values] + [v for _, v in path]
    if not years or not numbers:
        return _empty(chart_id, title, desc, width, height)
    left, right, top, bottom = 52, 12, 14, 30
    x0, x1 = min(years), max(years)
    lo, hi = min(numbers), max(numbers)
    lo = 0.0 if lo >= 0 and (unit == "%" or lo < hi * 0.5) else lo - (hi - lo) * 0.15
    hi = hi + (hi - lo) * 0.12 if hi > lo else hi + 1
    if unit == "%":
        hi = min(max(hi, 10.0), 100.0)

    def x(year):
        return left + (width - left - right) * ((year - x0) / (x1 - x0) if x1 > x0 else 0.5)

    def y(v):
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    out = [_head(chart_id, title, desc, width, height)]
    for tick in _ticks(lo, hi):
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11" fill="{INK}">'
            f"{_e(_tick_label(tick, unit))}</text>"
        )
    for year in years:
        out.append(
            f'<text x="{x(year):.1f}" y="{height - 10}" text-anchor="middle" font-size="11" fill="{INK}">'
            f"{_e(_year_label(year))}</text>"
        )
    if len(path) >= 2:
        points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in path)
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{PATH}" stroke-width="2" '
            'stroke-dasharray="6 4"/>'
        )
    for year, v in targets:
        cx, cy = x(year), y(v)
        out.append(
            f'<path d="M{cx:.1f},{cy - 7:.1f} L{cx + 7:.1f},{cy:.1f} L{cx:.1f},{cy + 7:.1f} '
            f'L{cx - 7:.1f},{cy:.1f} Z" fill="#fff" stroke="{PATH}" stroke-width="2"/>'
        )
    if len(values) >= 2:
        points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in values)
        out.append(f'<polyline points="{points}" fill="none" stroke="{VALUE}" stroke-width="2.5"/>')
    for year, v in values:
        out.append(f'<circle cx="{x(year):.1f}" cy="{y(v):.1f}" r="4" fill="{VALUE}"/>')
    out.append("</svg>")
    return "".join(out)


def describe_indicator(indicator: dict) -> str:
    """The chart in words (its text alternative)."""
    unit = indicator.get("unit", "")
    parts = []
    values = [v for v in indicator.get("values", []) if v.get("value") is not None]
    if values:
        parts.append(
            "実績: "
            + "、".join(f"{_year_label(v['fiscal_year'])} {format_value(v['value'], unit)}" for v in values)
        )
    if indicator.get("baseline") is not None:
        parts.append(
            f"基準 {_year_label(indicator['baseline_year'])} {format_value(indicator['baseline'], unit)}"
        )
    targets = indicator.get("targets", [])
    if targets:
        parts.append(
            "目標: "
            + "、".join(f"{_year_label(t['fiscal_year'])} {format_value(t['value'], unit)}" for t in targets)
        )
    latest = indicator.get("latest") or {}
    if latest.get("on_track") is not None:
        parts.append("目標への直線の経路に対して" + ("順調" if latest["on_track"] else "遅れ"))
    return "。".join(parts) + "。" if parts else "値がありません。"


def trend_chart(trend: dict, key: str, label: str, *, width: int = 300, height: int = 150) -> str:
    """One rate of a district's trend (solid) beside the city's (grey, dashed): ``trend`` is
    :func:`karte.services.history.trend`'s result."""
    years = trend.get("years", [])
    mine = [(y["fiscal_year"], _number(y["district"].get(key))) for y in years]
    city = [(y["fiscal_year"], _number(y["city"].get(key))) for y in years]
    chart_id = f"trend{next(_IDS)}"
    name = trend.get("name") or ""
    desc = (
        f"{name}: "
        + "、".join(f"{_year_label(a)} {format_value(_pct(b), '%')}" for a, b in mine if b is not None)
        + "。市全体: "
        + "、".join(f"{_year_label(a)} {format_value(_pct(b), '%')}" for a, b in city if b is not None)
        + "。"
    )
    known = [v for _, v in mine + city if v is not None]
    if not known or not years:
        return _empty(chart_id, label, "値がありません。", width, height)
    left, right, top, bottom = 40, 10, 10, 24
    x0, x1 = years[0]["fiscal_year"], years[-1]["fiscal_year"]
    lo, hi = 0.0, min(1.0, max(known) * 1.15 or 0.1)

    def x(year):
        return left + (width - left - right) * ((year - x0) / (x1 - x0) if x1 > x0 else 0.5)

    def y(v):
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    out = [_head(chart_id, label, desc, width, height)]
    for tick in _ticks(lo, hi, count=3):
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>'
        )
        out.append(
            f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10" fill="{INK}">'
            f"{tick * 100:.0f}%</text>"
        )
    for year in (x0, x1) if x1 > x0 else (x0,):
        out.append(
            f'<text x="{x(year):.1f}" y="{height - 8}" text-anchor="middle" font-size="10" fill="{INK}">'
            f"{_e(_year_label(year))}</text>"
        )
    for series, colour, dash in ((city, CITY, ' stroke-dasharray="4 3"'), (mine, VALUE, "")):
        points = [(a, b) for a, b in series if b is not None]
        if len(points) >= 2:
            line = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in points)
            out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for a, b in points:
            out.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{colour}"/>')
    out.append("</svg>")
    return "".join(out)


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def _head(chart_id: str, title: str, desc: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" style="max-width:{width}px" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d"><title id="{chart_id}-t">{_e(title)}</title>'
        f'<desc id="{chart_id}-d">{_e(desc)}</desc>'
    )


def _empty(chart_id: str, title: str, desc: str, width: int, height: int) -> str:
    return (
        _head(chart_id, title, desc, width, height)
        + f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" font-size="12" fill="{INK}">'
        "値がありません</text></svg>"
    )


def _ticks(lo: float, hi: float, *, count: int = 4) -> Sequence[float]:
    step = (hi - lo) / count
    if step <= 0:
        return [lo]
    magnitude = 10 ** len(str(int(step))) / 10 if step >= 1 else 0.01 if step < 0.1 else 0.1
    nice = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step)
    first = (lo // nice) * nice
    out, v = [], first
    while v <= hi + 1e-9:
        if v >= lo - 1e-9:
            out.append(round(v, 6))
        v += nice
    return out


def _tick_label(v: float, unit: str) -> str:
    if unit == "%":
        return f"{v:.0f}%"
    return f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.1f}"


def _year_label(year) -> str:
    """2026 -> ``R8`` (short: the axis)."""
    try:
        year = int(year)
    except (TypeError, ValueError):
        return str(year)
    if year >= 2019:
        return f"R{year - 2018}"
    if year >= 1989:
        return f"H{year - 1988}"
    return str(year)
