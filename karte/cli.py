"""The ``karte`` command line.

Every command that reads or writes the store takes ``--store`` (a GeoPackage path, or a
``postgresql+psycopg://`` URL); the default is ``KARTE_DATABASE_URL`` when set, else the
workspace's ``karte.gpkg``. Errors are printed in Japanese and exit with status 1.
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from karte.domain.errors import KarteError, ValidationError
from karte.settings import get_settings
from karte.users import users_app

app = typer.Typer(
    help="地区カルテ (district karte): build and show the district kartes of Aomori city.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
districts_app = typer.Typer(help="District definitions (地区の定義).", no_args_is_help=True)
app.add_typer(districts_app, name="districts")
app.add_typer(users_app, name="users")

out_console = Console()
err = Console(stderr=True)

STEP_JA = {
    "read_boundaries": "小地域境界の読み込み",
    "age_bands": "年齢構成",
    "districts": "地区の組み立て",
    "read_shelters": "避難所の読み込み",
    "synthetic_data": "デモデータ（合成）の生成",
    "read_store": "名簿・資源の読み込み",
    "base_stats": "基礎情報の集計",
    "assemble": "カルテの作成",
    "write_store": "ストアへの保存",
}

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="GeoPackage path or postgresql+psycopg:// URL "
                                 "(default: KARTE_DATABASE_URL, else WORKSPACE/karte.gpkg)"),
]


def _fail(exc: Exception, verbose: bool = False) -> None:
    if isinstance(exc, ValidationError):
        err.print(f"[red]エラー:[/red] {exc.format(verbose=verbose)}", markup=True, highlight=False)
    else:
        err.print(f"[red]エラー:[/red] {exc}", markup=True, highlight=False)
    raise typer.Exit(1)


def _store(store: str | None):
    from karte.store import open_store

    return open_store(store)


class _StepProgress:
    def __init__(self, total: int):
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                 console=err, transient=False)
        self.task = self.progress.add_task("準備中", total=total)
        self.started = False

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if not any(exc):
            self.progress.update(self.task, completed=self.progress.tasks[0].total,
                                 description="完了")
        return self.progress.__exit__(*exc)

    def __call__(self, step: str) -> None:
        if self.started:
            self.progress.advance(self.task)
        self.started = True
        self.progress.update(self.task, description=STEP_JA.get(step, step))


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the workspace)")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the synthetic data")] = None,
    basemap: Annotated[str, typer.Option(help="gsi_pale (GSI 淡色地図) or none")] = "gsi_pale",
) -> None:
    """Build the whole Aomori demo: karte.gpkg, overview.html and one karte JSON per district.

    Boundaries, shelters and emergency sites are real; age bands, elderly living alone,
    disabled persons, the register, cooperators and services are synthetic (marked so).
    """
    from karte.build import Inputs, build_demo, write_outputs
    from karte.store import GeoPackageStore

    settings = get_settings()
    folder = out or settings.workspace
    try:
        store = GeoPackageStore(folder / "karte.gpkg")
        with _StepProgress(8) as progress:
            result = build_demo(store, Inputs.shipped(settings.data_dir),
                                seed=seed if seed is not None else settings.seed, report=progress)
        files = write_outputs(result, folder, basemap=basemap)
    except KarteError as exc:
        _fail(exc)
    out_console.print(f"地区数 {len(result.kartes)}、人口 {int(result.city['population']):,} 人、"
                      f"要支援者 {int(result.city['support_needers']):,} 人（合成）")
    out_console.print(f"ストア:     {store.location}")
    out_console.print(f"全体図:     {files['overview']}")
    out_console.print(f"カルテJSON: {files['kartes']}/ ({len(result.kartes)} 件)")


@app.command()
def build(
    store: StoreOpt = None,
    district_map: Annotated[Path | None, typer.Option(
        help="Small-area -> district CSV (key_code,district_code,district_name)")] = None,
    district_polygons: Annotated[Path | None, typer.Option(
        help="District polygons (GeoJSON, GeoPackage, Shapefile); statistics are apportioned "
             "by areal interpolation")] = None,
    code_field: Annotated[str, typer.Option(help="District code field of --district-polygons")]
    = "district_code",
    name_field: Annotated[str, typer.Option(help="District name field of --district-polygons")]
    = "district_name",
    age_table: Annotated[Path | None, typer.Option(
        help="e-Stat small-area age CSV (CP932, two header rows); else synthetic age bands")] = None,
    boundaries: Annotated[Path | None, typer.Option(help="Small-area boundaries (e-Stat LOD GeoJSON)")]
    = None,
) -> None:
    """Rebuild every karte from the inputs, keeping the register, cooperators and services
    already in the store."""
    from karte.build import Inputs, rebuild

    settings = get_settings()
    if district_map and district_polygons:
        _fail(KarteError("--district-map と --district-polygons は同時に指定できません"))
    try:
        target = _store(store)
        if not target.exists():
            raise KarteError(f"ストア {target.location} がありません。"
                             "先に karte demo か karte import を実行してください")
        inputs = Inputs.shipped(settings.data_dir, district_map=district_map,
                                district_polygons=district_polygons, age_table=age_table,
                                boundaries=boundaries, district_code_field=code_field,
                                district_name_field=name_field)
        with _StepProgress(9) as progress:
            result = rebuild(target, inputs, seed=settings.seed, report=progress)
    except KarteError as exc:
        _fail(exc)
    out_console.print(f"{len(result.kartes)} 地区のカルテを更新しました ({target.location})")


@app.command()
def show(
    district: Annotated[str, typer.Argument(help="District code, e.g. S05")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the karte as JSON")] = False,
    personal: Annotated[bool, typer.Option(
        help="Add the consented register and the cooperator roster (logged)")] = False,
) -> None:
    """Print one district's karte (base statistics, register summary, resources)."""
    from karte.assemble import personal_section
    from karte.build import read_karte
    from karte.domain.layers import Layer

    try:
        target = _store(store)
        karte = read_karte(target, district)
        if personal:
            reg = target.read(Layer.REGISTER, district=district)
            coop = target.read(Layer.COOPERATORS, district=district)
            karte["personal"] = personal_section(reg, coop)
            target.audit(actor=getpass.getuser(), route="cli:show", layer="register+cooperators",
                         district=district, rows=len(karte["personal"]["register"])
                         + len(karte["personal"]["cooperators"]))
    except KarteError as exc:
        _fail(exc)
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
    out_console.rule(f"{d['name']} ({d['code']})  {k['fiscal_year_label']}  データ時点 {k['data_date']}")
    if k["synthetic"]:
        out_console.print(f"[yellow]※合成データを含みます: {', '.join(k['synthetic'])}[/yellow]")
    if d.get("standin"):
        out_console.print("[yellow]※地区割りは代替（仮）です: 実際の地区社協の区域ではありません[/yellow]")
    t = Table(title="基礎情報", show_lines=False)
    for col in ("項目", "地区", "率・割合", "市全体", "市の率"):
        t.add_column(col, justify="right" if col != "項目" else "left")
    for m in k["base"]:
        rate = m.get("rate", m.get("share_of_city"))
        t.add_row(m["label"], _fmt(m["value"]), _fmt(rate, pct=True), _fmt(m["city"]),
                  _fmt(m.get("city_rate"), pct=True) if "city_rate" in m else "")
    out_console.print(t)
    r = k["register"]
    out_console.print(f"要支援者 {r['total']} 人（名簿提供可 {r['shareable']} 人、支援者あり "
                      f"{r['with_supporter']} 人）: "
                      + "、".join(f"{c['label']} {c['count']}" for c in r["by_consent"]))
    out_console.print("個別避難計画: " + "、".join(f"{c['label']} {c['count']}" for c in r["by_plan"]))
    c = k["cooperators"]
    out_console.print(f"共助協力者 {c['total']} 人: "
                      + "、".join(f"{x['label']} {x['count']}" for x in c["by_role"] if x["count"]))
    t = Table(title=f"共助サービス ({len(k['services'])} 件)")
    for col in ("種類", "名称", "会場", "頻度", "連絡先"):
        t.add_column(col)
    for s in k["services"]:
        t.add_row(s["kind_ja"], s["name"], s["venue"], s["frequency_ja"], s["contact"])
    out_console.print(t)
    welfare = sum(1 for s in k["shelters"] if s["welfare"])
    out_console.print(f"指定避難所 {len(k['shelters'])} か所（福祉避難所 {welfare}）、"
                      f"指定緊急避難場所 {k['emergency_sites']['count']} か所")
    if "personal" in k:
        t = Table(title="要支援者名簿（同意者のみ・取扱注意）")
        for col in ("氏名", "フリガナ", "住所", "要介護度", "支援者", "計画"):
            t.add_column(col)
        for p in k["personal"]["register"]:
            t.add_row(p["name"], p["kana"], p["address"], p["care_level"] or "",
                      "、".join(p["supporters"]), p["plan_ja"])
        out_console.print(t)


@districts_app.command("list")
def districts_list(store: StoreOpt = None) -> None:
    """List the districts in the store with their population."""
    from karte.domain.layers import Layer

    try:
        table = _store(store).read(Layer.KARTES)
    except KarteError as exc:
        _fail(exc)
    t = Table(title="地区一覧")
    for col in ("コード", "地区名", "人口", "高齢化率"):
        t.add_column(col)
    for raw in table["karte_json"]:
        k = json.loads(raw)
        base = {m["key"]: m for m in k["base"]}
        t.add_row(k["district"]["code"], k["district"]["name"], _fmt(base["population"]["value"]),
                  _fmt(base["elderly"].get("rate"), pct=True))
    out_console.print(t)


@districts_app.command("standin")
def districts_standin(
    out: Annotated[Path, typer.Option(help="Where to write the mapping CSV")] = Path(
        "data/districts/aomori_standin_districts.csv"),
    threshold: Annotated[float, typer.Option(help="Minimum population per district")] = 5500,
    seed: Annotated[int, typer.Option(help="Seed of the max-p heuristic")] = 20150,
) -> None:
    """Rebuild the stand-in district mapping from the real small areas (spopt max-p)."""
    from karte.districts import build_standin_mapping, write_mapping
    from karte.sources import read_small_areas

    settings = get_settings()
    try:
        small = read_small_areas(settings.data_dir / "boundaries"
                                 / "aomori_city_02201_small_areas_2015_estat_lod.geojson")
        with err.status("max-p 地区割りを計算中…"):
            mapping = build_standin_mapping(small, threshold=threshold, seed=seed)
        write_mapping(mapping, out)
    except KarteError as exc:
        _fail(exc)
    out_console.print(f"{mapping['district_code'].nunique()} 地区を {out} に書き出しました")



# --- import / export -----------------------------------------------------------------------

@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(
        help="register (要支援者名簿), cooperators (共助協力者), services (共助サービス), shelters "
             "(避難所), stats (小地域統計・e-Stat CSV), districts (地区の境界 or KEY_CODE→地区の表), "
             "store (karte export の GeoPackage を丸ごと)")],
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8, UTF-8 BOM, CP932) or .xlsx; boundary files "
                                              "(GeoJSON, GeoPackage, zipped Shapefile) for districts")],
    store: StoreOpt = None,
    district_map: Annotated[Path | None, typer.Option(
        "--district-map", help="key_code,district_code,district_name CSV: assign rows to districts "
                               "through their small area")] = None,
    sheet: Annotated[str | None, typer.Option(help="Worksheet of an .xlsx (default: the first)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; write nothing")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Add English to every message")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply the changes without asking")] = False,
    encoding: Annotated[str | None, typer.Option(
        help="Force the CSV encoding (utf-8, utf-8-sig, cp932) when detection is in doubt")] = None,
) -> None:
    """Import a file into the store (名簿・協力者・サービス・避難所・小地域統計・地区・ストア).

    Every row is checked first and every problem listed with its row and column; if there is
    any, nothing is loaded. Otherwise the changes (added, removed, updated rows per district) are
    shown and, after confirmation (or --yes), written in one atomic step. Loading the same file
    twice changes nothing. KIND ``store`` loads a GeoPackage written by ``karte export``.
    """
    from karte.importing.cli import import_command

    code = import_command(kind, file, store, district_map, sheet, dry_run, verbose, yes, encoding=encoding)
    if code:
        raise typer.Exit(code)


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="GeoPackage to write (replaced atomically)")],
    store: StoreOpt = None,
) -> None:
    """Export every layer of the store to one GeoPackage (opens in QGIS).

    ``karte import store FILE`` reads it back with nothing lost. The export of personal rows is
    written to the access log.
    """
    from karte.store.cli import export_store

    try:
        path = export_store(_store(store), out)
    except KarteError as exc:
        _fail(exc)
    out_console.print(f"書き出しました: {path}")
    out_console.print("[yellow]取扱注意: 個人情報（要支援者名簿・協力者の連絡先）を含みます。[/yellow]")


# --- PostGIS schema --------------------------------------------------------------------------

db_app = typer.Typer(help="PostGIS database schema (データベース).", no_args_is_help=True)
app.add_typer(db_app, name="db")

DbUrl = Annotated[str | None, typer.Argument(
    help="postgresql+psycopg:// URL of the database owner (default: KARTE_DATABASE_URL)")]


def _db_url(url: str | None) -> str:
    url = url or get_settings().database_url
    if not url:
        _fail(KarteError("データベースの URL がありません (引数か KARTE_DATABASE_URL で指定)"))
    return url


@db_app.command("upgrade")
def db_upgrade(url: DbUrl = None) -> None:
    """Create or upgrade the karte schema (tables, indexes, roles, row-level security).

    Idempotent: run it again and nothing changes. Needs the database owner, not karte_app.
    """
    from karte.store.cli import db_current
    from karte.store.cli import db_upgrade as upgrade

    url = _db_url(url)
    try:
        upgrade(url)
        out_console.print(f"スキーマのリビジョン: {db_current(url)}")
    except KarteError as exc:
        _fail(exc)


@db_app.command("current")
def db_current_(url: DbUrl = None) -> None:
    """Print the schema revision the database is at."""
    from karte.store.cli import db_current

    try:
        out_console.print(f"スキーマのリビジョン: {db_current(_db_url(url)) or '（未作成）'}")
    except KarteError as exc:
        _fail(exc)


# --- printed sheets and the web -------------------------------------------------------------

@app.command()
def sheets(
    districts: Annotated[list[str] | None, typer.Argument(help="District codes, e.g. S01 S05")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every district, and one merged PDF with "
                                                     "a table of contents")] = False,
    edition: Annotated[str, typer.Option(help="public (公開版), confidential (取扱注意: 同意者の名簿), "
                                              "drill (訓練用: 支援者別・避難所別)")] = "public",
    paper: Annotated[str, typer.Option(help="A4 or A3")] = "A4",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: WORKSPACE/sheets)")] = None,
    store: StoreOpt = None,
    user: Annotated[str | None, typer.Option(help="Who prints (on every page of the personal "
                                                  "editions and in the access log)")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
) -> None:
    """Print district sheets (地区シート) as PDF: one per district, for meetings and drills."""
    from karte.sheets_cli import sheets_command

    code = sheets_command(districts or [], all_, edition, paper, out, store, user or getpass.getuser(),
                          workers=workers, console=err)
    if code:
        raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    store: StoreOpt = None,
) -> None:
    """Serve the web maps and the API (FastAPI on uvicorn): 地区の地図・カルテ・API.

    The embedded store by default; PostGIS when --store or KARTE_DATABASE_URL is a
    postgresql+psycopg:// URL.
    """
    import os

    import uvicorn

    if store:
        # the app reads its store from the settings (environment), like every other command
        key = "KARTE_DATABASE_URL" if store.startswith("postgresql") else "KARTE_STORE"
        os.environ[key] = store
    out_console.print(f"http://{host}:{port}/ で公開します (Ctrl-C で終了)")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info")


if __name__ == "__main__":  # pragma: no cover
    app()
