"""``karte import`` of the plan table, indicator values, evaluations and earlier census years
(issue 12): the record kinds of this topic.

Each kind is a :class:`karte.importing.records.RecordKind` registered with
:func:`karte.importing.records.register` when this module is imported:

* ``plan`` (``karte plan import``): an annual plan table as councils keep it
  (:mod:`karte.history_plan`: xlsx or CSV in UTF-8 or CP932, marks in the cells, the years as
  columns, merged heading rows) into ``welfare_plans``, ``plan_items`` and ``plan_marks``. The
  plan is named by the table's title; its rows replace that plan's rows (item and mark ids kept
  where the item number is the same); every other plan stays.
* ``indicators``: indicator definitions with values and targets per fiscal year, one row per
  value (``data/plans/oshu_indicators.csv``): 指標キー, 指標, 単位, 範囲, 地区コード, 基準年度,
  年度, 区分 (実績/目標), 値, 計画, 対象事業, 備考, 計算元.
* ``evaluations``: evaluation notes per goal and year (計画, 目標番号, 年度, 区分 内部評価/外部評価,
  成果, 課題, 評価者, 地区コード).
* ``past-census`` (``karte import history FILE``): an earlier census table (the ``stats`` kind's
  format, keyed by the current small areas' KEY_CODE) as the history of the fiscal year of its
  census (from the file name, ``…2010…``): population, households and age bands per district and
  for the whole municipality.

The same rules as every import: every problem with file, row and column in Japanese; a file with
any problem loads nothing; the changes are listed before they are written; loading the same file
again changes nothing. The layers are written whole, atomically, by the store's trusted user (they
hold every municipality's rows), and each written layer gets an access-log row (action ``write``)
under the importing user.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from karte import history, indicators
from karte.domain.access import Access
from karte.domain.errors import InputError
from karte.domain.history import (
    EVALUATION_JA,
    SCOPE_JA,
    EvaluationKind,
    HistoryKind,
    HistoryLayer,
    IndicatorSource,
    Scope,
    ValueKind,
    narrow,
    parse_fiscal_year,
)
from karte.domain.layers import LAYERS, MUNICIPALITY, Layer
from karte.history_plan import PlanTable, parse_rows
from karte.importing import api, areas
from karte.importing.diff import ChangeReport, normal
from karte.importing.records import RecordKind, register
from karte.importing.rows import Findings
from karte.importing.tables import RawTable, read_table
from karte.store.base import Store

#: The Japanese name of each kind (the import report names a record kind by its title).
KINDS_JA = {
    "plan": "計画の年次表",
    "indicators": "活動指標",
    "evaluations": "計画の評価",
    "past-census": "過去の国勢調査（年度別の記録）",
}
PLAN_LAYERS = (HistoryLayer.PLANS, HistoryLayer.PLAN_ITEMS, HistoryLayer.PLAN_MARKS)


# --- the store's rows of this topic --------------------------------------------------------------------


def read_layer(store: Store, layer: str, *, versions: bool = False) -> pd.DataFrame:
    """A layer of this topic as stored (trusted read: nothing here is personal), or an empty frame
    with the registry's columns when it was never written; ``versions`` adds each row's
    ``version`` (what an edit must send back)."""
    spec = LAYERS[str(layer)]
    columns = [*spec.column_names, *(["version"] if versions else [])]
    if str(layer) in store.layers():
        frame = pd.DataFrame(store.read_full(str(layer)) if versions else store.read(str(layer)))
        return frame.reindex(columns=columns)
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def next_ids(frame: pd.DataFrame, layer: str, count: int) -> list[str]:
    """``count`` fresh ids for rows written whole into ``layer`` (past every id it holds)."""
    spec = LAYERS[str(layer)]
    pattern = re.compile(rf"^{re.escape(spec.id_prefix)}(\d+)$")
    numbers = [int(m.group(1)) for v in frame[spec.key].dropna() if (m := pattern.match(str(v)))]
    start = max(numbers, default=0) + 1
    return [spec.new_id(start + i) for i in range(count)]


def write_layers(store: Store, prepared: api.PreparedImport) -> None:
    """Write the prepared layers in one atomic write (as the store's trusted user: the frames hold
    every municipality's rows), then one access-log row per layer under the importing user."""
    store.write(prepared.layers)
    if prepared.access is not None:
        for name, frame in prepared.layers.items():
            store.audit(access=prepared.access, layer=name, district=None, rows=len(frame), action="write")


def _mine(frame: pd.DataFrame, municipality: str) -> pd.Series:
    return frame[MUNICIPALITY].astype(object).fillna("").astype(str) == str(municipality)


def _district(value) -> str:
    return (
        "" if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)
    )


def _count_changes(
    report: ChangeReport,
    before: dict[tuple, tuple],
    after: dict[tuple, tuple],
    district_of: Callable[[tuple], str],
) -> None:
    for key, signature in after.items():
        if key not in before:
            report.count(district_of(key), "added")
        elif before[key] != signature:
            report.count(district_of(key), "updated")
        else:
            report.unchanged += 1
    for key in before.keys() - after.keys():
        report.count(district_of(key), "removed")


def _signature(row: dict, columns: tuple[str, ...]) -> tuple:
    return tuple(normal(row.get(c)) for c in columns)


def _report(kind: str, table: RawTable) -> api.ImportReport:
    report = api.ImportReport(kind, table.source)
    report.encoding, report.sheet = table.encoding, table.sheet
    return report


def _finish(report: api.ImportReport, findings: Findings) -> None:
    report.problems = sorted(findings.problems, key=lambda p: p.row or 0)
    report.warnings = sorted(findings.warnings, key=lambda p: p.row or 0)


# --- the plan table --------------------------------------------------------------------------------------


def prepare_plan(store: Store, path: Path, access: Access, options: dict) -> api.PreparedImport:
    """Read an annual plan table and compute the plan layers after it (see the module docstring).
    ``options``: ``sheet``, ``encoding``, ``today``, and optionally ``name`` (the plan's name when
    the table has no title) and ``district`` (a district's own plan)."""
    table = read_table(path, sheet=options.get("sheet"), encoding=options.get("encoding"))
    report = _report("plan", table)
    findings = Findings(table.source)
    this_year = history.current_fiscal_year(options.get("today"))
    plan = parse_rows(table.rows, findings, name=options.get("name"), this_year=this_year)
    prepared = api.PreparedImport(report, access=access)
    _finish(report, findings)
    if plan is None or report.problems:
        if plan is None and not report.problems:
            raise InputError(f"{table.source}: 計画の年次表として読めません")
        return prepared
    report.rows = len(plan.items)
    report.notes.append(
        f"計画「{plan.name}」: 取組項目 {len(plan.items)} 件、"
        f"{min(plan.years)}〜{max(plan.years)}年度（{len(plan.years)} 列）"
    )
    prepared.layers, report.changes = plan_layers(
        store, plan, municipality=access.municipality, district=options.get("district") or ""
    )
    return prepared


def plan_layers(store: Store, plan: PlanTable, *, municipality: str, district: str = "") -> tuple[dict, list]:
    """The three plan layers with ``plan`` in place of its stored rows, and what changes."""
    plans, items, marks = (read_layer(store, layer) for layer in PLAN_LAYERS)
    key = plan.name
    mine_plans = (
        _mine(plans, municipality)
        & (plans["key"].astype(str) == key)
        & (plans["district_code"].map(_district) == district)
    )
    mine_items = (
        _mine(items, municipality)
        & (items["plan_key"].astype(str) == key)
        & (items["district_code"].map(_district) == district)
    )
    mine_marks = (
        _mine(marks, municipality)
        & (marks["plan_key"].astype(str) == key)
        & (marks["district_code"].map(_district) == district)
    )
    old_items = items[mine_items].to_dict("records")
    by_ref = {_ref(r): r for r in old_items}
    new_ids = iter(next_ids(items, HistoryLayer.PLAN_ITEMS, len(plan.items)))
    item_rows = []
    for position, item in enumerate(plan.items, start=1):
        old = by_ref.get(item.ref)
        item_rows.append(
            {
                "item_id": old["item_id"] if old else next(new_ids),
                MUNICIPALITY: municipality,
                "district_code": district,
                "plan_key": key,
                "position": position,
                "goal_no": item.goal_no,
                "goal": item.goal,
                "promotion_no": item.promotion_no,
                "promotion": item.promotion,
                "item_no": item.item_no,
                "item": item.item,
                "section": item.section,
                "merged_into": item.merged_into,
            }
        )
    old_marks = marks[mine_marks].to_dict("records")
    mark_ids = {(str(r["item_id"]), int(r["fiscal_year"])): r["mark_id"] for r in old_marks}
    ids_of = {item.ref: row["item_id"] for item, row in zip(plan.items, item_rows, strict=True)}
    wanted = [
        (ids_of[item.ref], year, cell.text)
        for item in plan.items
        for year, cell in sorted(item.cells.items())
    ]
    fresh = iter(next_ids(marks, HistoryLayer.PLAN_MARKS, len(wanted)))
    mark_rows = [
        {
            "mark_id": mark_ids.get((str(item_id), year)) or next(fresh),
            MUNICIPALITY: municipality,
            "district_code": district,
            "plan_key": key,
            "item_id": item_id,
            "fiscal_year": year,
            "marks": text,
        }
        for item_id, year, text in wanted
    ]
    old_plan = plans[mine_plans].to_dict("records")
    plan_row = {
        "plan_id": old_plan[0]["plan_id"] if old_plan else next_ids(plans, HistoryLayer.PLANS, 1)[0],
        MUNICIPALITY: municipality,
        "district_code": district,
        "key": key,
        "name": plan.name,
        "first_year": plan.first_year,
        "last_year": plan.last_year,
        "source": old_plan[0].get("source") if old_plan else None,
        "note": old_plan[0].get("note") if old_plan else None,
        "layout": json.dumps(plan.layout(), ensure_ascii=False),
    }
    changes = []
    for layer, before, after, key_of, columns in (
        (
            HistoryLayer.PLANS,
            old_plan,
            [plan_row],
            lambda r: (r["key"],),
            ("name", "first_year", "last_year", "layout"),
        ),
        (
            HistoryLayer.PLAN_ITEMS,
            old_items,
            item_rows,
            _ref_key,
            ("position", "goal", "promotion", "item", "section", "merged_into"),
        ),
        (HistoryLayer.PLAN_MARKS, old_marks, mark_rows, None, ("marks",)),
    ):
        report = ChangeReport(str(layer))
        if layer == HistoryLayer.PLAN_MARKS:
            refs = {row["item_id"]: _ref(row) for row in [*old_items, *item_rows]}
            key_of = lambda r, refs=refs: (refs.get(r["item_id"], r["item_id"]), int(r["fiscal_year"]))  # noqa: E731
        _count_changes(
            report,
            {key_of(r): _signature(r, columns) for r in before},
            {key_of(r): _signature(r, columns) for r in after},
            lambda _k: district,
        )
        changes.append(report)
    layers = {
        str(HistoryLayer.PLANS): _replace(plans, mine_plans, [plan_row], HistoryLayer.PLANS),
        str(HistoryLayer.PLAN_ITEMS): _replace(items, mine_items, item_rows, HistoryLayer.PLAN_ITEMS),
        str(HistoryLayer.PLAN_MARKS): _replace(marks, mine_marks, mark_rows, HistoryLayer.PLAN_MARKS),
    }
    return layers, changes


def _ref(row: dict) -> str:
    return f"{row.get('goal_no')}({row.get('promotion_no')}){row.get('item_no')}"


def _ref_key(row: dict) -> tuple:
    return (_ref(row),)


def _replace(frame: pd.DataFrame, drop: pd.Series, rows: list[dict], layer: str) -> pd.DataFrame:
    kept = frame[~drop]
    new = pd.DataFrame(rows, columns=frame.columns)
    out = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    return typed(out, layer)


def typed(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """``frame`` with the registry's columns of ``layer`` and their kinds (integers as Int64,
    floats, booleans, text as object), as a whole-layer write wants them."""
    spec = LAYERS[str(layer)]
    out = frame.reindex(columns=list(spec.column_names)).copy()
    for column in spec.columns:
        if column.kind == "integer":
            out[column.name] = pd.array(
                [None if _blank(v) else int(v) for v in out[column.name]], dtype="Int64"
            )
        elif column.kind == "float":
            out[column.name] = pd.to_numeric(out[column.name], errors="coerce").astype("float64")
        elif column.kind == "boolean":
            out[column.name] = out[column.name].fillna(False).astype(bool)
        else:
            out[column.name] = [None if _blank(v) else str(v) for v in out[column.name]]
    return out


def _blank(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v) or v == ""


# --- indicators -----------------------------------------------------------------------------------------

#: field -> accepted headers (the first is what the export writes).
INDICATOR_FIELDS = {
    "plan": ("計画", "plan"),
    "program": ("対象事業", "事業", "program"),
    "key": ("指標キー", "キー", "key"),
    "name": ("指標", "指標名", "活動指標", "name"),
    "unit": ("単位", "unit"),
    "scope": ("範囲", "対象範囲", "scope"),
    "district_code": ("地区コード", "地区", "district_code", "district"),
    "baseline_year": ("基準年度", "baseline_year", "baseline"),
    "fiscal_year": ("年度", "fiscal_year", "year"),
    "kind": ("区分", "kind"),
    "value": ("値", "数値", "value"),
    "note": ("備考", "note"),
    "computed": ("計算元", "computed"),
}
REQUIRED_INDICATOR = ("key", "name", "unit", "fiscal_year", "kind", "value")
_KIND_WORDS = {
    "実績": ValueKind.VALUE,
    "現状": ValueKind.VALUE,
    "現状値": ValueKind.VALUE,
    "値": ValueKind.VALUE,
    "value": ValueKind.VALUE,
    "目標": ValueKind.TARGET,
    "目標値": ValueKind.TARGET,
    "target": ValueKind.TARGET,
}
_SCOPE_WORDS = {
    "市全体": Scope.CITY,
    "全市": Scope.CITY,
    "市": Scope.CITY,
    "city": Scope.CITY,
    "地区": Scope.DISTRICT,
    "district": Scope.DISTRICT,
    "": None,
}


def _columns(
    table: RawTable, fields: dict, required: tuple[str, ...], findings: Findings
) -> tuple[int, dict[str, int], list[tuple[int, list[str]]]] | None:
    """The header row (the first non-blank row), the column of each field, and the body rows."""
    rows = [(n, [str(c or "").strip() for c in cells]) for n, cells in table.rows]
    rows = [(n, cells) for n, cells in rows if any(cells)]
    if not rows:
        findings.error(None, None, "ファイルが空です", "empty file")
        return None
    number, heading = rows[0]
    where: dict[str, int] = {}
    for i, text in enumerate(heading):
        name = narrow(text).strip().lower()
        for field, names in fields.items():
            if name in {n.lower() for n in names} and field not in where:
                where[field] = i
    for field in required:
        if field not in where:
            findings.error(
                number, fields[field][0], f"列「{fields[field][0]}」がありません", f"no column {field}"
            )
    if any(field not in where for field in required):
        return None
    return number, where, rows[1:]


def _cell(cells: list[str], where: dict[str, int], field: str) -> str:
    i = where.get(field)
    return narrow(cells[i]).strip() if i is not None and i < len(cells) else ""


@dataclass
class _Definition:
    row: int
    values: dict


def prepare_indicators(store: Store, path: Path, access: Access, options: dict) -> api.PreparedImport:
    """Read indicator definitions, values and targets (one row per value) and compute the two
    indicator layers after them (definitions and values of the same key and district replaced,
    every other row kept)."""
    table = read_table(path, sheet=options.get("sheet"), encoding=options.get("encoding"))
    report = _report("indicators", table)
    findings = Findings(table.source)
    prepared = api.PreparedImport(report, access=access)
    found = _columns(table, INDICATOR_FIELDS, REQUIRED_INDICATOR, findings)
    if found is None:
        _finish(report, findings)
        return prepared
    _, where, rows = found
    known_districts = _district_codes(store)
    this_year = history.current_fiscal_year(options.get("today"))
    definitions: dict[tuple, _Definition] = {}
    values: dict[tuple, tuple[int, dict]] = {}
    for number, cells in rows:
        c = {f: _cell(cells, where, f) for f in INDICATOR_FIELDS}
        label = {f: INDICATOR_FIELDS[f][0] for f in INDICATOR_FIELDS}
        ok = True
        for field in REQUIRED_INDICATOR:
            if not c[field]:
                findings.error(number, label[field], "値がありません", f"{field} missing")
                ok = False
        key = c["key"]
        if key and not re.fullmatch(r"[A-Za-z0-9_\-]{1,40}", key):
            findings.error(
                number,
                label["key"],
                "指標キーは半角英数字と _ - で書いてください（例: salon_places）",
                "bad key",
            )
            ok = False
        scope = _SCOPE_WORDS.get(c["scope"].lower() if c["scope"].isascii() else c["scope"], "bad")
        district = c["district_code"]
        if scope == "bad":
            findings.error(
                number, label["scope"], "範囲は「市全体」か「地区」です", "scope: city or district"
            )
            ok = False
        scope = scope or (Scope.DISTRICT if district else Scope.CITY)
        if scope == Scope.DISTRICT and not district:
            findings.error(
                number,
                label["district_code"],
                "範囲が地区の指標には地区コードが必要です",
                "district indicator without district",
            )
            ok = False
        if scope == Scope.CITY and district:
            findings.error(
                number,
                label["district_code"],
                "範囲が市全体の指標に地区コードは書けません",
                "city indicator with a district",
            )
            ok = False
        if district and known_districts and district not in known_districts:
            findings.error(
                number,
                label["district_code"],
                f"地区コード「{district}」はストアにありません",
                "unknown district",
            )
            ok = False
        year = _year(c["fiscal_year"], number, label["fiscal_year"], this_year, findings)
        baseline = (
            _year(c["baseline_year"], number, label["baseline_year"], this_year, findings)
            if c["baseline_year"]
            else None
        )
        kind = _KIND_WORDS.get(c["kind"].lower() if c["kind"].isascii() else c["kind"])
        if c["kind"] and kind is None:
            findings.error(number, label["kind"], "区分は「実績」か「目標」です", "kind: value or target")
            ok = False
        value = None
        if c["value"]:
            try:
                value = float(c["value"].replace(",", ""))
            except ValueError:
                findings.error(
                    number, label["value"], f"「{c['value']}」は数値として読めません", "not a number"
                )
                ok = False
        computed = c["computed"]
        if computed and computed not in _computed_names():
            findings.warn(
                number,
                label["computed"],
                f"計算元「{computed}」はまだ登録されていません。登録されるまでは取り込んだ値を使います",
                "computed source not registered",
            )
        if not ok or year is None:
            continue
        ident = (key, district)
        definition = {
            "key": key,
            "name": c["name"],
            "unit": c["unit"],
            "scope": str(scope),
            "district_code": district,
            "baseline_year": baseline,
            "plan": c["plan"] or None,
            "program": c["program"] or None,
            "computed": computed or None,
            "source": str(IndicatorSource.COMPUTED if computed else IndicatorSource.ENTERED),
        }
        before = definitions.get(ident)
        if before is None:
            definitions[ident] = _Definition(number, definition)
        else:
            for field in ("name", "unit", "scope", "baseline_year", "plan", "program", "computed"):
                if definition[field] != before.values[field] and definition[field] not in (None, ""):
                    if before.values[field] in (None, ""):
                        before.values[field] = definition[field]
                        continue
                    findings.error(
                        number,
                        INDICATOR_FIELDS[field][0],
                        f"指標「{key}」の{INDICATOR_FIELDS[field][0]}が{before.row}行目と違います",
                        f"{field} differs from row {before.row}",
                    )
        slot = (key, district, year, str(kind))
        if slot in values:
            findings.error(
                number,
                label["fiscal_year"],
                f"指標「{key}」の{year}年度の{c['kind']}が{values[slot][0]}行目と重複しています",
                "duplicate value",
            )
            continue
        values[slot] = (number, {"value": value, "note": c["note"] or None})
    report.rows = len(values)
    _finish(report, findings)
    if report.problems:
        return prepared
    prepared.layers, report.changes = indicator_layers(
        store,
        {k: d.values for k, d in definitions.items()},
        {k: v for k, (_, v) in values.items()},
        municipality=access.municipality,
    )
    report.notes.append(f"指標 {len(definitions)} 件、値と目標 {len(values)} 件")
    return prepared


def indicator_layers(
    store: Store, definitions: dict[tuple, dict], values: dict[tuple, dict], *, municipality: str
) -> tuple[dict, list]:
    """The indicator layers with these definitions and values upserted (by key and district; by key,
    district, year and kind), and what changes."""
    defs, vals = read_layer(store, HistoryLayer.INDICATORS), read_layer(store, HistoryLayer.INDICATOR_VALUES)
    mine = _mine(defs, municipality)
    old_defs = {(str(r["key"]), _district(r["district_code"])): r for r in defs[mine].to_dict("records")}
    position = max([int(v) for v in defs.loc[mine, "position"].dropna()], default=0)
    fresh = iter(next_ids(defs, HistoryLayer.INDICATORS, len(definitions)))
    new_defs = dict(old_defs)
    for ident, d in definitions.items():
        old = old_defs.get(ident)
        if old is None:
            position += 1
        new_defs[ident] = {
            **(old or {}),
            **d,
            "indicator_id": old["indicator_id"] if old else next(fresh),
            MUNICIPALITY: municipality,
            "note": (old or {}).get("note"),
            "position": (old or {}).get("position") or position,
        }
    vmine = _mine(vals, municipality)
    old_vals = {
        (str(r["indicator_key"]), _district(r["district_code"]), int(r["fiscal_year"]), str(r["kind"])): r
        for r in vals[vmine].to_dict("records")
    }
    fresh_vals = iter(next_ids(vals, HistoryLayer.INDICATOR_VALUES, len(values)))
    new_vals = dict(old_vals)
    for (key, district, year, kind), v in values.items():
        old = old_vals.get((key, district, year, kind))
        new_vals[(key, district, year, kind)] = {
            "value_id": old["value_id"] if old else next(fresh_vals),
            MUNICIPALITY: municipality,
            "district_code": district,
            "indicator_key": key,
            "fiscal_year": year,
            "kind": kind,
            **v,
        }
    changes = []
    for layer, before, after, columns in (
        (
            HistoryLayer.INDICATORS,
            old_defs,
            new_defs,
            ("name", "unit", "scope", "baseline_year", "plan", "program", "computed", "source"),
        ),
        (HistoryLayer.INDICATOR_VALUES, old_vals, new_vals, ("value", "note")),
    ):
        report = ChangeReport(str(layer))
        _count_changes(
            report,
            {k: _signature(r, columns) for k, r in before.items()},
            {k: _signature(r, columns) for k, r in after.items()},
            lambda k: k[1],
        )
        changes.append(report)
    layers = {
        str(HistoryLayer.INDICATORS): _replace(defs, mine, list(new_defs.values()), HistoryLayer.INDICATORS),
        str(HistoryLayer.INDICATOR_VALUES): _replace(
            vals, vmine, list(new_vals.values()), HistoryLayer.INDICATOR_VALUES
        ),
    }
    return layers, changes


def _computed_names() -> set[str]:
    return set(indicators.SOURCES)


def _year(text: str, row: int, column: str, this_year: int, findings: Findings) -> int | None:
    year = parse_fiscal_year(text)
    last = this_year + 20
    if year is None:
        findings.error(
            row, column, f"「{text}」は年度として読めません（R6、令和6年度、2024 など）", "not a fiscal year"
        )
        return None
    if not 1989 <= year <= last:
        findings.error(
            row, column, f"年度 {year} は範囲外です（1989〜{last}年度）", "fiscal year out of range"
        )
        return None
    return year


def _district_codes(store: Store) -> set[str]:
    if Layer.DISTRICTS not in store.layers():
        return set()
    return set(store.read(Layer.DISTRICTS)["district_code"].astype(str))


# --- evaluations ----------------------------------------------------------------------------------------

EVALUATION_FIELDS = {
    "plan_key": ("計画", "plan"),
    "goal_no": ("目標番号", "基本目標番号", "goal_no", "goal"),
    "goal": ("目標", "基本目標", "goal_text"),
    "fiscal_year": ("年度", "fiscal_year", "year"),
    "kind": ("区分", "評価区分", "kind"),
    "achievements": ("成果", "評価", "achievements"),
    "issues": ("課題", "issues"),
    "evaluator": ("評価者", "evaluator"),
    "district_code": ("地区コード", "地区", "district_code"),
}
_EVALUATION_WORDS = {
    "内部評価": EvaluationKind.INTERNAL,
    "内部": EvaluationKind.INTERNAL,
    "internal": EvaluationKind.INTERNAL,
    "外部評価": EvaluationKind.EXTERNAL,
    "外部": EvaluationKind.EXTERNAL,
    "external": EvaluationKind.EXTERNAL,
}


def prepare_evaluations(store: Store, path: Path, access: Access, options: dict) -> api.PreparedImport:
    """Read evaluation notes (one row per plan, goal, year and kind) and compute the evaluations
    layer after them (upserted by plan, district, goal, year and kind)."""
    table = read_table(path, sheet=options.get("sheet"), encoding=options.get("encoding"))
    report = _report("evaluations", table)
    findings = Findings(table.source)
    prepared = api.PreparedImport(report, access=access)
    found = _columns(table, EVALUATION_FIELDS, ("plan_key", "goal_no", "fiscal_year", "kind"), findings)
    if found is None:
        _finish(report, findings)
        return prepared
    _, where, rows = found
    this_year = history.current_fiscal_year(options.get("today"))
    notes: dict[tuple, dict] = {}
    first: dict[tuple, int] = {}
    for number, cells in rows:
        c = {f: _cell(cells, where, f) for f in EVALUATION_FIELDS}
        label = {f: EVALUATION_FIELDS[f][0] for f in EVALUATION_FIELDS}
        year = _year(c["fiscal_year"], number, label["fiscal_year"], this_year, findings)
        kind = _EVALUATION_WORDS.get(c["kind"])
        if kind is None:
            findings.error(
                number, label["kind"], "区分は「内部評価」か「外部評価」です", "kind: internal or external"
            )
        if not c["plan_key"]:
            findings.error(number, label["plan_key"], "計画の名前がありません", "plan missing")
        if not c["goal_no"]:
            findings.error(number, label["goal_no"], "目標番号がありません", "goal number missing")
        if not (c["achievements"] or c["issues"]):
            findings.error(number, label["achievements"], "成果か課題を書いてください", "no text")
        if year is None or kind is None or not c["plan_key"] or not c["goal_no"]:
            continue
        ident = (c["plan_key"], c["district_code"], c["goal_no"], year, str(kind))
        if ident in first:
            findings.error(
                number,
                label["goal_no"],
                f"同じ計画・目標・年度・区分の評価が{first[ident]}行目にもあります",
                "duplicate evaluation",
            )
            continue
        first[ident] = number
        notes[ident] = {
            "achievements": c["achievements"] or None,
            "issues": c["issues"] or None,
            "evaluator": c["evaluator"] or None,
        }
    report.rows = len(notes)
    _finish(report, findings)
    if report.problems:
        return prepared
    prepared.layers, report.changes = evaluation_layers(store, notes, municipality=access.municipality)
    return prepared


def evaluation_layers(store: Store, notes: dict[tuple, dict], *, municipality: str) -> tuple[dict, list]:
    frame = read_layer(store, HistoryLayer.EVALUATIONS)
    mine = _mine(frame, municipality)

    def ident(r):
        return (
            str(r["plan_key"]),
            _district(r["district_code"]),
            str(r["goal_no"]),
            int(r["fiscal_year"]),
            str(r["kind"]),
        )

    old = {ident(r): r for r in frame[mine].to_dict("records")}
    fresh = iter(next_ids(frame, HistoryLayer.EVALUATIONS, len(notes)))
    new = dict(old)
    for key, note in notes.items():
        before = old.get(key)
        plan_key, district, goal_no, year, kind = key
        new[key] = {
            "evaluation_id": before["evaluation_id"] if before else next(fresh),
            MUNICIPALITY: municipality,
            "district_code": district,
            "plan_key": plan_key,
            "goal_no": goal_no,
            "fiscal_year": year,
            "kind": kind,
            **note,
        }
    report = ChangeReport(str(HistoryLayer.EVALUATIONS))
    columns = ("achievements", "issues", "evaluator")
    _count_changes(
        report,
        {k: _signature(r, columns) for k, r in old.items()},
        {k: _signature(r, columns) for k, r in new.items()},
        lambda k: k[1],
    )
    return {
        str(HistoryLayer.EVALUATIONS): _replace(frame, mine, list(new.values()), HistoryLayer.EVALUATIONS)
    }, [report]


# --- an earlier census ------------------------------------------------------------------------------------


def prepare_census(store: Store, path: Path, access: Access, options: dict) -> api.PreparedImport:
    """Read an earlier census table (the ``stats`` kind's format, keyed by the current small areas)
    and compute the history rows of the fiscal year of that census (``options["year"]``, else the
    year the file name says): population, households and age bands per district and for the whole
    municipality. A year that already has rows written by a build is refused (its figures would be
    lost)."""
    if Layer.SMALL_AREAS not in store.layers():
        raise InputError(
            f"ストア {store.location} に小地域 (small_areas) がありません。"
            "先に karte build を実行してください"
        )
    table = read_table(path, sheet=options.get("sheet"), encoding=options.get("encoding"))
    report = _report("past-census", table)
    findings = Findings(table.source)
    prepared = api.PreparedImport(report, access=access)
    year = options.get("year") or history.census_year_of(path)
    this_year = history.current_fiscal_year(options.get("today"))
    if year is None:
        findings.error(
            None,
            None,
            "調査年が分かりません。ファイル名に年（例: census_2010.csv）を入れるか、"
            "年度を指定してください（karte history import FILE --year 2010）",
            "census year unknown",
        )
    elif not 1989 <= int(year) <= this_year:
        findings.error(
            None, None, f"調査年 {year} は範囲外です（1989〜{this_year}年）", "census year out of range"
        )
    small = store.read(Layer.SMALL_AREAS)
    update = areas.read_stats(table, path, small, findings)
    report.rows = len(update.values)
    existing = read_layer(store, HistoryLayer.HISTORY)
    if year is not None:
        built = existing[
            (pd.to_numeric(existing["fiscal_year"]) == int(year))
            & _mine(existing, access.municipality)
            & (existing["kind"].astype(str) == str(HistoryKind.BUILD))
        ]
        if len(built):
            findings.error(
                None,
                None,
                f"{year}年度にはカルテ作成時の記録があります。過去の国勢調査はそれより前の年度に"
                "取り込んでください",
                "that year has build rows",
            )
    _finish(report, findings)
    if report.problems:
        return prepared
    rows = census_rows(
        small, update.values, year=int(year), municipality=access.municipality, source=table.source
    )
    merged = history.merge_history(existing, rows, keep_analysis=False)
    report.changes = [_history_changes(existing, merged)]
    report.notes.append(f"{year}年度（{history.census_text(int(year))}）の記録: {len(rows) - 1} 地区と市全体")
    prepared.layers = {str(HistoryLayer.HISTORY): merged}
    return prepared


def census_rows(
    small: pd.DataFrame, values: pd.DataFrame, *, year: int, municipality: str, source: str
) -> pd.DataFrame:
    """History rows (kind ``census``) from census counts per small area, summed per district."""
    joined = values.join(small.set_index(small["key_code"].astype(str))["district_code"], how="left")
    fields = [
        c
        for c in (
            "population",
            "households",
            "age_0_14",
            "age_15_64",
            "age_65_74",
            "age_75_plus",
            "elderly_alone",
            "disabled",
        )
        if c in joined.columns
    ]
    sums = joined.groupby("district_code")[fields].sum(min_count=1)
    sources = {
        "fiscal_year": year,
        "items": [
            {
                "key": "census",
                "label": "人口・世帯",
                "source": "国勢調査",
                "as_of": dt.date(year, 10, 1).isoformat(),
                "year": year,
                "synthetic": False,
                "text": f"{history.census_text(year)}10月1日現在（{source}）",
                "line": f"人口・世帯: {history.census_text(year)}10月1日現在（{source}）",
            }
        ],
    }
    meta = {"data_date": dt.date(year, 10, 1).isoformat(), "census_year": str(year), "synthetic": "[]"}
    districts = []
    rows = []
    for code, r in sums.iterrows():
        figures = {f: (None if pd.isna(r[f]) else int(r[f])) for f in fields}
        if all(f in figures for f in ("age_65_74", "age_75_plus")) and None not in (
            figures["age_65_74"],
            figures["age_75_plus"],
        ):
            figures["elderly"] = figures["age_65_74"] + figures["age_75_plus"]
        figures = history.with_rates(figures)
        districts.append(figures)
        rows.append(
            history.history_row(
                municipality,
                str(code),
                year,
                HistoryKind.CENSUS,
                meta,
                year,
                False,
                figures,
                json.dumps(sources, ensure_ascii=False),
                _now(),
            )
        )
    city = history.city_figures(districts)
    for key in (
        "support_needers",
        "consent_shareable",
        "with_supporter",
        "plan_done",
        "plan_in_progress",
        "cooperators",
        "welfare_supporters",
        "supporters",
        "services",
        "salons",
    ):
        city[key] = None
    rows.append(
        history.history_row(
            municipality,
            history.CITY,
            year,
            HistoryKind.CENSUS,
            meta,
            year,
            False,
            history.with_rates(city),
            json.dumps(sources, ensure_ascii=False),
            _now(),
        )
    )
    return pd.DataFrame(rows, columns=list(history.HISTORY_COLUMNS))


def _history_changes(before: pd.DataFrame, after: pd.DataFrame) -> ChangeReport:
    report = ChangeReport(str(HistoryLayer.HISTORY))
    columns = ("figures", "kind", "census_year")

    def rows(frame):
        return {
            (str(r[MUNICIPALITY]), _district(r["district_code"]), int(r["fiscal_year"])): _signature(
                r, columns
            )
            for r in frame.to_dict("records")
        }

    _count_changes(report, rows(before), rows(after), lambda k: k[1])
    return report


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


for _record in (
    RecordKind(
        "plan",
        KINDS_JA["plan"],
        prepare_plan,
        write_layers,
        aliases=("plan-table", "annual-plan", "年次計画"),
    ),
    RecordKind(
        "indicators",
        KINDS_JA["indicators"],
        prepare_indicators,
        write_layers,
        aliases=("indicator-values", "活動指標"),
    ),
    RecordKind(
        "evaluations",
        KINDS_JA["evaluations"],
        prepare_evaluations,
        write_layers,
        aliases=("plan-evaluations", "評価"),
    ),
    RecordKind(
        "past-census",
        KINDS_JA["past-census"],
        prepare_census,
        write_layers,
        aliases=("history", "older-census", "過去の国勢調査"),
    ),
):
    register(_record)

__all__ = [
    "EVALUATION_JA",
    "SCOPE_JA",
    "indicator_layers",
    "plan_layers",
    "prepare_census",
    "prepare_evaluations",
    "prepare_indicators",
    "prepare_plan",
    "read_layer",
    "write_layers",
]
