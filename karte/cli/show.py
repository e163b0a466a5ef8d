"""``karte show`` and ``karte districts``: read what the store holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from karte.cli.common import StoreOpt, cli_access, district_store, err, fail, out
from karte.districts import build_standin_mapping, write_mapping
from karte.domain.errors import KarteError
from karte.domain.layers import Layer
from karte.services.kartes import karte_view
from karte.settings import get_settings
from karte.sources import read_small_areas

districts_app = typer.Typer(help="District definitions (地区の定義).", no_args_is_help=True)


def show(
    district: Annotated[str, typer.Argument(help="District code, e.g. S05")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the karte as JSON")] = False,
    personal: Annotated[bool, typer.Option(
        help="Add the consented register and the cooperator roster (logged)")] = False,
) -> None:
    """Print one district's karte (base statistics, register summary, gaps, coverage, resources).

    With --personal, the register and roster rows you may see are added; the store writes that
    read to its access log under your user name.
    """
    try:
        karte = karte_view(district_store(store), district, cli_access("cli:show"), include_personal=personal,
                           include_trend=True)
    except KarteError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(karte, ensure_ascii=False, indent=1) + "\n")
        return
    _print_karte(karte)


def _fmt(v, pct=False):
    if v is None:
        return "—"
    return f"{v:.1%}" if pct else f"{v:,}"


def _print_karte(k: dict) -> None:
    d = k["district"]
    out.rule(f"{d['name']} ({d['code']})  {k['fiscal_year_label']}のカルテ")
    for line in (k.get("sources") or {}).get("lines", []):
        out.print(f"[dim]{line}[/dim]", highlight=False)
    if k["synthetic"]:
        out.print(f"[yellow]※合成データを含みます: {', '.join(k['synthetic'])}[/yellow]")
    if d.get("standin"):
        out.print("[yellow]※地区割りは代替（仮）です: 実際の地区社協の区域ではありません[/yellow]")
    t = Table(title="基礎情報", show_lines=False)
    for col in ("項目", "地区", "率・割合", "市全体", "市の率"):
        t.add_column(col, justify="right" if col != "項目" else "left")
    for m in k["base"]:
        rate = m.get("rate", m.get("share_of_city"))
        t.add_row(m["label"], _fmt(m["value"]), _fmt(rate, pct=True), _fmt(m["city"]),
                  _fmt(m.get("city_rate"), pct=True) if "city_rate" in m else "")
    out.print(t)
    r = k["register"]
    out.print(f"要支援者 {r['total']} 人（名簿提供可 {r['shareable']} 人、支援者あり "
              f"{r['with_supporter']} 人）: "
              + "、".join(f"{c['label']} {c['count']}" for c in r["by_consent"]))
    out.print("個別避難計画: " + "、".join(f"{c['label']} {c['count']}" for c in r["by_plan"]))
    c = k["cooperators"]
    out.print(f"共助協力者 {c['total']} 人: "
              + "、".join(f"{x['label']} {x['count']}" for x in c["by_role"] if x["count"]))
    if k.get("gaps"):
        t = Table(title="避難支援の空白")
        for col in ("空白の種類", "人数", "地区の割合", "市の割合"):
            t.add_column(col, justify="left" if col == "空白の種類" else "right")
        for g in k["gaps"]:
            t.add_row(g["label"], _fmt(g["count"]), _fmt(g["rate"], pct=True), _fmt(g["city_rate"], pct=True))
        out.print(t)
    cov = k.get("coverage")
    if cov:
        out.print(f"サロン（月1回以上） {cov['salons']} か所、"
                  f"徒歩圏外の高齢者 {_fmt(cov['uncovered_elderly'])} 人"
                  f"（{_fmt(cov['uncovered_elderly_share'], pct=True)}、市 "
                  f"{_fmt(cov['city_uncovered_elderly_share'], pct=True)}）")
    t = Table(title=f"共助サービス ({len(k['services'])} 件)")
    for col in ("種類", "名称", "会場", "頻度", "連絡先"):
        t.add_column(col)
    for s in k["services"]:
        t.add_row(s["kind_ja"], s["name"], s["venue"], s["frequency_ja"], s["contact"])
    out.print(t)
    welfare = sum(1 for s in k["shelters"] if s["welfare"])
    out.print(f"指定避難所 {len(k['shelters'])} か所（福祉避難所 {welfare}）、"
                      f"指定緊急避難場所 {k['emergency_sites']['count']} か所")
    _print_trend(k)
    if "personal" in k:
        t = Table(title="要支援者名簿（同意者のみ・取扱注意）")
        for col in ("氏名", "フリガナ", "住所", "要介護度", "支援者", "計画"):
            t.add_column(col)
        for p in k["personal"]["register"]:
            t.add_row(p["name"], p["kana"], p["address"], p["care_level"] or "",
                      "、".join(p["supporters"]), p["plan_ja"])
        out.print(t)


def _print_trend(k: dict) -> None:
    """The district's trend (rates beside the city's) and the projection of its elderly."""
    trend = k.get("trend") or {}
    years = trend.get("years", [])
    if years:
        t = Table(title="推移（かっこ内は市全体）")
        t.add_column("項目")
        for y in years:
            t.add_column(y["short"] + ("（合成）" if y["synthetic"] else ""), justify="right")
        for f in trend["figures"]:
            if f["key"] not in ("elderly_rate", "support_needers", "with_supporter_rate", "plan_done_rate",
                                "cooperators", "salons", "coverage_rate", "gap_rate"):
                continue
            pct = f["unit"] == "%"
            cells = [f"{_fmt(y['district'].get(f['key']), pct)}（{_fmt(y['city'].get(f['key']), pct)}）"
                     for y in years]
            t.add_row(f["label"], *cells)
        out.print(t)
        for note in trend.get("notes", []):
            out.print(f"[yellow]※{note}[/yellow]")
    rows = (k.get("projection") or {}).get("rows", [])
    if rows:
        out.print("高齢者（65歳以上）の見通し（推計）: "
                  + "、".join(f"{r['label']} {_fmt(r['elderly'])}人" for r in rows))


@districts_app.command("list")
def districts_list(store: StoreOpt = None) -> None:
    """List the districts in the store with their population."""
    try:
        table = district_store(store).read(Layer.KARTES)
    except KarteError as exc:
        fail(exc)
    t = Table(title="地区一覧")
    for col in ("コード", "地区名", "人口", "高齢化率"):
        t.add_column(col)
    for raw in table["karte_json"]:
        k = json.loads(raw)
        base = {m["key"]: m for m in k["base"]}
        t.add_row(k["district"]["code"], k["district"]["name"], _fmt(base["population"]["value"]),
                  _fmt(base["elderly"].get("rate"), pct=True))
    out.print(t)


@districts_app.command("standin")
def districts_standin(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the mapping CSV")] = Path(
        "data/districts/aomori_standin_districts.csv"),
    threshold: Annotated[float, typer.Option(help="Minimum population per district")] = 5500,
    seed: Annotated[int, typer.Option(help="Seed of the max-p heuristic")] = 20150,
) -> None:
    """Rebuild the stand-in district mapping from the real small areas (spopt max-p)."""
    settings = get_settings()
    try:
        small = read_small_areas(settings.data_dir / "boundaries"
                                 / "aomori_city_02201_small_areas_2015_estat_lod.geojson")
        with err.status("max-p 地区割りを計算中…"):
            mapping = build_standin_mapping(small, threshold=threshold, seed=seed)
        write_mapping(mapping, out_file)
    except KarteError as exc:
        fail(exc)
    out.print(f"{mapping['district_code'].nunique()} 地区を {out_file} に書き出しました")



