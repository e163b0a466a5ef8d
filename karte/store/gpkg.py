"""The embedded store: every layer in one GeoPackage file, no server needed.

One SQLite library on the file. pyogrio's wheel bundles GDAL with its own SQLite and Python's
``sqlite3`` module is another; two SQLite libraries on one file in one process do not see each
other's POSIX locks (closing one library's descriptor drops the other's: sqlite.org, "How To
Corrupt An SQLite Database File", 2.2.1 and 2.3). So in a process only Python's ``sqlite3`` opens
the store file, and GDAL only ever opens a private scratch file that ``sqlite3`` reads after GDAL
has closed it:

* **reads** are SQL; a geometry is the GeoPackage blob's WKB read by shapely, and the frames are
  built the way pyogrio builds them (:mod:`karte.store.gpkg_values`), so they are the same;
* **whole-layer writes** (:meth:`GeoPackageStore.write`): GDAL writes the new layers into a
  scratch GeoPackage in a locked folder beside the store (tables, ``gpkg_*`` metadata, R-tree),
  then ONE ``BEGIN IMMEDIATE`` transaction on the store replaces the layers in place with plain
  SQL (:mod:`karte.store.gpkg_install`): all of them or none, also after kill -9 or Ctrl-C, and
  the access log and rows other processes write meanwhile are kept;
* **row writes** (:meth:`~GeoPackageStore.append_rows`, ``update_row``, ``delete_row``) are one
  transaction each, with their access-log row; ids and versions come from counters in the file.

The file is in WAL mode (plain readers never wait for a writer, nor a writer for them), with a
busy timeout of :data:`BUSY_TIMEOUT_S` for writers queueing behind each other, and
``synchronous=NORMAL`` (a commit survives a crash of the process; a power cut may lose the last
commits, never the file). A read of personal rows as a user writes its access-log row in the
same transaction, so it queues with the writers (a whole-city write holds the lock ~0.1 s: GDAL's
part of the work happens before, on the scratch file).
:meth:`GeoPackageStore.seal` turns a file back into a self-contained single file for handing over.

Each store object keeps a small pool of connections: parsing a GeoPackage's schema costs about a
millisecond per new connection, a pooled one answers :meth:`~GeoPackageStore.stamp` in
microseconds. A whole-layer write uses a connection of its own and closes it, so a file no other
connection holds is left complete without its ``-wal``. Never open the store file with GDAL
(pyogrio, ``geopandas.read_file``) in a process that holds a :class:`GeoPackageStore` on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import glob
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from karte.domain.access import Access, Level
from karte.domain.errors import AccessDenied, NotFoundError, StoreError
from karte.domain.layers import LAYERS, MUNICIPALITY, SNAPSHOT_LAYERS, LayerSpec
from karte.store import gpkg_files, gpkg_install, gpkg_rows, gpkg_schema
from karte.store.base import AUDIT_ACTIONS, AUDIT_COLUMNS, ROWS, SYSTEM_COLUMNS, Store
from karte.store.gpkg_blob import register_functions
from karte.store.gpkg_install import quote
from karte.store.gpkg_tables import (
    RESERVED_PREFIXES,
    describe,
    fill_versions,
    has_table,
    layer_names,
    max_suffix,
    missing,
    select,
    select_records,
    tracked,
)

CRS = "EPSG:6678"
#: How long a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_S = 30.0
#: Scratch folders beside the store: ``.<store name>.<random>.scratch``.
SCRATCH_SUFFIX = ".scratch"
_RECORD_DTYPES = {"text": object, "integer": "Int64", "float": "float64", "boolean": "bool"}


class GeoPackageStore(Store):
    """The karte layers in one GeoPackage file (the design: the module docstring).

    Parameters
    ----------
    path
        The GeoPackage. Created by the first write with karte's creation mode (0600, or 0640 and
        the group of ``KARTE_FILE_GROUP``: :mod:`karte.store.gpkg_files`); an existing file keeps
        its mode and group. Opening the store removes what writes that died left beside it
        (scratch folders, temporary copies of an export and their journals).
    """

    capabilities = frozenset({ROWS})

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.location = str(self.path)
        self._pool: list[sqlite3.Connection] = []
        self._forked: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._pid = os.getpid()
        self._opened = False
        self._tables: dict[tuple[str, int, int], object] = {}

    def close(self) -> None:
        """Close the pooled connections (the next call opens new ones)."""
        with self._pool_lock:
            pool, self._pool = self._pool, []
        for con in pool:
            con.close()

    # -- whole layers ------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self.layers())

    def layers(self) -> list[str]:
        self._sweep_once()
        if not self.path.exists():
            return []
        with self._tx() as con:
            return layer_names(con)

    def read(self, layer: str, *, district: str | None = None, municipality: str | None = None,
             access: Access | None = None) -> pd.DataFrame:
        return self._read(str(layer), district=district, municipality=municipality, access=access,
                          system=False)

    def read_full(self, layer: str, *, access: Access | None = None) -> pd.DataFrame:
        return self._read(str(layer), district=None, municipality=None, access=access, system=True)

    def write(self, layers: Mapping[str, pd.DataFrame], *, access: Access | None = None) -> None:
        names = [_canonical(n) for n in layers]
        _check_names(names)
        _check_replace(access, names)
        actor = access.user if access is not None else _os_user()
        problems: list[str] = []
        frames = {n: _prepare(n, f, actor, problems) for n, f in zip(names, layers.values(), strict=True)}
        if problems:
            raise StoreError(f"{self.location} に書き込めません。何も書き込んでいません:\n"
                             + "\n".join(problems))
        if not frames:
            return
        with self._staged(frames) as con:
            for name in names:
                gpkg_install.install_table(con, name)
            for name in names:  # before the triggers: these updates fire none
                _after_replace(con, name, access)
            for name in names:
                gpkg_install.install_triggers(con, name)
            if SNAPSHOT_LAYERS & set(names):
                gpkg_schema.bump_stamp(con)

    def stamp(self) -> str:
        if not self.path.exists():
            return ""
        with self._errors(), self._connection() as con:
            return gpkg_schema.stamp(con)

    def seal(self) -> None:
        """Leave the file self-contained for handing over: the WAL checkpointed into it, the
        journal mode back to DELETE, no ``-wal``/``-shm`` beside it. :class:`StoreError` while
        another connection (of any process) has the file open. The next write returns to WAL."""
        self.close()
        with self._errors():
            con = self._open()
            try:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                mode = con.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            finally:
                con.close()
        if mode != "delete":
            raise StoreError(f"{self.location} は他の処理が開いているため閉じられません。"
                             "終了してからやり直してください")

    # -- rows --------------------------------------------------------------------------------

    def append_rows(self, layer: str, rows: Sequence[Mapping[str, object]], *,
                    access: Access) -> list[dict]:
        entry = _row_layer(str(layer))
        layer = str(entry.name)
        rows = [dict(r) for r in rows]
        for row in rows:
            if row.get(MUNICIPALITY) in (None, "") and access.municipality:
                row[MUNICIPALITY] = access.municipality  # the user's, when the row does not say
            if not access.may_write(layer, gpkg_rows.district_of(entry, row), row.get(MUNICIPALITY)):
                raise AccessDenied(f"{entry.title_ja} ({layer}) に行を書き込む権限がありません "
                                   f"({access.level.value})")
        if not rows:
            return []
        if entry.records and layer not in self.layers():  # the first append creates the layer
            with self._staged({layer: _record_frame(entry)}) as con:
                if not _has_layer(con, layer):  # unless another process was first
                    gpkg_install.install_table(con, layer)
                    gpkg_install.install_triggers(con, layer)
                return gpkg_rows.append(con, tracked(con, layer, self.location), entry, rows, access)
        with self._tx(write=True) as con:
            return gpkg_rows.append(con, tracked(con, layer, self.location), entry, rows, access)

    def read_row(self, layer: str, key: str, *, access: Access) -> dict:
        entry = _row_layer(str(layer))
        with self._tx(write=True) as con:
            found = gpkg_rows.visible(con, tracked(con, entry.name, self.location), entry, key, access)
            district = gpkg_rows.district_of(entry, found[1]) if found else access.district
            if gpkg_rows.logged(entry):
                gpkg_schema.log(con, access, "read", entry.name, district, 1 if found else 0)
        if found is None:
            raise NotFoundError(gpkg_rows.not_found(entry, key))
        return found[1]

    def update_row(self, layer: str, key: str, changes: Mapping[str, object], *, version: int,
                   access: Access) -> int:
        entry = _row_layer(str(layer))
        with self._tx(write=True) as con:
            table = tracked(con, entry.name, self.location)
            rowid, row = gpkg_rows.writable(con, table, entry, key, access, version, update=True)
            values = gpkg_rows.changes(table, entry, changes)
            moved_to = values.get(entry.district_column, gpkg_rows.district_of(entry, row))
            if not access.may_write(entry.name, moved_to, values.get(MUNICIPALITY, row.get(MUNICIPALITY)),
                                    update=True):
                raise AccessDenied(f"{entry.title_ja} ({entry.name}) の行をその地区へ移す権限がありません")
            new = gpkg_schema.take(con, gpkg_schema.VERSION)
            values.update(version=new, updated_at=gpkg_schema.now(), updated_by=access.user)
            con.execute(f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(c)} = ?' for c in values)}"
                        " WHERE rowid = ?", (*values.values(), rowid))
            gpkg_rows.touched(con, table, entry, [values[table.geometry]] if table.geometry in values else [])
            if gpkg_rows.logged(entry):
                gpkg_schema.log(con, access, "update", entry.name, gpkg_rows.district_of(entry, row), 1)
        return new

    def delete_row(self, layer: str, key: str, *, version: int, access: Access) -> None:
        entry = _row_layer(str(layer))
        with self._tx(write=True) as con:
            table = tracked(con, entry.name, self.location)
            rowid, row = gpkg_rows.writable(con, table, entry, key, access, version)
            con.execute(f"DELETE FROM {quote(table.name)} WHERE rowid = ?", (rowid,))
            gpkg_rows.touched(con, table, entry, [])
            if gpkg_rows.logged(entry):
                gpkg_schema.log(con, access, "delete", entry.name, gpkg_rows.district_of(entry, row), 1)

    # -- the access log ----------------------------------------------------------------------

    def audit(self, *, access: Access, layer: str, district: str | None, rows: int,
              action: str = "read") -> None:
        if action not in AUDIT_ACTIONS:
            raise ValueError(f"action should be one of {AUDIT_ACTIONS}, got {action!r}")
        with self._tx(write=True, create=True) as con:
            gpkg_schema.log(con, access, action, str(layer), district, rows)

    def audit_log(self) -> pd.DataFrame:
        rows: list[tuple] = []
        if self.path.exists():
            with self._tx() as con:
                if has_table(con, gpkg_schema.AUDIT_TABLE):
                    rows = con.execute(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM karte_audit"
                                       " ORDER BY id").fetchall()
        log = pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
        log["rows"] = log["rows"].astype("int64")
        return log

    # -- reading -----------------------------------------------------------------------------

    def _read(self, layer: str, *, district: str | None, municipality: str | None, access: Access | None,
              system: bool) -> pd.DataFrame:
        layer = _canonical(layer)  # the rules below are looked up by the canonical name

        def rows(con, table, where, hidden):
            frame = select(con, table, where, system=system or not _is_tracked(_spec(layer)), none=hidden)[1]
            return frame if access is None else access.filter_rows(layer, frame).reset_index(drop=True)

        return self._logged_read(layer, district, municipality, access, rows)

    def read_records(self, layer: str, *, district: str | None = None, municipality: str | None = None,
                     access: Access | None = None, match: Mapping[str, object] | None = None) -> list[dict]:
        """:meth:`read` as dicts, answered without a frame (:func:`select_records`): a district's
        personal rows for a page in about a millisecond, with the same rules and log row."""
        layer = _canonical(layer)

        def rows(con, table, where, hidden):
            found = select_records(con, table, where, system=not _is_tracked(_spec(layer)), none=hidden)
            return found if access is None else access.visible(layer, found)

        return self._logged_read(layer, district, municipality, access, rows, match)

    def _logged_read(self, layer: str, district: str | None, municipality: str | None, access: Access | None,
                     rows, match: Mapping[str, object] | None = None):
        """``rows(con, table, where, hidden)`` in one read transaction (a consistent snapshot; no
        lock that writers wait for), then, for a personal layer read with an ``access``, its
        access-log row in a short write transaction: the rows are returned only once the read is
        logged, so every read that shows rows is in the log."""
        entry = _spec(layer)
        logged = entry is not None and entry.personal and access is not None
        if not self.path.exists():
            raise missing(self.location, layer)
        with self._tx() as con:
            table = self._describe(con, layer)
            where: list[tuple[str, object]] = []
            if district is not None:
                if not table.has("district_code"):
                    raise StoreError(f"{self.location} のレイヤ {layer} には district_code 列がありません")
                where.append(("district_code", district))
            if municipality is not None and table.has(MUNICIPALITY):
                where.append((MUNICIPALITY, municipality))
            for column, value in (match or {}).items():
                if not table.has(column):
                    raise StoreError(f"{self.location} のレイヤ {layer} には {column} 列がありません")
                where.append((column, value))
            if logged and access.municipality and table.has(MUNICIPALITY):
                where.append((MUNICIPALITY, access.municipality))  # narrows; the rules decide
            if logged and access.level == Level.DISTRICT_MEMBER and table.has(entry.district_column):
                where.append((entry.district_column, access.district))
            found = rows(con, table, where, logged and not access.sees_personal)
        if logged:
            where_district = district if district is not None else access.district
            with self._tx(write=True) as con:
                gpkg_schema.log(con, access, "read", layer, where_district, len(found))
        return found

    def _describe(self, con: sqlite3.Connection, layer: str):
        """:func:`describe`, kept per file and schema version: a table's columns change only with
        the schema, and describing one costs five queries."""
        version = con.execute("PRAGMA schema_version").fetchone()[0]
        key = (layer.lower(), version, os.stat(self.path).st_ino)
        hit = self._tables.get(key)
        if hit is None:
            hit = describe(con, layer, self.location)
            if len(self._tables) > 64:
                self._tables.clear()
            self._tables[key] = hit
        return hit

    # -- connections, transactions, scratch files ---------------------------------------------

    @contextlib.contextmanager
    def _tx(self, *, write: bool = False, create: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction on a pooled connection (``BEGIN IMMEDIATE`` to write)."""
        with self._errors(), self._connection(create=create) as con, _transaction(con, write=write):
            yield con

    @contextlib.contextmanager
    def _connection(self, *, create: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection from the pool (a new one when none is free), back in the pool afterwards."""
        with self._pool_lock:
            if self._pid != os.getpid():  # a forked child never uses (nor closes) its parent's
                self._forked += self._pool
                self._pool, self._pid = [], os.getpid()
            con = self._pool.pop() if self._pool else None
        if con is None:
            self._sweep_once()
            con = self._open(create=create)
        try:
            yield con
        finally:
            with self._pool_lock:
                if self._pid == os.getpid():
                    self._pool.append(con)

    def _open(self, *, create: bool = False) -> sqlite3.Connection:
        """A new connection with the busy timeout, ``synchronous=NORMAL``, the R-tree trigger
        functions, and the store's own tables created or migrated."""
        with self._errors():
            if create:
                _create(self.path)
            con = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=rw", uri=True,
                                  isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            try:
                con.execute("PRAGMA synchronous = NORMAL")
                register_functions(con)
                if not gpkg_schema.is_current(con):
                    _upgrade(con)
            except BaseException:
                con.close()
                raise
        return con

    @contextlib.contextmanager
    def _staged(self, frames: Mapping[str, pd.DataFrame]) -> Iterator[sqlite3.Connection]:
        """GDAL writes ``frames`` into a scratch GeoPackage (and closes it); then one write
        transaction on a connection of this call alone, with that file attached read-only as
        ``scratch``. The connection is closed at the end: when it is the file's last, SQLite
        checkpoints and removes the ``-wal``."""
        with self._scratch() as scratch:
            for name, data in frames.items():
                try:
                    _write_layer(scratch, name, data)
                except (DataSourceError, DataLayerError) as exc:  # GDAL refused: the cause stays chained
                    raise StoreError(f"{self.location}: レイヤ {name} を書き込めません "
                                     f"({type(exc).__name__})。何も書き込んでいません") from exc
            con = self._open(create=True)
            try:
                with self._errors():
                    uri = f"{scratch.resolve().as_uri()}?mode=ro&immutable=1"  # absolute: a relative --store
                    con.execute("ATTACH DATABASE ? AS scratch", (uri,))
                    with _transaction(con, write=True):
                        gpkg_install.prepare(con)
                        yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[Path]:
        """A scratch GeoPackage path in a new folder beside the store, locked (``flock``) while
        this process lives and removed afterwards; folders of dead writers are swept first."""
        gpkg_files.make_folder(self.path.parent)
        self._sweep()
        while True:
            folder = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=SCRATCH_SUFFIX,
                                           dir=self.path.parent))
            try:
                fd = os.open(folder, os.O_RDONLY)
            except FileNotFoundError:  # another process swept it before it was locked
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(folder, fd):
                break
            os.close(fd)  # swept between open and lock: take another
        try:
            yield folder / "layers.gpkg"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            os.close(fd)

    def _sweep_once(self) -> None:
        """:meth:`_sweep` the first time this object looks at its file (the store "is opened")."""
        if not self._opened:
            self._opened = True
            self._sweep()

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A path beside the store, in a locked scratch folder, for a file that will replace the
        store in one rename (``karte export``): if the writer dies, the next open of the store
        removes the folder and everything in it (the copy and its journal)."""
        with self._scratch() as scratch:
            yield scratch.with_name("staged.gpkg")

    def _sweep(self) -> None:
        """Remove what writes that died left beside the store: scratch folders (their lock died
        with them), temporary copies of :func:`karte.store.gpkg_files.write_atomic`, and the
        ``.<name>.<pid>.export.gpkg`` copies (and journals) older versions of ``karte export``
        wrote, whose process is gone."""
        gpkg_files.sweep(self.path)
        old_exports = glob.escape(f".{self.path.name}.") + "*.export.gpkg*"
        for copy in self.path.parent.glob(old_exports):
            pid = copy.name[len(self.path.name) + 2:].split(".", 1)[0]
            if pid.isdigit() and not gpkg_files.alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    copy.unlink()
        for folder in self.path.parent.glob(glob.escape(f".{self.path.name}.") + "*" + SCRATCH_SUFFIX):
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(folder, fd):
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:  # locked: a write in progress
                pass
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite errors as :class:`StoreError` with a user-safe message."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(exc, self.location) from exc


# -- transactions and files ---------------------------------------------------------------------

@contextlib.contextmanager
def _transaction(con: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    """``BEGIN`` (one consistent snapshot) or ``BEGIN IMMEDIATE`` (the write lock, waiting up to
    the busy timeout); committed at the end, rolled back on any exception, Ctrl-C included.

    The writers queue on :func:`_writers` first: SQLite's busy handler waits by sleeping in
    growing steps (up to 100 ms each), so the threads and worker processes of a server
    contending for the file's write lock (every logged read of personal rows takes it) would
    wait far longer than the lock is held; a Python lock (threads) and an ``flock`` on the file
    (processes) hand over at once. The busy timeout stays the guard: writers that take neither
    (an older karte, another program) still wait their turn.
    """
    with _writers(con) if write else contextlib.nullcontext():
        if write and con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            con.execute("PRAGMA journal_mode = WAL")  # a new or a sealed file
        con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield con
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


class _FileWriters:
    """The writers of one file in this process: their lock, and the file opened for ``flock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fd = -1


_WRITERS: dict[tuple[int, str], _FileWriters] = {}   # (process, file) ->
_WRITERS_GUARD = threading.Lock()


@contextlib.contextmanager
def _writers(con: sqlite3.Connection) -> Iterator[None]:
    """Held while writing the file ``con`` is open on: the lock of this process's writers, then
    an exclusive ``flock`` on the file, which other processes' writers take too (``flock`` locks
    are apart from the POSIX locks SQLite itself takes; a file replaced since is opened anew)."""
    path = os.path.realpath(con.execute("PRAGMA database_list").fetchone()[2])
    with _WRITERS_GUARD:
        writers = _WRITERS.setdefault((os.getpid(), path), _FileWriters())
    with writers.lock:
        if writers.fd < 0 or os.fstat(writers.fd).st_ino != os.stat(path).st_ino:
            if writers.fd >= 0:
                os.close(writers.fd)
            writers.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        fcntl.flock(writers.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(writers.fd, fcntl.LOCK_UN)


def _upgrade(con: sqlite3.Connection) -> None:
    """Create or migrate the store's own tables; a read-only file is left as it is (reads work)."""
    try:
        with _transaction(con, write=True):
            gpkg_schema.upgrade(con)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_READONLY:
            raise


def _create(path: Path) -> None:
    """An empty file with karte's creation mode (it will hold personal data: 0600, or 0640 with
    ``KARTE_FILE_GROUP``); never replaces one."""
    gpkg_files.create(path)


def _same_file(folder: Path, fd: int) -> bool:
    try:
        return os.stat(folder).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _store_error(exc: sqlite3.Error, location: str) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if code == sqlite3.SQLITE_BUSY:
        return StoreError(f"{location} は他の処理が書き込み中です ({BUSY_TIMEOUT_S:.0f} 秒待ちました)。"
                          "しばらくしてからやり直してください")
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CANTOPEN):
        return StoreError(f"{location} を GeoPackage として開けません ({first})")
    return StoreError(f"{location} を読み書きできません ({first})")


def _has_layer(con: sqlite3.Connection, layer: str) -> bool:
    hit = con.execute("SELECT 1 FROM gpkg_contents WHERE lower(table_name) = lower(?)", (layer,))
    return hit.fetchone() is not None


# -- whole-layer writes ------------------------------------------------------------------------------

def _check_names(names: list[str]) -> None:
    """No internal table (the access log above all) is ever written as a layer, none twice."""
    problems, seen = [], set()
    for name in names:
        low = name.lower()
        if low == gpkg_schema.AUDIT_TABLE:
            problems.append(f"{name} は閲覧記録の表です。レイヤとして書き込めません "
                            "(the access log is append-only)")
        elif not name or low.startswith(RESERVED_PREFIXES):
            problems.append(f"{name!r} は内部の表の名前です。レイヤの名前にできません")
        if low in seen:
            problems.append(f"レイヤ {name} が二度あります")
        seen.add(low)
    if problems:
        raise StoreError("書き込めません。何も書き込んでいません:\n" + "\n".join(problems))


def _check_replace(access: Access | None, names: list[str]) -> None:
    """Only city staff replace a personal layer; the public writes nothing."""
    if access is None:
        return
    if access.level == Level.PUBLIC:
        raise AccessDenied("一般の利用者はレイヤを書き込めません")
    for name in names:
        entry = _spec(name)
        if entry is not None and entry.personal and access.level != Level.CITY_STAFF:
            raise AccessDenied(f"{entry.title_ja} ({name}) を置き換えられるのは市職員だけです")


def _prepare(name: str, data: pd.DataFrame, actor: str, problems: list[str]) -> pd.DataFrame | None:
    """The frame GDAL writes for ``name``: in EPSG:6678, and on personal and record layers with
    the system columns last (carried ones kept, missing ones filled; versions in the transaction)."""
    if not isinstance(data, pd.DataFrame):
        problems.append(f"{name}: DataFrame が必要です (got {type(data).__name__})")
        return None
    if data.columns.duplicated().any() or not all(isinstance(c, str) for c in data.columns):
        problems.append(f"{name}: 列名は重複のない文字列でなければなりません")
        return None
    if _has_geometry(data) and data.crs is not None and data.crs != CRS:
        data = data.to_crs(CRS)
    if not _is_tracked(_spec(name)):
        return data
    try:
        version = pd.array(data["version"] if "version" in data else [pd.NA] * len(data), dtype="Int64")
    except (TypeError, ValueError):
        problems.append(f"{name}: 列 version に整数でない値があります")
        return None
    out = data.drop(columns=[c for c in SYSTEM_COLUMNS if c in data.columns])
    out["version"] = version
    for column, default in (("updated_at", gpkg_schema.now()), ("updated_by", actor)):
        carried = data[column].astype(object) if column in data else pd.Series(None, index=data.index)
        out[column] = carried.where(carried.notna(), default)
    return out


def _write_layer(path: Path, name: str, data: pd.DataFrame) -> None:
    """GDAL writes one layer into the scratch GeoPackage ``path`` (never into the store)."""
    if _has_geometry(data):
        geometry_type = _promote(data, _spec(name))
        pyogrio.write_dataframe(data, path, layer=name, driver="GPKG", geometry_type=geometry_type,
                                promote_to_multi=geometry_type.startswith("Multi"))
    else:
        pyogrio.write_dataframe(pd.DataFrame(data), path, layer=name, driver="GPKG")


def _promote(data: gpd.GeoDataFrame, entry: LayerSpec | None) -> str:
    """The layer's geometry type: points, multipolygons (polygons promoted), else generic; a
    layer without any geometry takes its declared type."""
    kinds = set(data.geom_type.dropna())
    if not kinds:
        return entry.geometry if entry is not None and entry.geometry else "Unknown"
    if kinds <= {"Point"}:
        return "Point"
    if kinds <= {"Polygon", "MultiPolygon"}:
        return "MultiPolygon"
    return "Unknown"


def _after_replace(con: sqlite3.Connection, name: str, access: Access | None) -> None:
    """Versions, the id counter and the access-log row of a replaced personal or record layer."""
    entry = _spec(name)
    if not _is_tracked(entry):
        return
    fill_versions(con, name)
    if entry.id_prefix and entry.key in _columns(con, name):
        gpkg_schema.raise_to(con, gpkg_rows.id_counter(name), max_suffix(con, name, entry))
    if entry.personal and access is not None:
        count = con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]
        gpkg_schema.log(con, access, "write", name, None, count)


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM pragma_table_info(?)", (table,))}


def _record_frame(entry: LayerSpec) -> pd.DataFrame:
    """An empty frame of a record layer's declared columns and geometry (its first append)."""
    data = pd.DataFrame({c.name: pd.Series(dtype=_RECORD_DTYPES[c.kind]) for c in entry.columns})
    if entry.geometry:
        data = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=CRS), crs=CRS)
    return _prepare(entry.name, data, "", [])


def _spec(layer: str) -> LayerSpec | None:
    """The registry entry of ``layer``, whatever its case: the file matches table names
    case-insensitively, so ``REGISTER`` is the personal register, with all its rules."""
    return next((entry for name, entry in LAYERS.items() if name.lower() == str(layer).lower()), None)


def _canonical(layer: str) -> str:
    """A registry layer's name as the registry spells it; any other name as given."""
    entry = _spec(layer)
    return str(entry.name) if entry is not None else str(layer)


def _row_layer(layer: str) -> LayerSpec:
    entry = _spec(layer)
    if not _is_tracked(entry) or not entry.key:
        raise StoreError(f"行単位の読み書きができるのは個人情報と記録のレイヤだけです: {layer}")
    return entry


def _is_tracked(entry: LayerSpec | None) -> bool:
    """Does the layer carry the system columns (a personal or record layer)?"""
    return entry is not None and (entry.personal or entry.records)


def _has_geometry(data: pd.DataFrame) -> bool:
    return isinstance(data, gpd.GeoDataFrame) and data._geometry_column_name in data.columns


def _os_user() -> str:
    """Who the trusted pipeline writes as: the OS user."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid-{os.getuid()}"
