"""The PostGIS store: every layer a table in the ``karte`` schema, personal rows behind row-level
security, every read and write of them in an append-only access log.

Selected by one setting: ``KARTE_DATABASE_URL=postgresql+psycopg://karte_app:…@host/db``. The
application connects as ``karte_app``, a login that is no superuser, cannot bypass row-level
security and owns nothing; it holds no rights of its own. Each transaction takes the access level
of the acting user (``set_config('role', 'karte_<level>', true)``, which is ``SET LOCAL ROLE``) and
sets the user, district and municipality with ``set_config(…, is_local => true)``, so nothing
survives the transaction and a pooled connection cannot carry one user's rights into the next
request. Every call runs its whole transaction as the user it is given (``access``): the
database, not this module, decides which rows that user reads and writes, within the user's
municipality only (``municipality_code``). Without one, a call acts as the store's own trusted
user (the build pipeline and the command line: role ``karte_pipeline``, city staff of every
municipality), unlogged; a server binds each request's user with :meth:`PostGISStore.as_user` or
passes it to every call.

* :meth:`PostGISStore.write` replaces layers in one transaction (atomic), bulk-loaded with ``COPY``
  (layers under row-level security, the personal and the record layers, through a temporary table
  and one ``INSERT … SELECT`` that the policies check); only city staff replace a personal layer.
* Row calls (:meth:`~PostGISStore.append_rows`, :meth:`~PostGISStore.read_row`,
  :meth:`~PostGISStore.update_row`, :meth:`~PostGISStore.delete_row`) work on every layer with
  row versions, from the layer registry alone: ids of appended rows come from a sequence per
  record layer, edits are optimistic (``version``), and each call writes its access-log row in
  the transaction that does the work (both or neither). A row is addressed by its key within the
  user's municipality (keys repeat across municipalities); an appended row without
  ``municipality_code`` gets the user's, and row-level security refuses one of another municipality.
* :meth:`PostGISStore.stamp` is the id of the last transaction that wrote a snapshot layer, set by
  a trigger in the database (so raw SQL and other processes change it too).
* Spatial joins run in the database (:meth:`PostGISStore.locate`), on the GiST indexes.

The schema comes from the Alembic migrations (``karte db upgrade``, :func:`karte.store.cli.db_upgrade`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import getpass
import json
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from pandas.api import types as ptypes
from psycopg import errors as pgerrors
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from karte.domain.access import LEVEL_JA, Access, Level
from karte.domain.errors import AccessDenied, ConflictError, KarteError, NotFoundError, StoreError
from karte.domain.layers import LAYERS, MUNICIPALITY, PERSONAL_LAYERS, LayerSpec
from karte.domain.security import UNLOGGED
from karte.store.base import (
    AUDIT_ACTIONS,
    AUDIT_COLUMNS,
    DATABASE_RLS,
    ROWS,
    SPATIAL_SQL,
    Store,
    frame_records,
)
from karte.store.postgis_models import (
    LAYER_MODELS,
    PERSONAL_MODELS,
    SCHEMA,
    SRID,
    SYSTEM_COLUMNS,
    attribute_columns,
    has_geometry,
    id_sequence,
    versioned,
)

#: The database role of each access level.
ROLE_OF = {level: f"karte_{level.value}" for level in Level}
#: The role of the store's own trusted user (no ``access``: the build pipeline, imports, restores,
#: the command line): city staff of every municipality, so a whole-layer write holds whatever
#: municipality codes its frames carry and a read returns every municipality's rows.
PIPELINE_ROLE = "karte_pipeline"
#: The login role the application connects as.
APP_ROLE = "karte_app"
_WRITE_LOCK = 0x6B61727466  # serialises writers: two replacements of a layer never interleave
#: Class of the per-layer advisory locks (with ``hashtext(layer)``): appends to a record layer share
#: it, a replacement of the layer takes it alone, so appended rows are either replaced or kept
#: whole and the replacement's ids never race the sequence.
_LAYER_LOCK = 0x6B617274
_GEOM_KINDS = {"POINT": {0}, "MULTIPOLYGON": {3, 6}}  # shapely type ids a typed column accepts


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: say so without echoing it
        return "<invalid URL>"


class PostGISStore(Store):
    """The karte layers in PostGIS.

    Parameters
    ----------
    url
        ``postgresql+psycopg://karte_app:password@host:port/database`` (``postgresql://`` also works).
    access
        The acting user when a call passes none (its personal reads and writes are logged). Without
        it, the store's own trusted user acts: the OS user as city staff, unlogged (the build
        pipeline and the command line). A server passes each request's own :class:`Access`.
    pool_size
        Connections kept open in the pool.
    """

    capabilities = frozenset({ROWS, DATABASE_RLS, SPATIAL_SQL})

    def __init__(self, url: str, *, access: Access | None = None, pool_size: int = 5, _shared=None):
        self.url = str(url)
        self.location = redact(self.url)
        self.access = access or Access(user=getpass.getuser(), level=Level.CITY_STAFF)
        self._bound = access is not None
        self._shared = _shared or _Shared(create_engine(
            _driver_url(self.url), pool_size=pool_size, max_overflow=pool_size * 2,
            pool_pre_ping=True, connect_args={"application_name": "karte"}))

    def as_user(self, access: Access) -> PostGISStore:
        """The same store (and connection pool) acting as ``access`` by default."""
        return PostGISStore(self.url, access=access, _shared=self._shared)

    def close(self) -> None:
        """Close the pooled connections (and the stamp's)."""
        self._shared.close_stamp()
        self._shared.engine.dispose()

    def __enter__(self) -> PostGISStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- whole layers ----------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self.layers())

    def layers(self) -> list[str]:
        with self._tx(self._anyone()) as cur:
            if not _migrated(cur):
                return []
            cur.execute(f"SELECT layer FROM {SCHEMA}.layer_catalog ORDER BY position")
            return [r[0] for r in cur.fetchall()]

    def read(self, layer: str, *, district: str | None = None, municipality: str | None = None,
             access: Access | None = None) -> pd.DataFrame:
        acting, logged = self._acting(access)
        return self._read(str(layer), district=district, municipality=municipality, access=acting,
                          logged=logged, system=False)

    def read_records(self, layer: str, *, district: str | None = None, municipality: str | None = None,
                     access: Access | None = None, match: Mapping[str, object] | None = None) -> list[dict]:
        acting, logged = self._acting(access)
        frame = self._read(str(layer), district=district, municipality=municipality, access=acting,
                           logged=logged, system=False, match=match)
        return frame_records(frame)

    def read_full(self, layer: str, *, access: Access | None = None) -> pd.DataFrame:
        """:meth:`read` plus, on layers with row versions, the store's ``version``, ``updated_at``
        and ``updated_by`` columns (what an export must carry to be restored exactly)."""
        acting, logged = self._acting(access)
        return self._read(str(layer), district=None, municipality=None, access=acting, logged=logged,
                          system=True)

    def write(self, layers: Mapping[str, pd.DataFrame], *, access: Access | None = None) -> None:
        acting, logged = self._acting(access)
        names = [str(name) for name in layers]
        personal = [name for name in names if name in PERSONAL_LAYERS]
        if personal and acting.level != Level.CITY_STAFF:
            raise AccessDenied(f"{self.location}: 個人情報のレイヤ（{', '.join(personal)}）を置き換えられる"
                               f"のは市職員だけです（{LEVEL_JA[acting.level]}として）。何も書き込んでいません")
        prepared, problems = [], []
        for name, frame in layers.items():
            prepared.append(_prepare(str(name), frame, problems))
        if problems:
            raise StoreError(f"{self.location} に書き込めません。何も書き込んでいません:\n"
                             + "\n".join(problems))
        with self._tx(acting, trusted=not logged) as cur:
            _require_schema(cur, self.location)
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            for name in sorted(n for n in names if n in LAYERS and LAYERS[n].records):
                cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LAYER_LOCK, name))
            for layer in prepared:
                _replace(cur, layer, actor=acting.user)
                if logged and layer.personal:
                    _log(cur, acting, layer.layer, None, len(layer.rows), "write")

    def stamp(self) -> str:
        """The id of the last transaction that wrote a snapshot layer (a trigger in the database
        sets it, in that transaction); ``""`` before the first such write or on a database that is
        not migrated. One statement, one round trip, as the least privileged role (every web
        request asks: :meth:`_Shared.stamp`)."""
        try:
            return self._shared.stamp(self.location)
        except pgerrors.Error as exc:
            raise _store_error(exc, self.location, self._anyone(), None) from exc

    # -- rows ------------------------------------------------------------------------------------

    def append_rows(self, layer: str, rows: Sequence[Mapping[str, object]], *,
                    access: Access) -> list[dict]:
        layer, entry_spec = str(layer), _row_layer(str(layer))
        rows = [dict(row) for row in rows]
        if not rows:
            return []
        for row in rows:  # a row without its municipality is the user's (RLS refuses another)
            if row.get(MUNICIPALITY) in (None, ""):
                row[MUNICIPALITY] = access.municipality
        with self._tx(access, layer=layer) as cur:
            _require_schema(cur, self.location)
            cur.execute("SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))", (_LAYER_LOCK, layer))
            entry = _entry(cur, layer, self.location, opening=entry_spec)
            values = _row_values(entry_spec, entry, rows)
            if (access.level == Level.DISTRICT_MEMBER and entry_spec.id_prefix and entry_spec.district_column
                    and self._shared.sealed):
                # the database numbers a district member's rows (migration 0010): a key they chose
                # could meet a row they cannot see, and the refusal would tell them it exists
                values[entry_spec.key] = [None] * len(rows)
                stored = _insert(cur, entry, values, actor=access.user)  # in the order given
            else:
                _assign_ids(cur, entry_spec, values[entry_spec.key])
                stored = _insert(cur, entry, values, actor=access.user)
                by_key = {row[entry_spec.key]: row for row in stored}
                stored = [by_key[key] for key in values[entry_spec.key]]
            for district, n in _per_district(entry_spec, stored).items() if _logged(layer) else ():
                _log(cur, access, layer, district, n, "append")
        return stored

    def read_row(self, layer: str, key: str, *, access: Access) -> dict:
        layer, entry_spec = str(layer), _row_layer(str(layer))
        with self._tx(access, snapshot=True, layer=layer) as cur:
            entry = _entry(cur, layer, self.location)
            if access.sees_personal or not entry_spec.personal:
                found = _records(_select(cur, layer, entry, where=[(entry_spec.key, key)],
                                         municipality=access.municipality, system=True))
            else:  # the public has no privilege on personal tables: nothing to find
                found = []
            district = next(iter(_per_district(entry_spec, found)), access.district)
            if _logged(layer):
                _log(cur, access, layer, district, len(found), "read")
        if not found:
            raise NotFoundError(f"{_label(layer)}に指定の行はありません（または閲覧の権限がありません）")
        return found[0]

    def update_row(self, layer: str, key: str, changes: Mapping[str, object], *, version: int,
                   access: Access) -> int:
        layer, entry_spec = str(layer), _row_layer(str(layer))
        with self._tx(access, layer=layer) as cur:
            entry = _entry(cur, layer, self.location)
            assignments, params = _assignments(entry_spec, entry, changes)
            cur.execute(sql.SQL("UPDATE {t} SET {a} WHERE {k} = %s AND {m} AND version = %s "
                                "RETURNING version, {d}")
                        .format(t=sql.Identifier(SCHEMA, layer), a=assignments,
                                k=sql.Identifier(entry_spec.key), m=_same_municipality(entry_spec),
                                d=_district_field(entry_spec, entry)),
                        [*params, key, access.municipality, access.municipality, int(version)])
            hit = cur.fetchone()
            if hit is None:
                raise _missing_or_conflict(cur, entry_spec, key, version, access.municipality)
            if _logged(layer):
                _log(cur, access, layer, hit[1], 1, "update")
        return int(hit[0])

    def delete_row(self, layer: str, key: str, *, version: int, access: Access) -> None:
        layer, entry_spec = str(layer), _row_layer(str(layer))
        with self._tx(access, layer=layer) as cur:
            entry = _entry(cur, layer, self.location)
            cur.execute(sql.SQL("DELETE FROM {t} WHERE {k} = %s AND {m} AND version = %s "
                                "RETURNING {d}").format(
                t=sql.Identifier(SCHEMA, layer), k=sql.Identifier(entry_spec.key),
                m=_same_municipality(entry_spec), d=_district_field(entry_spec, entry)),
                [key, access.municipality, access.municipality, int(version)])
            hit = cur.fetchone()
            if hit is None:
                raise _missing_or_conflict(cur, entry_spec, key, version, access.municipality)
            if _logged(layer):
                _log(cur, access, layer, hit[0], 1, "delete")

    # -- the access log --------------------------------------------------------------------------

    def audit(self, *, access: Access, layer: str, district: str | None, rows: int,
              action: str = "read") -> None:
        if action not in AUDIT_ACTIONS:
            raise ValueError(f"action should be one of {AUDIT_ACTIONS}, got {action!r}")
        with self._tx(access) as cur:
            _log(cur, access, str(layer), district, int(rows), action)

    def audit_log(self) -> pd.DataFrame:
        with self._tx(self.access) as cur:
            cur.execute(sql.SQL("SELECT {} FROM {} ORDER BY id").format(
                sql.SQL(", ").join(map(sql.Identifier, AUDIT_COLUMNS)), sql.Identifier(SCHEMA, "audit_log")))
            rows = cur.fetchall()
        frame = pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
        frame["at"] = [_iso(v, timespec="seconds") for v in frame["at"]]
        frame["rows"] = frame["rows"].astype("int64")
        return frame

    # -- beyond the interface ------------------------------------------------------------------

    def locate(self, layer: str, *, polygons: str = "districts", field: str = "district_code",
               access: Access | None = None) -> pd.Series:
        layer, polygons = str(layer), str(polygons)
        model, poly_model = LAYER_MODELS.get(layer), LAYER_MODELS.get(polygons)
        if not (model and poly_model and has_geometry(model) and has_geometry(poly_model)
                and field in attribute_columns(poly_model)):
            return super().locate(layer, polygons=polygons, field=field, access=access)
        acting, logged = self._acting(access)
        with self._tx(acting, trusted=not logged, snapshot=True, layer=layer) as cur:
            _entry(cur, layer, self.location)
            _entry(cur, polygons, self.location)
            if layer in PERSONAL_MODELS and not acting.sees_personal:
                values = []
            else:
                cur.execute(sql.SQL(
                    "SELECT (SELECT p.{f} FROM {s}.{p} p WHERE p.geom && t.geom "
                    "AND ST_Intersects(p.geom, t.geom) ORDER BY p.{f} LIMIT 1) "
                    "FROM {s}.{t} t ORDER BY t.fid").format(
                        f=sql.Identifier(field), s=sql.Identifier(SCHEMA), p=sql.Identifier(polygons),
                        t=sql.Identifier(layer)))
                values = [r[0] for r in cur.fetchall()]
            if layer in PERSONAL_MODELS and logged:
                _log(cur, dataclasses.replace(acting, route=f"{acting.route}:locate"), layer,
                     acting.district, len(values))
        return pd.Series(values, dtype=object, name=field)

    def register_counts(self, *, access: Access | None = None) -> pd.DataFrame:
        """Register persons per municipality, district and consent answer, all rows of the
        user's municipality counted (names never leave the database): for city staff and
        coordinators (``access``, default the store's user)."""
        with self._tx(access or self.access) as cur:
            cur.execute(f"SELECT {MUNICIPALITY}, district_code, consent, persons "
                        f"FROM {SCHEMA}.register_counts()")
            rows = cur.fetchall()
        frame = pd.DataFrame(rows, columns=[MUNICIPALITY, "district_code", "consent", "persons"])
        frame["persons"] = frame["persons"].astype("int64")
        return frame

    # -- transactions ----------------------------------------------------------------------------

    def _acting(self, access: Access | None) -> tuple[Access, bool]:
        """Who acts in a call, and whether its personal reads and writes are logged: a given user
        or the one bound by :meth:`as_user` is logged; the store's own trusted user is not."""
        if access is not None:
            return access, True
        return self.access, self._bound

    def _anyone(self) -> Access:
        """The store's user at the public level: for what every level may read (the catalogue, the
        stamp), so those reads never hold more rights than the least user."""
        return Access(self.access.user, Level.PUBLIC, route=self.access.route, municipality=None)

    @contextlib.contextmanager
    def _tx(self, access: Access, *, trusted: bool = False, snapshot: bool = False,
            layer: str | None = None) -> Iterator:
        """One transaction as ``access``: its role (``trusted``: the pipeline's), user, district
        and municipality set locally (one round trip), a raw psycopg cursor; database errors
        become :class:`StoreError` (refusals :class:`AccessDenied`) with a user-safe message
        naming ``layer``."""
        try:
            with self._shared.engine.begin() as conn:
                raw = conn.connection.driver_connection
                with raw.cursor(binary=True) as cur:
                    if snapshot:
                        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    self._shared.check_login(cur, self.location)
                    # who acts, set and sealed in one statement (left to right): from here to the
                    # end of the transaction no setting and no role can change (migration 0010)
                    cur.execute("SELECT set_config('role', %s, true), set_config('karte.user', %s, true), "
                                "set_config('karte.district', %s, true), "
                                "set_config('karte.municipality', %s, true)"
                                + (", karte.seal_context()" if self._shared.sealing(cur) else ""),
                                (PIPELINE_ROLE if trusted else ROLE_OF[access.level], access.user,
                                 access.district or "", access.municipality or ""))
                    yield cur
        except DBAPIError as exc:
            raise _store_error(exc.orig, self.location, access, layer) from exc
        except pgerrors.Error as exc:
            raise _store_error(exc, self.location, access, layer) from exc

    def _read(self, layer: str, *, district: str | None, municipality: str | None, access: Access,
              logged: bool, system: bool, match: Mapping[str, object] | None = None) -> pd.DataFrame:
        personal = layer in PERSONAL_MODELS
        with self._tx(access, trusted=not logged, snapshot=True, layer=layer) as cur:
            entry = _entry(cur, layer, self.location)
            where = []
            if district is not None:
                where.append(("district_code", district))
                if not any(c["name"] == "district_code" for c in entry["columns"]):
                    raise StoreError(f"{self.location} のレイヤ {layer} には district_code 列がありません")
            for column, value in (match or {}).items():
                if not any(c["name"] == column for c in entry["columns"]):
                    raise StoreError(f"{self.location} のレイヤ {layer} には {column} 列がありません")
                where.append((column, value))
            system = system and versioned(LAYER_MODELS.get(layer))
            if personal and not access.sees_personal:
                frame = _empty(entry, system=system)
            else:
                frame = _select(cur, layer, entry, where=where, municipality=municipality, system=system)
            if personal and logged:
                _log(cur, access, layer, district if district is not None else access.district, len(frame))
        return frame


class _Shared:
    """What copies of a store made by :meth:`PostGISStore.as_user` share: the pool, and whether
    the login role was checked."""

    def __init__(self, engine):
        self.engine = engine
        self.checked = False
        self.sealed = False
        self._stamp_lock = threading.Lock()
        self._stamp_con: psycopg.Connection | None = None
        self._stamp_pid = 0

    def stamp(self, location: str) -> str:
        """The build stamp read on a connection kept for it alone: autocommit, the public role
        set once for the session, so a read is one statement and one round trip (a pooled
        transaction took five: the pool's ping, the role, the read, the commit and the begin).
        Every request checks it, so every worker process sees a new build at once. A dropped
        connection is replaced once; ``""`` on a database that is not migrated."""
        with self._stamp_lock:
            try:
                return self._read_stamp(location)
            except psycopg.OperationalError:  # the connection dropped (a restart): once more, anew
                self._close_stamp()
                return self._read_stamp(location)

    def _read_stamp(self, location: str) -> str:
        con = self._stamp_connection(location)
        try:
            hit = con.execute(f"SELECT stamp FROM {SCHEMA}.snapshot_stamp").fetchone()
        except pgerrors.UndefinedTable:  # not migrated (or before revision 0003)
            return ""
        return "" if hit is None else str(hit[0])

    def _stamp_connection(self, location: str) -> psycopg.Connection:
        if self._stamp_con is not None and not self._stamp_con.closed and self._stamp_pid == os.getpid():
            return self._stamp_con
        raw = self.engine.raw_connection()  # the engine's URL and connect arguments, out of its pool
        con = raw.driver_connection
        raw.detach()
        con.rollback()
        con.autocommit = True
        with con.cursor() as cur:
            self.check_login(cur, location)
        con.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE_OF[Level.PUBLIC])))
        self._stamp_con, self._stamp_pid = con, os.getpid()
        return con

    def close_stamp(self) -> None:
        with self._stamp_lock:
            self._close_stamp()

    def _close_stamp(self) -> None:
        if self._stamp_con is not None and self._stamp_pid == os.getpid():
            with contextlib.suppress(psycopg.Error):
                self._stamp_con.close()
        self._stamp_con = None

    def sealing(self, cur) -> bool:
        """Does the schema seal who acts (``karte.seal_context()``, migration 0010)? Asked until
        the answer is yes (a store may be opened before ``karte db upgrade``), then known."""
        if not self.sealed:
            cur.execute("SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n "
                        "ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.proname = 'seal_context')",
                        (SCHEMA,))
            self.sealed = bool(cur.fetchone()[0])
        return self.sealed

    def check_login(self, cur, location: str) -> None:
        """Refuse a login that bypasses row-level security (superuser, BYPASSRLS, table owner)."""
        if self.checked:
            return
        cur.execute("SELECT r.rolsuper, r.rolbypassrls, EXISTS (SELECT 1 FROM pg_tables t "
                    "WHERE t.schemaname = %s AND t.tableowner = r.rolname), r.rolname "
                    "FROM pg_roles r WHERE r.rolname = session_user", (SCHEMA,))
        superuser, bypass, owner, name = cur.fetchone()
        if superuser or bypass or owner:
            why = "superuser" if superuser else "BYPASSRLS" if bypass else "owner of the karte tables"
            raise StoreError(
                f"{location}: ログインロール {name} は行レベルセキュリティを迂回できます ({why})。"
                f"アプリケーションは {APP_ROLE} で接続してください"
                "（スキーマの作成・更新は karte db upgrade で所有者として）。")
        self.checked = True


# -- catalogue -----------------------------------------------------------------------------------

def _migrated(cur) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.layer_catalog",))
    return bool(cur.fetchone()[0])


def _require_schema(cur, location: str) -> None:
    if not _migrated(cur):
        raise StoreError(f"{location} に karte のスキーマがありません。"
                         "先に karte db upgrade を（データベースの所有者で）実行してください")


def _entry(cur, layer: str, location: str, *, opening: LayerSpec | None = None) -> dict:
    """The catalogue entry of ``layer``. ``opening``: a layer about to get rows; a record layer
    not written yet is entered with its table's columns first, in the registry's order
    (``karte.open_record_layer``)."""
    if not _migrated(cur):
        raise StoreError(f"{location} にレイヤ {layer} がありません "
                         "(karte db upgrade と karte build を先に実行)")
    query = f"SELECT columns, geometry FROM {SCHEMA}.layer_catalog WHERE layer = %s"
    cur.execute(query, (layer,))
    hit = cur.fetchone()
    if hit is None and opening is not None and opening.records:
        cur.execute(f"SELECT {SCHEMA}.open_record_layer(%s, %s, %s)",
                    (layer, opening.key, list(opening.column_names)))
        cur.execute(query, (layer,))
        hit = cur.fetchone()
    if hit is None:
        raise StoreError(f"{location} にレイヤ {layer} がありません (karte build を先に実行)")
    return {"layer": layer, "columns": hit[0], "geometry": hit[1]}


def _row_layer(layer: str) -> LayerSpec:
    """The registry entry of a layer written row by row (one whose table keeps row versions)."""
    entry = LAYERS.get(layer)
    if entry is None or not versioned(LAYER_MODELS.get(layer)):
        names = ", ".join(name for name, model in LAYER_MODELS.items() if versioned(model))
        raise StoreError(f"行単位の読み書きができるのは {names} だけです: {layer}")
    return entry


def _label(layer: str | None) -> str:
    """``layer`` as users read it, for messages."""
    entry = LAYERS.get(layer) if layer else None
    return f"{entry.title_ja}（{layer}）" if entry else f"レイヤ {layer}" if layer else ""


def _logged(layer: str) -> bool:
    """Do row calls on ``layer`` write access-log rows? All but the security layers (as the
    GeoPackage store: :func:`karte.store.gpkg_rows.logged`)."""
    return str(layer) not in UNLOGGED


def _log(cur, access: Access, layer: str, district: str | None, rows: int, action: str = "read") -> None:
    """Append to the access log in the calling transaction, as the acting role; the database fills
    in the time, the level and its login."""
    cur.execute(f"INSERT INTO {SCHEMA}.audit_log (actor, route, action, layer, district, rows) "
                "VALUES (%s, %s, %s, %s, %s, %s)", (access.user, access.route, action, layer, district, rows))


# -- reading ---------------------------------------------------------------------------------------

def _fields(entry: dict, *, modelled: bool, system: bool) -> list[sql.Composable]:
    """What :func:`_frame` reads, in its order: the direct columns (in ``extra_layers`` only
    ``municipality_code``) and the JSONB bag, the system columns, the geometry as WKB."""
    fields: list[sql.Composable] = [sql.Identifier(c["name"]) for c in entry["columns"]
                                    if c["where"] == "column"]
    fields.append(sql.Identifier("extra" if modelled else "attrs"))
    if system:
        fields += [sql.Identifier(c) for c in SYSTEM_COLUMNS]
    if entry["geometry"]:
        fields.append(sql.SQL("ST_AsBinary(geom)"))
    return fields


def _select(cur, layer: str, entry: dict, *, where: list[tuple[str, object]],
            municipality: str | None = None, system: bool) -> pd.DataFrame:
    """The rows of ``layer`` whose columns equal ``where`` (name, value) and, when given, whose
    ``municipality_code`` (a table column everywhere) is ``municipality``, in row order."""
    model = LAYER_MODELS.get(layer)
    table = sql.Identifier(SCHEMA, layer if model else "extra_layers")
    columns = entry["columns"]
    fields = _fields(entry, modelled=model is not None, system=system)
    conditions: list[sql.Composable] = []
    params: list[object] = []
    if not model:
        conditions.append(sql.SQL("layer = %s"))
        params.append(layer)
    if municipality is not None:
        where = [*where, (MUNICIPALITY, municipality)]
    for name, value in where:
        kind = next((c for c in columns if c["name"] == name), None)
        if name == MUNICIPALITY or (kind and kind["where"] == "column"):
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
        else:
            conditions.append(sql.SQL("{} ->> %s = %s").format(sql.Identifier("extra" if model else "attrs")))
            params.append(name)
        params.append(str(value))
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(fields), table)
    if conditions:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
    cur.execute(query + sql.SQL(" ORDER BY fid"), params)
    rows = cur.fetchall()
    return _frame(entry, list(zip(*rows, strict=True)) if rows else None, system)


def _frame(entry: dict, cols: list[tuple] | None, system: bool) -> pd.DataFrame:
    n = len(cols[0]) if cols else 0
    pos = 0
    direct: dict[str, tuple] = {}
    for c in entry["columns"]:
        if c["where"] == "column":
            direct[c["name"]] = cols[pos] if cols else ()
            pos += 1
    bags = cols[pos] if cols else ()
    pos += 1
    data = {}
    for c in entry["columns"]:
        if c["name"] in direct:
            values = direct[c["name"]]
        else:
            values = tuple((bag or {}).get(c["name"]) for bag in bags) if n else ()
        data[c["name"]] = _series(values, c["kind"])
    if system:
        version, at, by = (cols[pos:pos + 3] if cols else ((), (), ()))
        pos += 3
        data["version"] = pd.Series(version, dtype="int64")
        data["updated_at"] = pd.Series([_iso(v) for v in at], dtype="str")
        data["updated_by"] = pd.Series(by, dtype="str")
    frame = pd.DataFrame(data, index=pd.RangeIndex(n))
    if not entry["geometry"]:
        return frame
    wkb = np.array(cols[pos] if cols else (), dtype=object)
    geoms = shapely.from_wkb(wkb) if n else np.array([], dtype=object)
    frame[entry["geometry"]] = gpd.GeoSeries(geoms, index=frame.index, crs=SRID)
    return gpd.GeoDataFrame(frame, geometry=entry["geometry"], crs=SRID)


def _empty(entry: dict, *, system: bool) -> pd.DataFrame:
    return _frame(entry, None, system)


def _series(values, kind: str) -> pd.Series:
    """Values of one column as the GeoPackage store returns them: ``str`` text (``object`` when
    every value is null), ``int64`` or (with nulls) ``float64`` integers, ``float64``, ``bool`` or
    (with nulls) nullable ``boolean``."""
    has_null = any(v is None for v in values)
    if kind == "text":
        if values and all(v is None for v in values):  # as pyogrio: all-null text is object
            return pd.Series(list(values), dtype=object)
        return pd.Series(list(values), dtype="str")
    if kind == "integer":
        if has_null:
            return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
        return pd.Series([int(v) for v in values], dtype="int64")
    if kind == "float":
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if kind == "boolean":
        return pd.Series(list(values), dtype="boolean" if has_null else "bool")
    raise StoreError(f"unknown column kind {kind!r} in the layer catalogue")


def _iso(value, timespec: str = "auto") -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec=timespec)


# -- writing ---------------------------------------------------------------------------------------

@dataclass
class _Prepared:
    layer: str
    model: object
    entry_columns: list[dict]
    geometry: str | None
    copy_columns: list[str]
    rows: list[tuple]
    max_version: int | None = None
    personal: bool = False   # a personal layer (its whole-layer write is logged)
    versioned: bool = False  # keeps version / updated_at / updated_by (a record or personal layer)


def _prepare(layer: str, frame: pd.DataFrame, problems: list[str]) -> _Prepared:
    """Check and convert one frame for COPY; every problem goes to ``problems``."""
    model = LAYER_MODELS.get(layer)
    if not isinstance(frame, pd.DataFrame):
        problems.append(f"{layer}: DataFrame が必要です (got {type(frame).__name__})")
        return _Prepared(layer, model, [], None, [], [])
    if frame.columns.duplicated().any():
        dupes = sorted(set(map(str, frame.columns[frame.columns.duplicated()])))
        problems.append(f"{layer}: 列名が重複しています: {', '.join(dupes)}")
        return _Prepared(layer, model, [], None, [], [])
    geometry = None
    if isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame.columns:
        geometry = frame.geometry.name
        if model is not None and not has_geometry(model):
            problems.append(f"{layer}: このレイヤは属性表です（ジオメトリ列 {geometry} は保存できません）")
            geometry = None
        elif frame.crs is None:
            problems.append(f"{layer}: 座標参照系がありません (expected EPSG:{SRID})")
        elif frame.crs.to_epsg() != SRID:
            frame = frame.to_crs(SRID)
    personal, has_versions = layer in PERSONAL_MODELS, versioned(model)
    # extra_layers keeps the municipality in a column too (row filters, its index)
    modelled = attribute_columns(model) if model is not None else {MUNICIPALITY: "text"}
    entry_columns, direct, extras = [], {}, {}
    system: dict[str, list] = {}
    for name in frame.columns:
        if name == geometry:
            continue
        if not isinstance(name, str):
            problems.append(f"{layer}: 列名は文字列でなければなりません (got {name!r})")
            continue
        series = frame[name]
        if has_versions and name in SYSTEM_COLUMNS:
            system[name] = _system_values(layer, name, series, problems)
            continue
        if name in modelled:
            kind = modelled[name]
            direct[name] = _values(layer, name, series, kind, problems)
            entry_columns.append({"name": name, "kind": kind, "where": "column"})
        else:
            kind = _infer_kind(series)
            extras[name] = _values(layer, name, series, kind, problems)
            entry_columns.append({"name": name, "kind": kind, "where": "extra" if model else "attrs"})
    n = len(frame)
    bags = [None] * n
    if extras:
        bags = [json.dumps({k: v[i] for k, v in extras.items() if v[i] is not None}, ensure_ascii=False)
                for i in range(n)]
    geoms = _geometries(layer, model, frame, geometry, problems) if geometry else None
    if model is not None:
        copy_columns = [*direct, "extra"]
        columns = [*direct.values(), bags]
    else:
        copy_columns = ["layer", *direct, "attrs"]
        columns = [[layer] * n, *direct.values(), bags]
    if geoms is not None:
        copy_columns.append("geom")
        columns.append(geoms)
    max_version = None
    if has_versions:
        for name in SYSTEM_COLUMNS:
            if name in system:
                copy_columns.append(name)
                columns.append(system[name])
        if "version" in system and n and None not in system["version"]:
            max_version = max(system["version"])
    rows = list(zip(*columns, strict=True)) if columns and n else []
    return _Prepared(layer, model, entry_columns, geometry, copy_columns, rows, max_version, personal,
                     has_versions)


def _replace(cur, p: _Prepared, *, actor: str) -> None:
    if p.model is not None:
        table = sql.Identifier(SCHEMA, p.layer)
        # a table the acting user sees no row of needs no DELETE: an append-only ledger, which
        # no role may delete from, can still be loaded into an empty store (a first restore)
        cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table))
        if cur.fetchone()[0]:
            cur.execute(sql.SQL("DELETE FROM {}").format(table))
    else:
        cur.execute(f"DELETE FROM {SCHEMA}.extra_layers WHERE layer = %s", (p.layer,))
        table = sql.Identifier(SCHEMA, "extra_layers")
    if p.rows:
        columns = list(p.copy_columns)
        rows = p.rows
        if p.versioned and "updated_by" not in columns:
            columns.append("updated_by")
            rows = [(*r, actor) for r in rows]
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        if p.personal or p.versioned:
            # COPY refuses tables under row-level security (every personal and record table since
            # migration 0011): load a temporary table, then one INSERT … SELECT that the policies
            # check (in the frame's order).
            cur.execute(sql.SQL("CREATE TEMP TABLE karte_load AS SELECT 0::bigint AS ord, {} FROM {} "
                                "WITH NO DATA").format(names, table))
            with cur.copy(sql.SQL("COPY karte_load (ord, {}) FROM STDIN").format(names)) as copy:
                for i, row in enumerate(rows):
                    copy.write_row((i, *row))
            cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM karte_load ORDER BY ord").format(
                table, names, names))
            cur.execute("DROP TABLE karte_load")
        else:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)) as copy:
                for row in rows:
                    copy.write_row(row)
    if p.max_version is not None:
        cur.execute(f"SELECT setval('{SCHEMA}.row_version', %s) "
                    f"WHERE %s > (SELECT last_value FROM {SCHEMA}.row_version)",
                    (p.max_version, p.max_version))
    cur.execute(f"INSERT INTO {SCHEMA}.layer_catalog (layer, columns, geometry) VALUES (%s, %s, %s) "
                "ON CONFLICT (layer) DO UPDATE SET columns = EXCLUDED.columns, "
                "geometry = EXCLUDED.geometry, written_at = now()",
                (p.layer, json.dumps(p.entry_columns, ensure_ascii=False), p.geometry))


def _infer_kind(series: pd.Series) -> str:
    """The column kind of an unmodelled column, from its dtype (or its values when object)."""
    if ptypes.is_bool_dtype(series.dtype):
        return "boolean"
    if ptypes.is_integer_dtype(series.dtype):
        return "integer"
    if ptypes.is_float_dtype(series.dtype):
        return "float"
    if series.dtype == object:
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        return {"integer": "integer", "floating": "float", "mixed-integer-float": "float",
                "boolean": "boolean"}.get(inferred, "text")
    return "text"


def _values(layer: str, name: str, series: pd.Series, kind: str, problems: list[str]) -> list:
    """Python values of one column for ``kind``, ``None`` for nulls; bad rows go to ``problems``."""
    fast = _fast_values(series, kind)
    if fast is not None:
        return fast
    raw = series.to_numpy(dtype=object, na_value=None) if len(series) else np.array([], dtype=object)
    out: list = []
    bad: list[int] = []
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT or v is pd.NA:
            out.append(None)
            continue
        try:
            out.append(_convert(v, kind))
        except (TypeError, ValueError, OverflowError):
            out.append(None)
            bad.append(i)
    if bad:
        expected = {"integer": "整数", "float": "数値", "boolean": "真偽値"}.get(kind, kind)
        rows = ", ".join(str(i + 1) for i in bad[:10]) + (" …" if len(bad) > 10 else "")
        problems.append(f"{layer}: 列 {name} に{expected}でない値が {len(bad)} 件あります（行 {rows}）")
    return out


def _fast_values(series: pd.Series, kind: str) -> list | None:
    """The common cases of :func:`_values` without a Python call per value (``None``: no shortcut)."""
    dtype = series.dtype
    if kind == "text" and ptypes.is_string_dtype(dtype) and not ptypes.is_object_dtype(dtype):
        return series.astype(object).where(series.notna(), None).tolist()
    if kind == "integer" and ptypes.is_integer_dtype(dtype):
        return series.astype(object).where(series.notna(), None).tolist()
    if kind == "integer" and ptypes.is_float_dtype(dtype):
        arr = series.to_numpy(dtype="float64")
        na = np.isnan(arr)
        if not np.all(np.isfinite(arr[~na]) & (arr[~na] == np.floor(arr[~na]))):
            return None  # the slow path names the bad rows
        return [None if m else int(v) for v, m in zip(arr.tolist(), na.tolist(), strict=True)]
    if kind == "float" and ptypes.is_float_dtype(dtype) and np.isfinite(series.dropna().to_numpy()).all():
        return series.astype(object).where(series.notna(), None).tolist()
    if kind == "boolean" and ptypes.is_bool_dtype(dtype) and not isinstance(dtype, pd.BooleanDtype):
        return series.tolist()
    return None


def _convert(v, kind: str):
    if kind == "text":
        if isinstance(v, str):
            return v
        if isinstance(v, dt.date | pd.Timestamp):
            return v.isoformat()
        return str(v)
    if kind == "integer":
        if isinstance(v, str):
            return int(v.strip())
        if isinstance(v, float | np.floating) and not float(v).is_integer():
            raise ValueError("not integral")
        return int(v)
    if kind == "float":
        f = float(v)
        return f if math.isfinite(f) else ("Infinity" if f > 0 else "-Infinity")
    if kind == "boolean":
        if isinstance(v, bool | np.bool_):
            return bool(v)
        if isinstance(v, int | float | np.integer | np.floating) and v in (0, 1):
            return bool(v)
        raise ValueError("not a boolean")
    raise ValueError(kind)


def _system_values(layer: str, name: str, series: pd.Series, problems: list[str]) -> list:
    values = _values(layer, name, series, "integer" if name == "version" else "text", problems)
    if name != "updated_by" and any(v is None for v in values):
        problems.append(f"{layer}: 列 {name} は全行に値が必要です（空の行があります）")
    if name == "version":
        return [None if v is None else int(v) for v in values]
    return values


def _geometries(layer: str, model, frame: gpd.GeoDataFrame, geometry: str, problems: list[str]) -> list:
    """Hex EWKB (SRID 6678) per row, polygons promoted to multipolygons as the GeoPackage store
    does; rows of the wrong geometry type go to ``problems``."""
    geoms = np.asarray(frame[geometry].array, dtype=object)
    if not len(geoms):
        return []
    ids = shapely.get_type_id(geoms)
    present = ids >= 0
    kind = model.__table__.c.geom.type.geometry_type if model is not None else None
    polygonal = np.isin(ids[present], (3, 6))
    if kind == "MULTIPOLYGON" or (kind is None and present.any() and polygonal.all()):
        geoms = geoms.copy()
        for i in np.flatnonzero(ids == 3):
            geoms[i] = shapely.MultiPolygon([geoms[i]])
        ids = shapely.get_type_id(geoms)
    if kind in _GEOM_KINDS:
        wrong = np.flatnonzero(present & ~np.isin(ids, list(_GEOM_KINDS[kind])))
        if len(wrong):
            rows = ", ".join(str(i + 1) for i in wrong[:10]) + (" …" if len(wrong) > 10 else "")
            problems.append(f"{layer}: {kind} 以外のジオメトリが {len(wrong)} 件あります（行 {rows}）")
            return [None] * len(geoms)
    hexes = shapely.to_wkb(shapely.set_srid(geoms, SRID), hex=True, include_srid=True)
    return [h if isinstance(h, str) else None for h in hexes]


def _assignments(entry_spec: LayerSpec, entry: dict, changes: Mapping[str, object]):
    """SET clause and parameters of :meth:`PostGISStore.update_row`; every bad change at once."""
    layer = str(entry_spec.name)
    problems, parts, params = [], [], []
    known = {c["name"]: c for c in entry["columns"]}
    extra: dict[str, object] = {}
    for name, value in changes.items():
        if name in (*SYSTEM_COLUMNS, entry_spec.key):
            problems.append(f"列 {name} は変更できません")
        elif name == entry["geometry"]:
            frame = gpd.GeoDataFrame({"g": [value]}, geometry="g", crs=SRID)
            hexes = _geometries(layer, LAYER_MODELS[layer], frame, "g", problems)
            parts.append(sql.SQL("geom = %s::geometry"))
            params.append(hexes[0])
        elif name not in known and name != MUNICIPALITY:
            problems.append(f"{layer} に列 {name} はありません")
        else:
            col = known.get(name, {"kind": "text", "where": "column"})  # the municipality: a column
            values = _values(layer, name, pd.Series([value], dtype=object), col["kind"], problems)
            if col["where"] == "column" or name == MUNICIPALITY:
                parts.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
                params.append(values[0])
            else:
                extra[name] = values[0]
    if extra:
        parts.append(sql.SQL("extra = (coalesce(extra, '{}'::jsonb) || %s::jsonb)"))
        params.append(json.dumps(extra, ensure_ascii=False))
    if not parts and not problems:
        problems.append("変更がありません")
    if problems:
        raise StoreError(f"{_label(layer)}を更新できません: " + "; ".join(problems))
    return sql.SQL(", ").join(parts), params


# -- rows ------------------------------------------------------------------------------------------

def _row_values(entry_spec: LayerSpec, entry: dict, rows: list[dict]) -> dict[str, list]:
    """The appended rows' values per column, converted to the catalogue's kinds (geometry as EWKB
    hex); the key column always, ``None`` where the store is to assign the id. Every problem at
    once, as one :class:`StoreError`."""
    layer = str(entry_spec.name)
    problems: list[str] = []
    known = {c["name"]: c for c in entry["columns"]}
    out: dict[str, list] = {}
    for name in dict.fromkeys(name for row in rows for name in row):
        series = pd.Series([row.get(name) for row in rows], dtype=object)
        if name in SYSTEM_COLUMNS:
            problems.append(f"列 {name} はデータベースが付けます（指定できません）")
        elif entry["geometry"] and name == entry["geometry"]:
            frame = gpd.GeoDataFrame({"g": series}, geometry="g", crs=SRID)
            out[name] = _geometries(layer, LAYER_MODELS[layer], frame, "g", problems)
        elif name == MUNICIPALITY:  # a table column, listed in the catalogue or not
            out[name] = _values(layer, name, series, "text", problems)
        elif name not in known:
            problems.append(f"列 {name} はありません")
        else:
            out[name] = _values(layer, name, series, known[name]["kind"], problems)
    keys = out.setdefault(entry_spec.key, [None] * len(rows))
    for i, key in enumerate(keys):
        if key == "":
            keys[i] = None
    if not entry_spec.id_prefix and None in keys:
        problems.append(f"列 {entry_spec.key} が空の行があります（このレイヤの id は自動では付きません）")
    if problems:
        raise StoreError(f"{_label(layer)}に行を追加できません。何も書き込んでいません: "
                         + "; ".join(problems))
    return out


def _assign_ids(cur, entry_spec: LayerSpec, keys: list) -> None:
    """Fill the missing ``keys`` with new ids: numbers from the layer's sequence, in row order."""
    missing = [i for i, key in enumerate(keys) if key is None]
    if not missing:
        return
    cur.execute("SELECT nextval(%s::regclass) AS n FROM generate_series(1, %s) ORDER BY n",
                (id_sequence(entry_spec), len(missing)))
    for i, (number,) in zip(missing, cur.fetchall(), strict=True):
        keys[i] = entry_spec.new_id(int(number))


def _insert(cur, entry: dict, values: dict[str, list], *, actor: str) -> list[dict]:
    """INSERT the rows of ``values`` (one statement, as the acting role: its grants and policies
    decide) and return them as stored."""
    layer, geometry = entry["layer"], entry["geometry"]
    known = {c["name"]: c for c in entry["columns"]}
    n = len(next(iter(values.values())))
    extras = [name for name in values if name in known and known[name]["where"] != "column"
              and name != MUNICIPALITY]
    direct = [name for name in values if name != geometry and name not in extras]
    columns = [sql.Identifier(name) for name in direct]
    casts = [sql.SQL("%s")] * len(direct)
    params = [[values[name][i] for name in direct] for i in range(n)]
    if extras:
        columns.append(sql.Identifier("extra"))
        casts.append(sql.SQL("%s::jsonb"))
        for i, row in enumerate(params):
            bag = {name: values[name][i] for name in extras if values[name][i] is not None}
            row.append(json.dumps(bag, ensure_ascii=False) if bag else None)
    if geometry in values:
        columns.append(sql.Identifier("geom"))
        casts.append(sql.SQL("%s::geometry"))
        for i, row in enumerate(params):
            row.append(values[geometry][i])
    columns.append(sql.Identifier("updated_by"))
    casts.append(sql.SQL("%s"))
    for row in params:
        row.append(actor)
    one = sql.SQL("({})").format(sql.SQL(", ").join(casts))
    cur.execute(sql.SQL("INSERT INTO {} ({}) VALUES {} RETURNING {}").format(
        sql.Identifier(SCHEMA, layer), sql.SQL(", ").join(columns), sql.SQL(", ").join([one] * n),
        sql.SQL(", ").join(_fields(entry, modelled=True, system=True))),
        [v for row in params for v in row])
    fetched = cur.fetchall()
    return _records(_frame(entry, list(zip(*fetched, strict=True)), True))


def _records(frame: pd.DataFrame) -> list[dict]:
    """The rows of ``frame`` as dicts of plain Python values (``None`` for nulls)."""
    return [{name: _plain(value) for name, value in zip(frame.columns, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)]


def _plain(value):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _per_district(entry_spec: LayerSpec, rows: list[dict]) -> dict[str | None, int]:
    """How many of ``rows`` fall in each district (in first-seen order), for the access log."""
    counts: dict[str | None, int] = {}
    for row in rows:
        district = row.get(entry_spec.district_column) if entry_spec.district_column else None
        counts[district] = counts.get(district, 0) + 1
    return counts


def _same_municipality(entry_spec: LayerSpec) -> sql.Composable:
    """The row-addressing condition on ``municipality_code`` (two ``%s``, both the user's code):
    equal on personal layers (keys repeat across municipalities); on the others also rows of no
    municipality (users of none: the prefecture level, public accounts), and any row for a user
    of none. Row-level security still decides what the user reaches."""
    if entry_spec.personal:
        return sql.SQL("{m} = %s AND %s::text IS NOT NULL").format(m=sql.Identifier(MUNICIPALITY))
    return sql.SQL("({m} = %s OR {m} IS NULL OR %s::text IS NULL)").format(m=sql.Identifier(MUNICIPALITY))


def _district_field(entry_spec: LayerSpec, entry: dict) -> sql.Composable:
    """The row's district for the access log, in a RETURNING list."""
    column = entry_spec.district_column
    if column and any(c["name"] == column and c["where"] == "column" for c in entry["columns"]):
        return sql.Identifier(column)
    return sql.SQL("NULL::text")


def _missing_or_conflict(cur, entry_spec: LayerSpec, key: str, version: int,
                         municipality: str | None) -> KarteError:
    """Why an edit at ``version`` changed no row: the row (``key`` in the user's ``municipality``)
    is not there for this user, or is but not theirs to change (:class:`NotFoundError`, saying
    nothing more), or it is at another version (:class:`ConflictError`). The caller raises it
    inside the transaction, so nothing is kept."""
    layer = str(entry_spec.name)
    cur.execute(sql.SQL("SELECT version FROM {} WHERE {} = %s AND {}").format(
        sql.Identifier(SCHEMA, layer), sql.Identifier(entry_spec.key), _same_municipality(entry_spec)),
        [key, municipality, municipality])
    now = cur.fetchone()
    if now is None or now[0] == int(version):
        return NotFoundError(f"{_label(layer)}に指定の行はありません（または変更の権限がありません）")
    return ConflictError(f"{_label(layer)}のこの行は他の利用者が先に更新しました（読み込んだ版 {version}、"
                         f"現在の版 {now[0]}）。読み直してからやり直してください。")


# -- errors ----------------------------------------------------------------------------------------

def _store_error(exc, location: str, access: Access, layer: str | None) -> KarteError:
    """A user-safe error for a database error: the level and layer, never a row's values (the
    server's first line names tables and constraints only; its DETAIL, which may quote a value,
    is left out)."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    what = f"{_label(layer)}に対する" if layer else ""
    if isinstance(exc, pgerrors.InsufficientPrivilege):  # no grant, or a WITH CHECK policy refused the row
        return AccessDenied(f"{location}: {LEVEL_JA[access.level]}（{access.level.value}）の権限では"
                            f"{what}この操作はできません。何も書き込んでいません ({first})")
    if isinstance(exc, pgerrors.UniqueViolation):
        return StoreError(f"{location}: {what}一意でなければならない値が重複しています"
                          f"（{exc.diag.table_name}: {exc.diag.constraint_name}）。何も書き込んでいません")
    if isinstance(exc, pgerrors.UndefinedTable | pgerrors.InvalidSchemaName):
        return StoreError(f"{location}: karte のスキーマがありません。"
                          f"karte db upgrade を実行してください ({first})")
    if isinstance(exc, pgerrors.OperationalError):
        return StoreError(f"{location} に接続できません ({first})")
    return StoreError(f"{location}: データベースのエラー ({first})")


def _driver_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url
