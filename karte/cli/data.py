"""``karte import``, ``karte export`` and ``karte db``: data in and out of the store.

``karte import KIND FILE`` is the command-line face of :func:`karte.importing.api.prepare_import`
and :func:`~karte.importing.api.apply_import`; ``karte import store BACKUP.gpkg`` restores a
GeoPackage written by ``karte export`` (:func:`karte.store.cli.import_store`): every layer of the
file replaces the store's layer of the same name, in one atomic write, so an export and this
import round-trip with nothing lost.
"""

from __future__ import annotations

import getpass
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from karte.cli.common import StoreOpt, fail, out, store_at
from karte.domain.access import Access, Level
from karte.domain.errors import InputError, KarteError
from karte.importing.api import ImportValidationError, apply_import, prepare_import
from karte.services.qgis import write_qgis
from karte.settings import get_settings
from karte.store import GeoPackageStore, open_store
from karte.store.cli import db_current, export_store, import_store
from karte.store.cli import db_upgrade as upgrade

#: Exit codes: 0 loaded / nothing to change / dry run; 1 the file has problems or cannot be read;
#: 3 the user declined the change; 4 an unexpected internal error (the store is unchanged);
#: 130 interrupted (the store is unchanged).
EXIT_OK, EXIT_ERROR, EXIT_DECLINED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 3, 4, 130

#: ``karte import store FILE.gpkg``: restore a whole store exported by ``karte export``.
STORE_KINDS = ("store", "gpkg", "geopackage", "backup", "export", "ストア")

HELP = {
    "kind": "register (要支援者名簿), cooperators (共助協力者), services (共助サービス), shelters (避難所), "
            "stats (小地域統計・e-Stat CSV), districts (地区の境界 GeoJSON/GeoPackage/zip Shapefile, "
            "または KEY_CODE→地区の表), store (karte export の GeoPackage をまるごと戻す)",
    "file": "CSV (UTF-8, UTF-8 BOM, Shift_JIS/CP932) or .xlsx; boundary files for districts",
    "store": "GeoPackage path or postgresql+psycopg:// URL (default: KARTE_DATABASE_URL, else "
             "WORKSPACE/karte.gpkg)",
    "district_map": "key_code,district_code,district_name CSV: assign rows to districts through their "
                    "small area instead of the store's district polygons",
    "sheet": "Worksheet of an .xlsx (default: the first), or layer of a GeoPackage",
    "dry_run": "Validate and report what would change; write nothing",
    "verbose": "Add the English text to every message",
    "yes": "Apply the changes without asking",
    "encoding": "Force the CSV encoding (utf-8, utf-8-sig, cp932) when detection is in doubt",
    "district": "Replace only the rows of this district (register, cooperators, services); other "
                "districts stay as they are",
    "mode": "replace (the file is the whole layer, or the whole --district) or upsert (add and "
            "update by id, delete nothing)",
    "allow_mass_delete": "Accept a file that deletes more than a fifth of the rows (of the district "
                         "with --district), or a header-only file",
}


def import_command(kind: str, file: Path, store: Path | str | None = None, district_map: Path | None = None,
                   sheet: str | None = None, dry_run: bool = False, verbose: bool = False,
                   yes: bool = False, *, encoding: str | None = None,
                   confirm: Callable[[str], bool] | None = None, district: str | None = None,
                   mode: str = "replace", allow_mass_delete: bool = False) -> int:
    """Import FILE of KIND into the karte store (名簿・協力者・サービス・避難所・小地域統計・地区).

    Every row is checked first; every problem is listed with its row and column and, if there is
    any, nothing is loaded. Otherwise the changes (added, removed, updated rows per district)
    are shown and, after confirmation (or with --yes), written in one atomic step: a crash or
    Ctrl-C leaves the previous data as it was. Loading the same file twice changes nothing.
    ``district`` replaces only that district's rows, ``mode="upsert"`` deletes nothing, and a
    file that deletes more than a fifth of the rows (or has none) needs ``allow_mass_delete``.
    KIND store restores a GeoPackage written by karte export (every layer, nothing lost).
    """
    out, err = sys.stdout, sys.stderr
    if str(kind).strip().lower() in STORE_KINDS:
        if sheet or district_map or encoding or district or mode != "replace" or allow_mass_delete:
            print("エラー: --sheet・--district-map・--encoding・--district・--mode・--allow-mass-delete は "
                  "store の取り込みには使えません", file=err)
            return EXIT_ERROR
        return _restore(Path(file), store, dry_run=dry_run, verbose=verbose, yes=yes, confirm=confirm)
    try:
        target = open_store(store)
        prepared = prepare_import(target, kind, Path(file), sheet=sheet, district_map=district_map,
                                  encoding=encoding, district=district, mode=mode,
                                  allow_mass_delete=allow_mass_delete)
    except ImportValidationError as exc:
        print(exc.report.format(verbose=verbose), file=err)
        return EXIT_ERROR
    except KarteError as exc:
        print(f"エラー: {exc}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("中断しました。ストアは変更していません。", file=err)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug, not the file: say so plainly, the store is untouched
        return _internal(exc, verbose=verbose)
    report = prepared.report
    if dry_run or not report.changed:
        report.dry_run = dry_run
        print(report.format(verbose=verbose), file=out)
        return EXIT_OK
    print(report.format(verbose=verbose), file=out)
    return _confirm_and_write("この変更をストアに書き込みますか?", lambda: apply_import(target, prepared),
                              target, yes=yes, confirm=confirm, verbose=verbose)


def _restore(file: Path, store, *, dry_run: bool, verbose: bool, yes: bool,
             confirm: Callable[[str], bool] | None) -> int:
    """``karte import store FILE.gpkg``: list what the file holds and which layers of the store it
    replaces (the store's rows are not read, so nothing personal is read or logged), then, after
    confirmation, :func:`karte.store.cli.import_store` writes every layer in one atomic write."""
    out, err = sys.stdout, sys.stderr
    try:
        if not file.exists():
            raise InputError(f"ファイルがありません: {file.name}")
        if file.suffix.lower() != ".gpkg":
            raise InputError(f"{file.name}: karte export の GeoPackage (.gpkg) を指定してください")
        source = GeoPackageStore(file)
        names = source.layers()
        if not names:
            raise InputError(f"{file.name}: レイヤがありません")
        target = open_store(store)
        present = set(target.layers())
        counts = {name: _layer_rows(source, name) for name in names}
    except KarteError as exc:
        print(f"エラー: {exc}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("中断しました。ストアは変更していません。", file=err)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _internal(exc, verbose=verbose)
    lines = [f"ストアの復元: {file.name} ({len(names)} レイヤ) → {target.location}"]
    for name in names:
        what = "置き換え" if name in present else "新規"
        lines.append(f"  {name:<16}{counts[name]:>8,} 行  ({what})")
    kept = sorted(present - set(names))
    if kept:
        lines.append(f"  ファイルにないレイヤはそのままです: {', '.join(kept)}")
    print("\n".join(lines), file=out)
    if dry_run:
        print("--dry-run のため書き込んでいません。", file=out)
        return EXIT_OK
    return _confirm_and_write("これらのレイヤをストアに書き込みますか?", lambda: import_store(file, target),
                              target, yes=yes, confirm=confirm, verbose=verbose)


def _confirm_and_write(question: str, write: Callable[[], object], target, *, yes: bool,
                       confirm: Callable[[str], bool] | None, verbose: bool) -> int:
    """Ask ``question`` (unless ``yes``), then ``write()`` in its one atomic step; every way out
    (declined, Ctrl-C, an error) says that the store is as it was."""
    out, err = sys.stdout, sys.stderr
    try:
        agreed = yes or (confirm or _ask)(question)
    except KeyboardInterrupt:
        print("\n中断しました。ストアは変更していません。", file=err)
        return EXIT_INTERRUPTED
    if not agreed:
        print("書き込みを取りやめました。ストアは変更していません。", file=out)
        return EXIT_DECLINED
    try:
        write()
    except KeyboardInterrupt:
        print("中断しました。ストアは以前のままです。", file=err)
        return EXIT_INTERRUPTED
    except KarteError as exc:
        print(f"エラー: {exc} (ストアは以前のままです)", file=err)
        return EXIT_ERROR
    except Exception as exc:
        return _internal(exc, verbose=verbose)
    print(f"ストア {target.location} に書き込みました。", file=out)
    return EXIT_OK


def _layer_rows(source: GeoPackageStore, layer: str) -> int:
    # through the store (Python's SQLite), never GDAL: see karte.store.gpkg on two SQLite libraries
    return len(source.read_records(layer))


def _internal(exc: BaseException, *, verbose: bool) -> int:
    """An unexpected error: a plain message (the exception's type only: its text may quote a
    cell); ``--verbose`` adds the traceback for whoever fixes it."""
    print(f"エラー: 取り込み中に予期しないエラーが起きました ({type(exc).__name__})。"
          "ストアは変更していません。--verbose を付けると詳細を表示します。", file=sys.stderr)
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    return EXIT_INTERNAL


def _ask(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        print("確認できません (対話端末ではありません)。書き込むには --yes を付けてください。",
              file=sys.stderr)
        return False
    try:
        answer = input(f"{question} [y/N] ").strip().lower()
    except EOFError:  # Ctrl-D: no
        return False
    return answer in ("y", "yes", "はい")


def import_(
    kind: Annotated[str, typer.Argument(
        help="register (要支援者名簿), cooperators (共助協力者), services (共助サービス), shelters "
             "(避難所), stats (小地域統計・e-Stat CSV), districts (地区の境界 or KEY_CODE→地区の表), "
             "store (karte export の GeoPackage を丸ごと); records: concerns (気になる世帯), meetings "
             "(地域セーフティネット会議), supporters (地域福祉サポーター), requests (支援の依頼), plan "
             "(計画の年次表), indicators (活動指標), evaluations (計画の評価), "
             "past-census (過去の国勢調査)")],
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
    district: Annotated[str | None, typer.Option(
        "--district", help="Replace only this district's rows (register, cooperators, services); "
                           "a row of another district in the file is an error")] = None,
    mode: Annotated[str, typer.Option(
        "--mode", help="replace (default: the file is the whole layer or --district) or upsert "
                       "(add and update by id, delete nothing)")] = "replace",
    upsert: Annotated[bool, typer.Option("--upsert", help="Same as --mode upsert")] = False,
    allow_mass_delete: Annotated[bool, typer.Option(
        "--allow-mass-delete", help="Accept deleting more than a fifth of the rows (of the district), "
                                    "or a header-only file")] = False,
) -> None:
    """Import a file into the store (名簿・協力者・サービス・避難所・小地域統計・地区・ストア).

    Every row is checked first and every problem listed with its row and column; if there is
    any, nothing is loaded. Otherwise the changes (added, removed, updated rows per district) are
    shown and, after confirmation (or --yes), written in one atomic step. Loading the same file
    twice changes nothing. ``--district D`` replaces only D's rows; ``--mode upsert`` adds and
    updates, deleting nothing; a file deleting over a fifth of the rows, or with no row, is
    refused without ``--allow-mass-delete``. KIND ``store`` loads a GeoPackage written by
    ``karte export``.
    """
    code = import_command(kind, file, store, district_map, sheet, dry_run, verbose, yes, encoding=encoding,
                          district=district, mode="upsert" if upsert else mode,
                          allow_mass_delete=allow_mass_delete)
    if code:
        raise typer.Exit(code)


def export(
    out_file: Annotated[Path, typer.Argument(metavar="OUT",
                                             help="GeoPackage to write (replaced atomically)")],
    store: StoreOpt = None,
) -> None:
    """Export every layer of the store to one GeoPackage (opens in QGIS).

    ``karte import store FILE`` reads it back with nothing lost. The export of personal rows is
    written to the access log.
    """
    try:
        # the whole store, unconsented rows included: what city staff may take (logged as them)
        path = export_store(store_at(store), out_file,
                            access=Access(getpass.getuser(), Level.CITY_STAFF, route="cli:export"))
        write_qgis(path)  # QGIS styles and the project "karte" inside the file
    except KarteError as exc:
        fail(exc)
    out.print(f"書き出しました: {path}")
    out.print("QGIS のスタイルとプロジェクト「karte」付き（docs/qgis.md）")
    out.print("[yellow]取扱注意: 個人情報（要支援者名簿・協力者の連絡先）を含みます。[/yellow]")


# --- PostGIS schema --------------------------------------------------------------------------

db_app = typer.Typer(help="PostGIS database schema (データベース).", no_args_is_help=True)

DbUrl = Annotated[str | None, typer.Argument(
    help="postgresql+psycopg:// URL of the database owner (default: KARTE_DATABASE_URL)")]


def _db_url(url: str | None) -> str:
    url = url or get_settings().database_url
    if not url:
        fail(KarteError("データベースの URL がありません (引数か KARTE_DATABASE_URL で指定)"))
    return url


@db_app.command("upgrade")
def db_upgrade(url: DbUrl = None) -> None:
    """Create or upgrade the karte schema (tables, indexes, roles, row-level security).

    Idempotent: run it again and nothing changes. Needs the database owner, not karte_app.
    """
    url = _db_url(url)
    try:
        upgrade(url)
        out.print(f"スキーマのリビジョン: {db_current(url)}")
    except KarteError as exc:
        fail(exc)


@db_app.command("current")
def db_current_(url: DbUrl = None) -> None:
    """Print the schema revision the database is at."""
    try:
        out.print(f"スキーマのリビジョン: {db_current(_db_url(url)) or '（未作成）'}")
    except KarteError as exc:
        fail(exc)


