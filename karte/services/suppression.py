"""Small counts hidden from the public, and enough around them that none can be worked out again:
one rule for every output (JSON, CSV, HTML, OGC, PDF).

**Primary suppression** (一次秘匿): a count of people from 1 to ``max_small``
(``KARTE_SUPPRESS_MAX``, default 2) is shown as :data:`~karte.domain.access.SUPPRESSED` (秘匿).

**Complementary suppression** (二次秘匿), as e-Stat's statistical tables do: a hidden cell must not
be recomputable from the cells that are shown. A build's published counts are tied by sums: the
age bands of a small area add up to its population; a district's figures are the sums of its
small areas'; the city's figures (shown on every karte) are the sums of the districts'; a
district's support-needers split by consent and by plan; the city's gap rates times the city's
support-needers give the city's count of every gap kind; and so on (:func:`model`). So the hidden
cells of a build are chosen together (:func:`plan`), once per build and threshold, from the
whole city (that is what the ``snapshot`` argument is for):

1. every count from 1 to ``max_small`` is hidden;
2. while any hidden cell is determined by the shown cells (a unit vector in the row space of the
   sums restricted to the hidden cells: exact linear recomputation), or by a sum whose hidden part
   must be zero, one more cell of such a sum is hidden: the smallest positive count that is not
   itself a total (a sibling in the same breakdown, another small area of the district, another
   district against the city's total);
3. the same again for a district member, who knows their own district's figures exactly and the
   public view of every other district: no hidden cell of another district may become
   determined when one district's cells are known.

A rate or a share is hidden whenever its count or the count it is divided by is hidden (a rate
beside a shown count would give the hidden denominator back).

Who sees suppressed figures: :func:`applies` (the public, the prefecture level, and a district
member outside their own district; coordinators and city staff see exact counts). Which numbers
are counts of people: in a karte the paths of :func:`model`; in a layer every numeric column that
is not a rate and not in :data:`NOT_COUNTS` (a new count column is suppressed by default, by the
primary rule alone until :func:`model` knows it). The rule beside e-Stat's practice:
``docs/security.md``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from karte.assemble import gap_column, gap_rate_column
from karte.domain.access import SUPPRESSED, Access, Level
from karte.domain.errors import KarteError
from karte.domain.gaps import ANALYSED

#: Numeric columns of the public layers that are *not* counts of people (never suppressed).
NOT_COUNTS = frozenset({"small_areas", "area_km2", "salons", "cells", "radius_m"})

#: Rate column -> the count column it would give away (hidden together).
RATE_OF = {
    "elderly_rate": "elderly",
    "gap_rate": "at_risk",
    "uncovered_share": "uncovered_elderly",
    "uncovered_elderly_share": "uncovered_elderly",
    "uncovered_75_plus_share": "uncovered_75_plus",
    **{gap_rate_column(k): gap_column(k) for k in ANALYSED},
}
#: Rate column -> the count it is divided by (hidden with it too).
RATE_OVER = {
    "elderly_rate": "population",
    "gap_rate": "support_needers",
    "uncovered_share": "elderly",
    "uncovered_elderly_share": "elderly",
    **{gap_rate_column(k): "support_needers" for k in ANALYSED},
}

#: karte paths whose numbers are counts of people: (section, key) of dicts or lists of dicts.
KARTE_COUNTS = {
    "register": ("total", "shareable", "with_supporter", "needs_care_level", "needs_disability",
                 "needs_medical_devices"),
    "cooperators": ("total", "evacuation_capacity"),
}
KARTE_COUNT_LISTS = (("register", "by_consent"), ("register", "by_plan"), ("cooperators", "by_role"),
                     ("cooperators", "by_help"))

#: Small-area count columns and the district figure each adds up to (the karte's base keys).
AREA_COUNTS = ("population", "households", "age_0_14", "age_15_64", "age_65_74", "age_75_plus",
               "elderly_alone", "disabled")
AGE_BANDS = ("age_0_14", "age_15_64", "age_65_74", "age_75_plus")
#: Coverage counts (salon walking distance), per district.
COVERAGE_COUNTS = ("elderly", "uncovered_elderly", "uncovered_75_plus")
CITY = "city"

Cell = tuple  # ("base", district or CITY, key), ("area", key_code, column), ("reg", d, key), ...


# --- who sees suppressed figures -------------------------------------------------------------------

def applies(access: Access, district: str | None = None) -> bool:
    """Does ``access`` see the figures of ``district`` (None: of the whole city) suppressed?
    The public and the prefecture level always; a district member everywhere but in their own
    district (whose persons they see anyway); coordinators and city staff never."""
    if access.level in (Level.PUBLIC, Level.PREFECTURE):
        return True
    if access.level == Level.DISTRICT_MEMBER:
        return district is None or district != access.district
    return False


def audience(access: Access, district: str | None = None) -> str:
    """What a page or map shown to ``access`` depends on, for a cache key: ``"exact"``,
    ``"suppressed"``, or for a district member's whole-city view ``"member:<district>"`` (their
    own district exact, the others suppressed)."""
    if not applies(access, district):
        return "exact"
    if access.level == Level.DISTRICT_MEMBER and district is None:
        return f"member:{access.district}"
    return "suppressed"


# --- the cells of a build and the sums that tie them ------------------------------------------------

@dataclass
class Model:
    """Every published count of a build (:data:`Cell` -> value) and the sums between them: each
    equation is ``[(cell, coefficient), ...]`` whose weighted values add up to zero. ``fixed``
    cells are known whatever is hidden (the city's gap counts follow from its rates); ``owner`` is
    the district a cell belongs to (None for the city's)."""

    values: dict[Cell, float] = field(default_factory=dict)
    equations: list[list[tuple[Cell, int]]] = field(default_factory=list)
    owner: dict[Cell, str | None] = field(default_factory=dict)
    totals: set[Cell] = field(default_factory=set)

    def cell(self, cell: Cell, value, owner: str | None) -> Cell:
        self.values[cell] = _number(value)
        self.owner[cell] = owner
        return cell

    def sums(self, total: Cell, parts: Iterable[Cell]) -> None:
        parts = [p for p in parts if p in self.values and not math.isnan(self.values[p])]
        if total not in self.values or math.isnan(self.values[total]) or not parts:
            return
        self.totals.add(total)
        self.equations.append([(total, -1), *((p, 1) for p in parts)])


def _number(v) -> float:
    if v is None or v is pd.NA or isinstance(v, str):
        return math.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def model(snapshot) -> Model:
    """The published counts of ``snapshot`` (:class:`karte.snapshot.Snapshot`) and their sums."""
    m = Model()
    codes = list(snapshot.codes)
    base_keys: list[str] = []
    for code in codes:
        karte = snapshot.kartes[code]
        for item in karte["base"]:
            if item.get("unit") not in ("人", "世帯"):
                continue
            key = item["key"]
            if key not in base_keys:
                base_keys.append(key)
            m.cell(("base", code, key), item.get("value"), code)
            m.cell(("base", CITY, key), item.get("city"), None)
        reg, coop = karte.get("register", {}), karte.get("cooperators", {})
        for key in KARTE_COUNTS["register"]:
            if key in reg and key not in ("total", "shareable"):
                m.cell(("reg", code, key), reg[key], code)
        for key in KARTE_COUNTS["cooperators"]:
            if key in coop:
                m.cell(("coop", code, key), coop[key], code)
        for section, key in KARTE_COUNT_LISTS:
            for item in karte.get(section, {}).get(key, []):
                m.cell((_family(section), code, f"{key}:{item['key']}"), item["count"], code)
    # a district's figures: its age bands, its elderly; the register's splits
    for code in codes:
        b = lambda key, c=code: ("base", c, key)  # noqa: E731
        m.sums(b("population"), [b(k) for k in AGE_BANDS])
        m.sums(b("elderly"), [b("age_65_74"), b("age_75_plus")])
        total = b("support_needers")  # = the register's total = the gaps' persons (one cell)
        consent = [c for c in m.values if c[:2] == ("reg", code) and c[2].startswith("by_consent:")]
        m.sums(total, consent)
        m.sums(total, [c for c in m.values if c[:2] == ("reg", code) and c[2].startswith("by_plan:")])
        m.sums(b("support_needers_consented"),
               [("reg", code, "by_consent:consented"), ("reg", code, "by_consent:ordinance")])
        m.sums(("coop", code, "total"),
               [c for c in m.values if c[:2] == ("coop", code) and c[2].startswith("by_role:")])
    # the city's figures are the districts' sums
    for key in base_keys:
        m.sums(("base", CITY, key), [("base", code, key) for code in codes])
    _gaps(m, snapshot, codes)
    _areas(m, snapshot, codes)
    _coverage(m, snapshot, codes)
    return m


def _family(section: str) -> str:
    return "reg" if section == "register" else "coop"


def _gaps(m: Model, snapshot, codes: list[str]) -> None:
    gaps = snapshot.district_gaps
    kinds = [c for c in gaps.columns if not str(c).startswith("rate_") and c != "persons"]
    for code in codes:
        if code not in gaps.index:
            continue
        for kind in kinds:
            m.cell(("gap", code, kind), gaps.loc[code, kind], code)
        # gaps the register's own counts give away: no consent = refused + no answer; a person
        # has a supporter or has none
        m.sums(("gap", code, "no_consent"), [("reg", code, "by_consent:refused"),
                                             ("reg", code, "by_consent:no_answer")])
        m.sums(("base", code, "support_needers"), [("reg", code, "with_supporter"),
                                                   ("gap", code, "no_supporter")])
    if CITY in gaps.index:  # the city's rate of each kind (shown on every karte) gives its count
        persons = gaps.loc[CITY, "persons"]
        for kind in kinds:
            rate = gaps.loc[CITY].get(f"rate_{kind}")
            count = round(float(rate) * float(persons)) if rate is not None and rate == rate else None
            m.cell(("gap", CITY, kind), count, None)
            m.sums(("gap", CITY, kind), [("gap", code, kind) for code in codes])


def _areas(m: Model, snapshot, codes: list[str]) -> None:
    areas = snapshot.small_areas
    if "key_code" not in areas.columns:
        return
    present = [c for c in AREA_COUNTS if c in areas.columns]
    values = {c: pd.to_numeric(areas[c], errors="coerce").to_numpy(dtype=float) for c in present}
    keys = areas["key_code"].astype(str).to_numpy()
    districts = (areas["district_code"].to_numpy(dtype=object) if "district_code" in areas
                 else [None] * len(keys))
    by_district: dict[str, list[str]] = defaultdict(list)
    for i, key in enumerate(keys):
        owner = districts[i] if isinstance(districts[i], str) else None
        for c in present:
            m.cell(("area", key, c), values[c][i], owner)
        if {"age_65_74", "age_75_plus"} <= set(present):
            m.cell(("area", key, "elderly"), values["age_65_74"][i] + values["age_75_plus"][i], owner)
        if owner is not None:
            by_district[owner].append(key)
        a = lambda c, k=key: ("area", k, c)  # noqa: E731
        m.sums(a("population"), [a(c) for c in AGE_BANDS])
        m.sums(a("elderly"), [a("age_65_74"), a("age_75_plus")])
    for code in codes:
        keys_in = by_district.get(code, [])
        for c in (*present, "elderly"):
            m.sums(("base", code, c), [("area", k, c) for k in keys_in])


def _coverage(m: Model, snapshot, codes: list[str]) -> None:
    coverages, _ = snapshot.coverage()
    for code in codes:
        cov = coverages.get(code)
        if cov is None:
            continue
        for c in COVERAGE_COUNTS:
            m.cell(("cov", code, c), round(getattr(cov, c)), code)
    for c in COVERAGE_COUNTS:  # the city's shares (shown on every karte) tie the districts' sums
        total = sum(m.values.get(("cov", code, c), 0) for code in codes)
        m.cell(("cov", CITY, c), total, None)
        m.sums(("cov", CITY, c), [("cov", code, c) for code in codes])
        m.totals.add(("cov", CITY, c))


# --- choosing the hidden cells ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """The cells hidden from viewers who see suppressed figures, for one build and threshold."""

    max_small: int
    hidden: frozenset
    primary: frozenset

    def hides(self, cell: Cell) -> bool:
        return cell in self.hidden


def plan(snapshot, max_small: int) -> Plan:
    """The hidden cells of ``snapshot`` at threshold ``max_small``, computed once per build and
    kept in the store for every process (:meth:`karte.snapshot.Snapshot.kept`)."""
    return snapshot.kept(f"suppression-plan:{int(max_small)}", lambda: choose(model(snapshot), max_small),
                         encode=_plan_text, decode=_plan_of_text)


def _plan_text(p: Plan) -> str:
    def cells(found):
        return sorted((list(c) for c in found), key=json.dumps)

    return json.dumps({"max_small": p.max_small, "hidden": cells(p.hidden), "primary": cells(p.primary)},
                      ensure_ascii=False)


def _plan_of_text(text: str) -> Plan:
    data = json.loads(text)
    return Plan(int(data["max_small"]), frozenset(tuple(c) for c in data["hidden"]),
                frozenset(tuple(c) for c in data["primary"]))


def choose(m: Model, max_small: int) -> Plan:
    """Primary cells (1..``max_small``), then complements until no hidden cell is determined,
    for the public and for a member of any one district (see the module docstring)."""
    primary = {c for c, v in m.values.items() if not math.isnan(v) and 1 <= v <= max_small}
    hidden = set(primary)
    by_cell: dict[Cell, list[int]] = defaultdict(list)
    for i, eq in enumerate(m.equations):
        for cell, _ in eq:
            by_cell[cell].append(i)
    for _ in range(10_000):
        added = False
        for known_owner in [None, *sorted({o for o in m.owner.values() if o is not None})]:
            known = set() if known_owner is None else {c for c in hidden if m.owner.get(c) == known_owner}
            if known_owner is not None and not _crosses(m, known, hidden, by_cell):
                continue
            for cell in sorted(determined(m, hidden - known, by_cell, known=known), key=str):
                if cell in known:
                    continue
                extra = _complement(m, cell, hidden, by_cell, avoid=known_owner)
                if extra is not None:
                    hidden.add(extra)
                    added = True
            if added:
                break
        if not added:
            return Plan(max_small, frozenset(hidden), frozenset(primary))
    raise KarteError("秘匿の計画が収束しません")  # pragma: no cover - each round hides one more cell


def _crosses(m: Model, known: set, hidden: set, by_cell) -> bool:
    """Does one of a district's hidden cells share a sum with a hidden cell of another owner?"""
    for cell in known:
        for i in by_cell.get(cell, ()):
            if any(c in hidden and c not in known and m.owner.get(c) != m.owner.get(cell)
                   for c, _ in m.equations[i]):
                return True
    return False


def determined(m: Model, hidden: set, by_cell, *, known: set = frozenset()) -> set:
    """The cells of ``hidden`` an attacker who sees every other cell (and ``known``) can compute:
    by exact linear algebra over the sums, or because a sum's hidden part, all of one sign, must
    be zero."""
    out: set = set()
    rows = sorted({i for c in hidden for i in by_cell.get(c, ())})
    equations = []
    for i in rows:
        eq = [(c, a) for c, a in m.equations[i] if c in hidden]
        if eq:
            equations.append(eq)
            signs = {a > 0 for _, a in eq}
            rest = sum(a * m.values[c] for c, a in eq)
            if len(signs) == 1 and abs(rest) < 0.5:  # hidden part of one sign adding up to 0
                out.update(c for c, _ in eq)
    for component in _components(equations):
        cells = sorted({c for eq in component for c, _ in eq}, key=str)
        index = {c: j for j, c in enumerate(cells)}
        a = np.zeros((len(component), len(cells)))
        for r, eq in enumerate(component):
            for c, coef in eq:
                a[r, index[c]] += coef
        _, s, vt = np.linalg.svd(a)
        rank = int((s > 1e-9).sum())
        null = vt[rank:].T
        for c, j in index.items():
            if null.shape[1] == 0 or np.abs(null[j]).max() < 1e-9:
                out.add(c)
    return out


def _components(equations: list[list[tuple[Cell, int]]]) -> list[list[list[tuple[Cell, int]]]]:
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for eq in equations:
        first = find(eq[0][0])
        for c, _ in eq[1:]:
            parent[find(c)] = first
    groups: dict = defaultdict(list)
    for eq in equations:
        groups[find(eq[0][0])].append(eq)
    return list(groups.values())


def _complement(m: Model, cell: Cell, hidden: set, by_cell, *, avoid: str | None) -> Cell | None:
    """The cell to hide next so that ``cell`` is no longer determined: in the sums of ``cell``
    (the one with the fewest hidden cells first), the smallest positive shown count that is not
    a total and not ``avoid``'s (a member of that district knows it)."""
    best = None
    for i in sorted(by_cell.get(cell, ()), key=lambda i: sum(c in hidden for c, _ in m.equations[i])):
        for c, coef in m.equations[i]:
            if c in hidden or math.isnan(m.values[c]) or (avoid is not None and m.owner.get(c) == avoid):
                continue
            v = m.values[c]
            score = (c in m.totals or coef < 0, m.owner.get(c) is None, v <= 0, v, str(c))
            if best is None or score < best[0]:
                best = (score, c)
        if best is not None and not best[0][0] and not best[0][1]:
            break  # a positive leaf of a district in the sum with the fewest hidden cells
    return None if best is None else best[1]


# --- showing a karte and a layer ---------------------------------------------------------------------------

def small(count, max_small: int):
    """``count`` as a public viewer sees it by the primary rule alone: :data:`SUPPRESSED` for
    1..``max_small`` (:func:`shown` applies the build's whole plan)."""
    if count is None or isinstance(count, str):
        return count
    return SUPPRESSED if 1 <= int(count) <= max_small else count


def rate_of(rate, count, max_small: int):
    """A rate, hidden (None) when its count is suppressed by the primary rule."""
    return None if small(count, max_small) == SUPPRESSED else rate


def shown(value, cell: Cell, max_small: int, *, snapshot=None):
    """``value`` of ``cell`` as a viewer of suppressed figures sees it: :data:`SUPPRESSED` when the
    build's plan hides the cell (without a snapshot, by the primary rule alone)."""
    if snapshot is None:
        return small(value, max_small)
    if value is None or isinstance(value, str):
        return value
    return SUPPRESSED if plan(snapshot, max_small).hides(cell) or small(value, max_small) == SUPPRESSED \
        else value


def suppress_karte(karte: dict, max_small: int, *, snapshot=None) -> dict:
    """The karte (the stored ``karte/1`` plus ``gaps`` and ``coverage``) as a viewer of suppressed
    figures sees it; changed in place and returned. ``snapshot`` (:class:`karte.snapshot.Snapshot`)
    is the build the karte belongs to: with it the whole plan applies (primary and complementary
    cells); without it the primary rule alone."""
    code = karte.get("district", {}).get("code")
    p = plan(snapshot, max_small) if snapshot is not None else None

    def hide(value, cell) -> bool:
        if value is None or isinstance(value, str):
            return isinstance(value, str) and value == SUPPRESSED
        return small(value, max_small) == SUPPRESSED or (p is not None and p.hides(cell))

    base = {item["key"]: item for item in karte.get("base", [])}
    hidden_base = {k: hide(item.get("value"), ("base", code, k)) for k, item in base.items()
                   if item.get("unit") in ("人", "世帯")}
    hidden_city = {k: hide(item.get("city"), ("base", CITY, k)) for k, item in base.items()
                   if item.get("unit") in ("人", "世帯")}
    for key, item in base.items():
        if key not in hidden_base:
            continue
        over = item.get("rate_of")
        if (hidden_base[key] or hidden_base.get(over, False)) and "rate" in item:
            item["rate"] = None
        if (hidden_base[key] or hidden_city[key]) and "share_of_city" in item:
            item["share_of_city"] = None
        if (hidden_city[key] or hidden_city.get(over, False)) and "city_rate" in item:
            item["city_rate"] = None
        if hidden_base[key]:
            item["value"] = SUPPRESSED
        if hidden_city[key]:
            item["city"] = SUPPRESSED
    reg, coop = karte.get("register", {}), karte.get("cooperators", {})
    aliases = {("register", "total"): ("base", code, "support_needers"),
               ("register", "shareable"): ("base", code, "support_needers_consented")}
    for section, keys in KARTE_COUNTS.items():
        block = reg if section == "register" else coop
        for key in keys:
            if key in block:
                cell = aliases.get((section, key), (_family(section), code, key))
                if hide(block[key], cell):
                    block[key] = SUPPRESSED
    for section, key in KARTE_COUNT_LISTS:
        for item in karte.get(section, {}).get(key, []):
            if hide(item["count"], (_family(section), code, f"{key}:{item['key']}")):
                item["count"] = SUPPRESSED
    persons_hidden = False
    for row in karte.get("gaps", []):
        cell = ("base", code, "support_needers") if row["key"] == "persons" else ("gap", code, row["key"])
        if hide(row["count"], cell):
            row["count"] = SUPPRESSED
            persons_hidden |= row["key"] == "persons"
    for row in karte.get("gaps", []):
        if row["count"] == SUPPRESSED or persons_hidden:
            row["rate"] = None
        if row["key"] != "persons" and p is not None and p.hides(("gap", CITY, row["key"])):
            row["city_rate"] = None
    cov = karte.get("coverage")
    if cov:
        hidden = {c: hide(cov.get(c), ("cov", code, c)) for c in COVERAGE_COUNTS if c in cov}
        for count, share in (("uncovered_elderly", "uncovered_elderly_share"),
                             ("uncovered_75_plus", "uncovered_75_plus_share")):
            if share in cov and (hidden.get(count) or hidden.get("elderly")):
                cov[share] = None
        for c, h in hidden.items():
            if h:
                cov[c] = SUPPRESSED
    return karte


#: Layer columns that are karte cells: layer -> column -> (family, key); the row's key is the
#: district code (``districts``, ``coverage``) or the small area's key code (``small_areas``).
LAYER_CELLS = {
    "districts": {"population": ("base", "population"), "elderly": ("base", "elderly"),
                  "support_needers": ("base", "support_needers"), "at_risk": ("gap", "at_risk"),
                  "uncovered_elderly": ("cov", "uncovered_elderly"),
                  **{gap_column(k): ("gap", k) for k in ANALYSED}},
    "coverage": {c: ("cov", c) for c in COVERAGE_COUNTS},
    "small_areas": {**{c: ("area", c) for c in AREA_COUNTS}, "elderly": ("area", "elderly")},
}
#: Rates of a layer divided by a cell the layer does not show: hidden with it too.
LAYER_RATE_CELLS = {"districts": {"uncovered_share": ("cov", "elderly")}}
#: The row key of each layer with cells.
LAYER_ROW = {"districts": "district_code", "coverage": "district_code", "small_areas": "key_code"}


def suppress_frame(frame: pd.DataFrame, layer: str, max_small: int, *, snapshot=None) -> pd.DataFrame:
    """A copy of a public layer as a viewer of suppressed figures sees it: its counts of people
    hidden as :data:`SUPPRESSED` (those columns become ``object``) by the build's plan for the
    layers it knows (``districts``, ``small_areas``, ``coverage``; with ``snapshot``), by the
    primary rule for any other count column, and the rates beside a hidden count or denominator
    ``None``."""
    geometry = getattr(frame, "_geometry_column_name", None)
    rates = [c for c in frame.columns if is_rate(c)]
    columns = [c for c in frame.columns
               if c not in NOT_COUNTS and c not in rates and c != geometry
               and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    if not columns:
        return frame
    for rate in rates:
        if RATE_OF.get(rate) is None:
            raise KarteError(f"rate column {rate} of layer {layer} names no count (suppression.RATE_OF)")
    p = plan(snapshot, max_small) if snapshot is not None else None
    cells = LAYER_CELLS.get(str(layer), {}) if p is not None else {}
    row_key = LAYER_ROW.get(str(layer))
    keys = frame[row_key].astype(str).tolist() if cells and row_key in frame.columns else None
    out = frame.copy()
    hidden: dict[str, list[bool]] = {}
    for col in columns:
        cell = cells.get(col)
        flags = []
        values = []
        for i, v in enumerate(out[col].tolist()):
            if _missing(v):
                flags.append(False)
                values.append(None)
                continue
            n = round(float(v))
            hide = small(n, max_small) == SUPPRESSED
            if not hide and cell is not None and keys is not None:
                hide = p.hides((cell[0], keys[i], cell[1]))
            flags.append(hide)
            values.append(SUPPRESSED if hide else n)
        hidden[col] = flags
        out[col] = pd.Series(values, index=out.index, dtype=object)
    for rate in rates:
        parts = [c for c in (RATE_OF.get(rate), RATE_OVER.get(rate)) if c in hidden]
        extra = LAYER_RATE_CELLS.get(str(layer), {}).get(rate) if keys is not None else None
        if not parts and not extra:
            continue
        drop = [any(hidden[c][i] for c in parts)
                or (extra is not None and p.hides((extra[0], keys[i], extra[1]))) for i in range(len(out))]
        out[rate] = out[rate].astype(object).where(~pd.Series(drop, index=out.index), None)
    return out


def is_rate(column: str) -> bool:
    return column.endswith(("_rate", "share"))


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
