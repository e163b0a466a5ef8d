"""Store administration behind ``karte db upgrade``, ``karte export`` and ``karte import``.

Plain functions (the command line registers them): migrate a PostGIS database, and copy every
layer of a store into a GeoPackage and back, losslessly. ``python -m karte.store.cli upgrade URL``
runs the migrations without the full command line (used by ``scripts/setup_postgis.sh``).
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import sys
from pathlib import Path

from karte.domain import copies, supporters
from karte.domain.access import Access, Level
from karte.domain.errors import StoreError
from karte.domain.layers import PERSONAL_LAYERS
from karte.domain.security import NOT_EXPORTED
from karte.store import gpkg_files, open_store
from karte.store.base import Store
from karte.store.gpkg import GeoPackageStore

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Layers an import of a store never writes: the security state (never exported either).
NOT_RESTORED = NOT_EXPORTED
#: The append-only ledgers (the hand-out ledger of copies, the supporters' points ledger): no
#: whole-layer write may replace their entries (PostGIS refuses the ``DELETE`` it would start
#: with), so an import loads them only into a store that has no entry of theirs yet.
APPEND_ONLY = copies.NOT_REPLACED | supporters.NOT_REPLACED


def alembic_config(url: str):
    """An Alembic configuration for ``url`` (no ``alembic.ini`` needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def db_upgrade(url: str, *, revision: str = "head") -> None:
    """Create or upgrade the karte schema in the PostGIS database at ``url`` (idempotent).

    ``url`` must be a role that may create schemas, tables and roles (the database owner), not the
    application role ``karte_app``.
    """
    from alembic import command
    from sqlalchemy.exc import DBAPIError

    if not str(url).startswith("postgresql"):
        raise StoreError("karte db upgrade には postgresql+psycopg:// の URL が必要です "
                         f"(got {_safe(url)!r})")
    from psycopg import errors as pgerrors

    try:
        command.upgrade(alembic_config(url), revision)
    except DBAPIError as exc:
        first = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
        if isinstance(exc.orig, pgerrors.InsufficientPrivilege):
            raise StoreError(f"データベースの更新に失敗しました ({_safe(url)}): 権限がありません。"
                             "karte db upgrade はデータベースの所有者 (スキーマとロールを作成できる"
                             "ロール) の URL で実行してください。"
                             f"アプリケーション用の karte_app ではできません ({first})") from exc
        raise StoreError(f"データベースの更新に失敗しました ({_safe(url)}): {first}") from exc


def db_head() -> str:
    """The newest schema revision this karte knows (what ``karte db upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def db_current(url: str) -> str | None:
    """The schema revision the database is at (``None`` before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from karte.store.postgis_models import SCHEMA  # PostGIS only: its imports cost 0.4 s

    if not str(url).startswith("postgresql"):
        raise StoreError(f"postgresql+psycopg:// の URL が必要です (got {_safe(url)!r})")
    try:
        engine = create_engine(url, poolclass=pool.NullPool)
    except ArgumentError as exc:
        raise StoreError(f"データベースの URL として読めません ({_safe(url)})") from exc
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(
                conn, opts={"version_table_schema": SCHEMA}).get_current_revision()
    except DBAPIError as exc:
        first = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
        raise StoreError(f"{_safe(url)} のスキーマを確認できません: {first}") from exc
    finally:
        engine.dispose()


def export_store(src: Store | str | Path, dest_gpkg: str | Path, *, access: Access | None = None) -> Path:
    """Copy every layer of ``src`` into the GeoPackage ``dest_gpkg`` (a new file that replaces
    any old one atomically: it holds exactly the store's layers).

    Personal layers keep their ``version``/``updated_at``/``updated_by`` columns so an import
    restores them; they are read as ``access`` (default: city staff as the OS user), so the store
    writes the export of personal rows to its access log with that user (route ``export`` unless
    ``access`` names one). The file is sealed (one self-contained file, no journal beside it),
    created with karte's creation mode (0600, or 0640 with ``KARTE_FILE_GROUP``) or, replacing an
    older export, with that file's mode and group (:mod:`karte.store.gpkg_files`). The copy is
    written in a locked scratch folder beside the destination: a writer killed midway leaves
    nothing that the next open of the destination does not remove. The security layers (sessions,
    login attempts: :data:`karte.domain.security.NOT_EXPORTED`) are left out. Returns the path.
    """
    store = _open(src)
    access = access or dataclasses.replace(_staff(), route="export")
    names = [n for n in store.layers() if n not in NOT_EXPORTED]
    if not names:
        raise StoreError(f"{store.location} は空です: 書き出すレイヤがありません")
    frames = {name: store.read_full(name, access=access) if name in PERSONAL_LAYERS else store.read(name)
              for name in names}
    # a fresh file, so the export holds exactly the store's layers, then swapped in atomically
    final = Path(dest_gpkg)
    with GeoPackageStore(final).staging() as staged:
        fresh = GeoPackageStore(staged)
        fresh.write(frames)
        fresh.seal()
        gpkg_files.apply(fresh.path, like=final)  # an older export's mode and group are kept
        os.replace(fresh.path, final)
    return final


def import_store(src_gpkg: str | Path, dest: Store | str | Path) -> Store:
    """Write every layer of the GeoPackage ``src_gpkg`` into ``dest`` in one atomic write (the
    layers of ``dest`` not in the file are left alone), on either store, but: the security layers
    (:data:`NOT_RESTORED`) are never written (the destination keeps its own sessions), and an
    append-only ledger (:data:`APPEND_ONLY`) is loaded only when the destination has no entry of
    it yet (a first restore, the demo into a new database); otherwise the destination keeps its
    own entries as they are. Returns the destination store."""
    source = GeoPackageStore(src_gpkg)
    if not source.exists():
        raise StoreError(f"ファイルがありません: {source.location}")
    target = _open(dest)
    present = set(target.layers())
    kept = {name for name in APPEND_ONLY if name in present and len(target.read(name))}
    # personal layers with their system columns (version, updated_at, updated_by): restored as they were
    frames = {name: source.read_full(name) if name in PERSONAL_LAYERS else source.read(name)
              for name in source.layers() if name not in NOT_RESTORED and name not in kept}
    if not frames:
        raise StoreError(f"{source.location} にレイヤがありません")
    target.write(frames)
    return target


def _open(target: Store | str | Path) -> Store:
    if isinstance(target, Store):
        return target
    return open_store(target)


def _staff() -> Access:
    return Access(user=getpass.getuser(), level=Level.CITY_STAFF)


def _safe(url) -> str:
    from karte.store.postgis import redact

    return redact(str(url))


def main(argv: list[str] | None = None) -> int:
    """``python -m karte.store.cli upgrade URL`` | ``current URL``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("upgrade", "current"):
        print("usage: python -m karte.store.cli upgrade|current URL", file=sys.stderr)
        return 2
    try:
        if args[0] == "upgrade":
            db_upgrade(args[1])
        print(f"schema revision: {db_current(args[1])}")
    except StoreError as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
