"""CQL2 filters (OGC 21-065r2, text and JSON) evaluated in memory on a collection as it is served.

Parsing is the ``cql2`` package's (developmentseed's Rust parser, the one tipg uses): both
encodings come out as one tree, CQL2 JSON, which :func:`evaluate` walks with numpy over every
feature at once. Why in memory, on both stores: the OGC collections are the build snapshot's
public layers after suppression (derived measures, salon coverage, small counts shown as
「秘匿」), which no database table holds; and a filter must only ever see what the viewer sees. A
filter translated to SQL would run on the stored counts, so ``elderly_alone = 1`` would pick out
exactly the areas whose hidden count is 1. Here a hidden count is *unknown*, as SQL's NULL: no
comparison with a number is true or false for it, ``NOT`` keeps it unknown, and its text
(「秘匿」) compares as text. Nothing a filter, a sort or a count can ask depends on the hidden value.

Logic is three-valued (true, false, unknown), carried as two masks: ``t`` (true) and ``f``
(false); a feature is selected when ``t`` holds.

Supported (each listed in the conformance document): comparison ``= <> < <= > >=``, ``IS NULL``,
``AND OR NOT``, boolean literals (basic-cql2); ``LIKE``, ``BETWEEN``, ``IN``
(advanced-comparison-operators); ``CASEI`` (case-insensitive-comparison); properties on both
sides of a comparison (property-property); ``S_INTERSECTS S_EQUALS S_DISJOINT S_TOUCHES S_WITHIN
S_OVERLAPS S_CROSSES S_CONTAINS`` with any geometry literal or ``BBOX`` (spatial-functions).
Anything else (temporal, arrays, arithmetic, other functions) is a 400 naming the operator.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cql2
import numpy as np
import shapely

from karte.domain.errors import InputError

#: Longest filter accepted (characters): enough for a polygon of a few hundred vertices.
MAX_FILTER_CHARS = 8192
#: Deepest nesting of brackets (text) or of operators (JSON) accepted: the parser recurses on
#: nesting and must never be handed a stack-exhausting input.
MAX_DEPTH = 48
#: The name of the geometry in filters (``S_INTERSECTS(geometry, …)``).
GEOMETRY = "geometry"

COMPARISONS: dict[str, Callable] = {"=": operator.eq, "<>": operator.ne, "<": operator.lt,
                                    "<=": operator.le, ">": operator.gt, ">=": operator.ge}
SPATIAL: dict[str, Callable] = {
    "s_intersects": shapely.intersects, "s_equals": shapely.equals, "s_disjoint": shapely.disjoint,
    "s_touches": shapely.touches, "s_within": shapely.within, "s_overlaps": shapely.overlaps,
    "s_crosses": shapely.crosses, "s_contains": shapely.contains,
}
#: Filter languages of the ``filter-lang`` parameter; ``cql-text`` is what GDAL's OAPIF driver
#: (up to 3.12 at least) sends for the text encoding.
LANGUAGES = ("cql2-text", "cql2-json", "cql-text")
_TOO_DEEP = f"フィルタの入れ子が深すぎます（{MAX_DEPTH} 段まで） / filter nested deeper than {MAX_DEPTH}"


@dataclass(frozen=True)
class Column:
    """One property of a collection as filters see it (arrays of one value per feature).

    ``kind`` is ``string``, ``integer``, ``number`` or ``boolean``. A number column may also
    carry ``text``, each value as shown ("12", or "秘匿" for a suppressed count), and ``hidden``,
    the suppressed ones: then it compares with numbers by ``num`` (NaN where hidden: unknown) and
    with text by ``text``.
    """

    name: str
    kind: str
    null: np.ndarray                    # bool: no value at all
    num: np.ndarray | None = None       # float64, NaN for null or hidden
    text: np.ndarray | None = None      # object: str or None
    flag: np.ndarray | None = None      # bool values of a boolean column
    hidden: np.ndarray | None = None    # bool: a suppressed count (it has a value, not shown)


@dataclass(frozen=True)
class Table:
    """What a filter is evaluated on: the columns and the geometries of ``n`` features (in the
    filter's CRS, x = east, y = north), with an STR-tree over them when there is one."""

    n: int
    columns: Mapping[str, Column]
    geometry: np.ndarray
    tree: shapely.STRtree | None = None


# --- parsing -----------------------------------------------------------------------------------

def parse(text: str, lang: str | None = None) -> dict:
    """The filter ``text`` as CQL2 JSON (a dict), whatever its encoding.

    A filter that is a JSON object is CQL2 JSON, anything else CQL2 text; ``lang`` (the
    ``filter-lang`` parameter) must be one of :data:`LANGUAGES` when given. Raises
    :class:`InputError` (400) for a filter that is too long, too deeply nested or not CQL2.
    """
    if lang is not None and lang not in LANGUAGES:
        raise InputError(f"filter-lang は {', '.join(LANGUAGES)} のどれかです / "
                         f"unsupported filter-lang {lang!r}")
    if len(text) > MAX_FILTER_CHARS:
        raise InputError(f"フィルタが長すぎます（{MAX_FILTER_CHARS} 文字まで） / filter longer than "
                         f"{MAX_FILTER_CHARS} characters")
    if not text.strip():
        raise InputError("フィルタが空です / empty filter")
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    if _bracket_depth(text) > MAX_DEPTH:
        raise InputError(_TOO_DEEP)
    try:
        tree = cql2.parse_text(text).to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        raise InputError(f"CQL2 のフィルタとして読めません{_where(exc)} / not a CQL2 text filter") from None
    _check_depth(tree)
    return tree


def _parse_json(text: str) -> dict:
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise InputError("フィルタが JSON として読めません / the filter is not valid JSON") from None
    _check_depth(raw)
    try:
        return cql2.parse_json(json.dumps(raw)).to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        raise InputError(f"CQL2 JSON のフィルタとして読めません{_where(exc)} / "
                         "not a CQL2 JSON filter") from None


def _where(exc: Exception) -> str:
    found = re.search(r"--> (\d+):(\d+)", str(exc))
    return f"（{found.group(2)} 文字目）" if found else ""


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    return deepest


def _check_depth(tree) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(_TOO_DEEP)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def properties_of(tree) -> set[str]:
    """Every property name a filter refers to."""
    names, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if set(node) == {"property"}:
                names.add(str(node["property"]))
            else:
                stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


# --- evaluation --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Val:
    """An operand evaluated over every feature: ``kind`` is ``text``, ``num``, ``bool``, ``count``
    (a count column with hidden values: both ``num`` and ``text``) or ``geom``."""

    kind: str
    known: np.ndarray                  # bool: has a comparable value
    num: np.ndarray | None = None
    text: np.ndarray | None = None
    flag: np.ndarray | None = None
    geom: object = None                # an array of geometries, or one geometry
    null: np.ndarray | None = None     # bool: no value (IS NULL)


def evaluate(tree: dict, table: Table, *, literal_geometry: Callable[[object], object]) -> np.ndarray:
    """The features ``tree`` (CQL2 JSON) selects: a boolean mask of length ``table.n``.

    ``literal_geometry(geometry)`` takes a shapely geometry written in the filter's CRS
    (``filter-crs``) and returns it in CRS84, the CRS of ``table.geometry``.
    """
    t, _ = _Evaluator(table, literal_geometry).truth(tree)
    return t


class _Evaluator:
    def __init__(self, table: Table, literal_geometry):
        self.table = table
        self.n = table.n
        self.literal_geometry = literal_geometry

    # -- predicates: (true mask, false mask) --------------------------------------------------

    def truth(self, node) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        if isinstance(node, bool):
            return np.full(n, node), np.full(n, not node)
        if isinstance(node, dict) and set(node) == {"property"}:
            value = self.value(node)
            if value.kind != "bool":
                name = node["property"]
                raise InputError(f"{name} は真偽値ではありません / {name} is not a boolean")
            return value.known & value.flag, value.known & ~value.flag
        if not isinstance(node, dict) or "op" not in node:
            raise InputError("フィルタは条件式にしてください / a filter must be a boolean expression")
        op, args = str(node["op"]).lower(), node.get("args") or []
        if op == "and":
            parts = [self.truth(a) for a in args]
            return (np.logical_and.reduce([p[0] for p in parts]),
                    np.logical_or.reduce([p[1] for p in parts]))
        if op == "or":
            parts = [self.truth(a) for a in args]
            return (np.logical_or.reduce([p[0] for p in parts]),
                    np.logical_and.reduce([p[1] for p in parts]))
        if op == "not":
            t, f = self.truth(_one(args, op))
            return f, t
        if op in COMPARISONS:
            a, b = self._two(args, op)
            return self.compare(op, self.value(a), self.value(b))
        if op == "like":
            a, b = self._two(args, op)
            return self.like(self.value(a), b)
        if op == "between":
            if len(args) != 3:
                raise InputError("BETWEEN の引数は 3 つです / BETWEEN takes three arguments")
            x, lo, hi = (self.value(a) for a in args)
            t1, f1 = self.compare(">=", x, lo)
            t2, f2 = self.compare("<=", x, hi)
            return t1 & t2, f1 | f2
        if op == "in":
            a, b = self._two(args, op)
            return self.within_list(self.value(a), b)
        if op == "isnull":
            value = self.value(_one(args, op))
            return value.null.copy(), ~value.null
        if op in SPATIAL:
            a, b = self._two(args, op)
            return self.spatial(op, self.value(a), self.value(b))
        raise InputError(f"演算子 {node['op']} には対応していません / unsupported operator {node['op']}")

    def _two(self, args, op):
        if len(args) != 2:
            raise InputError(f"{op} の引数は 2 つです / {op} takes two arguments")
        return args

    # -- operands -------------------------------------------------------------------------------

    def value(self, node) -> _Val:
        n = self.n
        if isinstance(node, dict) and set(node) == {"property"}:
            return self.column(str(node["property"]))
        if isinstance(node, bool):
            return _Val("bool", np.ones(n, bool), flag=np.full(n, node), null=np.zeros(n, bool))
        if isinstance(node, int | float):
            return _Val("num", np.ones(n, bool), num=np.full(n, float(node)), null=np.zeros(n, bool))
        if isinstance(node, str):
            return _Val("text", np.ones(n, bool), text=np.full(n, node, dtype=object), null=np.zeros(n, bool))
        if isinstance(node, dict) and "bbox" in node:
            return _Val("geom", np.ones(n, bool), geom=self.literal_geometry(_bbox(node["bbox"])),
                        null=np.zeros(n, bool))
        if isinstance(node, dict) and "type" in node and ("coordinates" in node or "geometries" in node):
            try:
                geom = shapely.from_geojson(json.dumps(node))
            except shapely.errors.GEOSException:
                raise InputError("フィルタの図形を読めません / invalid geometry in the filter") from None
            return _Val("geom", np.ones(n, bool), geom=self.literal_geometry(geom), null=np.zeros(n, bool))
        if isinstance(node, dict) and str(node.get("op", "")).lower() == "casei":
            inner = self.value(_one(node.get("args") or [], "casei"))
            if inner.text is None:
                raise InputError("CASEI は文字列に使います / CASEI takes a string")
            text = np.array([None if s is None else s.casefold() for s in inner.text], dtype=object)
            return _Val("text", inner.known & (text != None), text=text, null=inner.null)  # noqa: E711
        if node is None:
            raise InputError("NULL とは比べられません。IS NULL を使ってください / compare with IS NULL")
        what = node.get("op") if isinstance(node, dict) else type(node).__name__
        raise InputError(f"{what} には対応していません / unsupported operand {what}")

    def column(self, name: str) -> _Val:
        if name == GEOMETRY:
            geom = self.table.geometry
            null = shapely.is_missing(geom) | shapely.is_empty(geom)
            return _Val("geom", ~null, geom=geom, null=null)
        col = self.table.columns.get(name)
        if col is None:
            raise InputError(f"プロパティ {name} はありません / unknown property {name} "
                             "（queryables を参照 / see queryables）")
        if col.kind == "string":
            return _Val("text", ~col.null, text=col.text, null=col.null)
        if col.kind == "boolean":
            return _Val("bool", ~col.null, flag=col.flag, null=col.null)
        if col.hidden is not None:
            return _Val("count", ~col.null, num=col.num, text=col.text, null=col.null)
        return _Val("num", ~col.null & ~np.isnan(col.num), num=col.num, null=col.null)

    # -- the operators ----------------------------------------------------------------------------

    def compare(self, op: str, a: _Val, b: _Val):
        mode = _mode(a, b, op)
        fn = COMPARISONS[op]
        if mode == "num":
            x, y = _numbers(a), _numbers(b)
            known = ~np.isnan(x) & ~np.isnan(y)
            with np.errstate(invalid="ignore"):
                cmp = fn(x, y)
        elif mode == "text":
            known = a.known & b.known
            x = np.where(known, a.text, "")
            y = np.where(known, b.text, "")
            cmp = np.asarray(fn(x, y), dtype=bool)
        else:
            if op not in ("=", "<>"):
                raise InputError("真偽値は = か <> で比べます / booleans compare with = or <> only")
            known = a.known & b.known
            cmp = fn(a.flag, b.flag)
        return known & cmp, known & ~cmp

    def like(self, a: _Val, pattern_node):
        if a.text is None:
            raise InputError("LIKE は文字列に使います / LIKE takes a string")
        fold = isinstance(pattern_node, dict) and str(pattern_node.get("op", "")).lower() == "casei"
        raw = (pattern_node.get("args") or [None])[0] if fold else pattern_node
        if not isinstance(raw, str):
            raise InputError("LIKE のパターンは文字列です / the LIKE pattern must be a string")
        rx = re.compile(_like_regex(raw), re.DOTALL | (re.IGNORECASE if fold else 0))
        known = a.known
        hit = np.fromiter((ok and bool(rx.fullmatch(s)) for s, ok in zip(a.text, known, strict=True)),
                          bool, count=self.n)
        return known & hit, known & ~hit

    def within_list(self, a: _Val, items):
        if not isinstance(items, list) or not items:
            raise InputError("IN の後には値の並びを書きます / IN takes a list of values")
        if all(isinstance(v, str) for v in items) and a.text is not None:
            known = a.known
            hit = known & np.isin(np.where(known, a.text, ""), np.array(items, dtype=object))
            return hit, known & ~hit
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in items) and a.num is not None:
            known = ~np.isnan(a.num)
            hit = known & np.isin(a.num, np.array(items, dtype=float))
            return hit, known & ~hit
        t = np.zeros(self.n, bool)
        f = np.ones(self.n, bool)
        for item in items:
            ti, fi = self.compare("=", a, self.value(item))
            t |= ti
            f &= fi
        return t, f

    def spatial(self, op: str, a: _Val, b: _Val):
        if a.kind != "geom" or b.kind != "geom":
            raise InputError(f"{op.upper()} は図形どうしに使います / {op.upper()} takes two geometries")
        known = a.known & b.known
        hit = self._tree_hits(op, a, b)
        if hit is None:
            hit = np.asarray(SPATIAL[op](a.geom, b.geom), dtype=bool)
        if hit.ndim == 0:
            hit = np.full(self.n, bool(hit))
        return known & hit, known & ~hit

    def _tree_hits(self, op: str, a: _Val, b: _Val) -> np.ndarray | None:
        """The predicate through the STR-tree when one side is the features' geometry and the
        other one literal (the common case: a few candidates tested, not every feature)."""
        tree, features = self.table.tree, self.table.geometry
        if tree is None or op == "s_equals":
            return None
        if a.geom is features and isinstance(b.geom, shapely.Geometry):
            literal, swap = b.geom, True    # op(feature, literal)
        elif b.geom is features and isinstance(a.geom, shapely.Geometry):
            literal, swap = a.geom, False   # op(literal, feature)
        else:
            return None
        predicate = {"s_intersects": "intersects", "s_disjoint": "intersects", "s_touches": "touches",
                     "s_overlaps": "overlaps", "s_crosses": "crosses",
                     "s_within": "contains" if swap else "within",
                     "s_contains": "within" if swap else "contains"}[op]
        hit = np.zeros(self.n, dtype=bool)
        hit[tree.query(literal, predicate=predicate)] = True
        return ~hit if op == "s_disjoint" else hit


def _one(args, op):
    if len(args) != 1:
        raise InputError(f"{op} の引数は 1 つです / {op} takes one argument")
    return args[0]


def _mode(a: _Val, b: _Val, op: str) -> str:
    kinds = {a.kind, b.kind}
    if "geom" in kinds:
        raise InputError("図形は空間演算子（S_INTERSECTS など）で比べます / "
                         "compare geometries with S_INTERSECTS etc.")
    if kinds <= {"bool"}:
        return "bool"
    if "text" in kinds and kinds <= {"text", "count"}:
        return "text"
    if kinds <= {"num", "count"} or kinds == {"num", "bool"}:  # a boolean as 0/1: what GDAL sends
        return "num"
    raise InputError(f"型の違う値を {op} で比べています / {op} compares values of different types")


def _numbers(value: _Val) -> np.ndarray:
    if value.num is not None:
        return value.num
    return np.where(value.known, value.flag.astype(float), np.nan)


def _like_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(out)


def _bbox(values) -> object:
    if not isinstance(values, list) or len(values) not in (4, 6) or not all(
            isinstance(v, int | float) and np.isfinite(v) for v in values):
        raise InputError("BBOX は数 4 つ（または 6 つ）です / BBOX takes 4 (or 6) numbers")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    x0, y0, x1, y1 = (float(v) for v in values)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
