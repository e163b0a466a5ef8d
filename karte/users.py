"""Web users (利用者): names, access levels and Argon2id password hashes, kept in one file.

Where: ``WORKSPACE/users.json`` (or ``KARTE_USERS_FILE``), written atomically (temporary file and
``os.replace``) and readable by its owner only (mode 0600). A file works the same whichever store
holds the layers (GeoPackage or PostGIS), and keeps password hashes out of the store, whose
layers are exported, copied to QGIS desktops and readable by every database role.

Why argon2-cffi: Argon2id is the password hash OWASP recommends first; argon2-cffi is the
maintained binding of the reference C implementation (by a CPython core developer), with safe
parameters by default and ``check_needs_rehash`` to upgrade old hashes on login.

Names are compared as :func:`name_key` gives them (NFKC-normalised and case-folded): ``DM05``,
``dm05`` and ``ＤＭ０５`` are one user, for logging in and for the login throttle alike.

Logins are **server-side sessions** (:class:`Sessions`), kept in the store's ``web_sessions``
record layer (:mod:`karte.domain.security`): a browser cookie or a bearer token carries only a
random token, the store keeps its SHA-256. A session is valid while its row is open and
unexpired and the user in this file is unchanged, so logging out, a password change, removing
the user or changing their level, district or municipality ends every session and token of
theirs at once, in every server process; city staff list and end sessions
(``karte users sessions``, ``karte users end``).

The command line (``karte users add NAME --level L [--district D]``, ``list``, ``remove``,
``password``, ``sessions``, ``end``) is :mod:`karte.cli.users`; this module holds no command.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from karte.domain.access import AGGREGATES_ONLY, Access, Level
from karte.domain.errors import AccessDenied, ConflictError, InputError, KarteError, NotFoundError, StoreError
from karte.domain.schema import DEFAULT_MUNICIPALITY
from karte.domain.security import SESSIONS, SessionKind
from karte.settings import Settings, get_settings
from karte.store.gpkg_files import write_atomic

_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so an unknown name takes as long as a wrong
    password. Made at the first login, not at import (an Argon2 hash costs 0.5 s, which every
    command and every server start paid)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
DISTRICT_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MUNICIPALITY_RE = re.compile(r"^[0-9]{5}$")
MIN_PASSWORD = 10
#: Ended and expired sessions of a user are deleted at their next login once this old.
PRUNE_AFTER = dt.timedelta(days=7)


def name_key(name: str) -> str:
    """How user names are compared: NFKC-normalised (full-width letters and digits become ASCII)
    and case-folded, surrounding white space removed. ``DM05``, ``dm05`` and ``ＤＭ０５`` are one
    name for logging in, for the login throttle and for adding a user."""
    return unicodedata.normalize("NFKC", str(name)).strip().casefold()


@dataclass(frozen=True)
class User:
    """One web user. ``stamp`` changes with every password change, so old tokens stop working."""

    name: str
    level: Level
    district: str | None
    password_hash: str
    created_at: str
    stamp: str
    #: JIS code of the user's municipality (None for the prefecture level and the public).
    municipality: str | None = DEFAULT_MUNICIPALITY

    def access(self, route: str = "web") -> Access:
        return Access(user=self.name, level=self.level, district=self.district, route=route,
                      municipality=self.municipality)


def users_file(settings: Settings | None = None) -> Path:
    """``KARTE_USERS_FILE`` if set, else ``WORKSPACE/users.json``."""
    env = os.environ.get("KARTE_USERS_FILE")
    if env:
        return Path(env)
    return (settings or get_settings()).workspace / "users.json"


class UserFile:
    """The users of one file. Reads are cached until the file changes; writes are atomic."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()         # guards the cache
        self._write_lock = threading.Lock()   # one writer at a time in this process
        self._cache: tuple[tuple, dict[str, User]] | None = None

    # -- reading -----------------------------------------------------------------------------

    def all(self) -> dict[str, User]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if self._cache and self._cache[0] == key:
                return self._cache[1]
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            users = {u["name"]: User(name=u["name"], level=Level(u["level"]), district=u.get("district"),
                                     password_hash=u["password_hash"], created_at=u["created_at"],
                                     stamp=u["stamp"], municipality=_municipality_of(u))
                     for u in raw.get("users", [])}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KarteError(f"利用者ファイル {self.path} を読めません ({type(exc).__name__})") from exc
        with self._lock:
            self._cache = (key, users)
        return users

    def get(self, name: str) -> User | None:
        """The user called ``name``, compared as :func:`name_key` (an exact match first)."""
        if not isinstance(name, str):
            return None
        users = self.all()
        if name in users:
            return users[name]
        key = name_key(name)
        found = [u for n, u in users.items() if name_key(n) == key]
        return found[0] if len(found) == 1 else None

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (same time for unknown names). One
        Argon2 check (64 MiB, tens of milliseconds): the web bounds how many run at once
        (:class:`api.auth.LoginGate`)."""
        user = self.get(name) if isinstance(name, str) else None
        try:
            _HASHER.verify(user.password_hash if user else _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None:
            return None
        if _HASHER.check_needs_rehash(user.password_hash):
            self._replace(user, password_hash=_HASHER.hash(password))
        return user

    # -- writing -----------------------------------------------------------------------------

    def add(self, name: str, password: str, *, level: Level | str, district: str | None = None,
            municipality: str | None = None, replace: bool = False) -> User:
        """Add a user (or replace one with ``replace``) of ``municipality`` (JIS code; default
        ``KARTE_MUNICIPALITY``; none for the prefecture level and the public). Raises
        :class:`InputError` on a bad name, level, district, municipality or a password shorter
        than :data:`MIN_PASSWORD`."""
        level = _level(level)
        if level in AGGREGATES_ONLY:
            if municipality:
                raise InputError("--municipality は市町村の利用者だけに指定します（県社協・一般は全市町村）")
        else:
            municipality = municipality or get_settings().municipality
            if not MUNICIPALITY_RE.match(municipality):
                raise InputError("市町村コードは全国地方公共団体コードの 5 桁です（例: 青森市 02201）")
        if not NAME_RE.match(name or ""):
            raise InputError("利用者名は英数字と _ . @ - の 1〜64 文字にしてください")
        if level == Level.DISTRICT_MEMBER:
            if not district or not DISTRICT_RE.match(district):
                raise InputError("地区社協の利用者には地区コード（例: S05）を --district で指定してください")
        elif district:
            raise InputError("--district は地区社協（district_member）の利用者だけに指定します")
        if len(password or "") < MIN_PASSWORD:
            raise InputError(f"パスワードは {MIN_PASSWORD} 文字以上にしてください")
        with self._write_lock:
            users = self._fresh()
            if name in users and not replace:
                raise InputError(f"利用者 {name} はすでにいます（変更は --replace）")
            twin = next((n for n in users if n != name and name_key(n) == name_key(name)), None)
            if twin is not None:
                raise InputError(f"利用者 {name} は {twin} と同じ名前です（大文字・小文字や全角・半角は"
                                 "区別しません）")
            user = User(name=name, level=level, district=district if level == Level.DISTRICT_MEMBER else None,
                        password_hash=_HASHER.hash(password),
                        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        stamp=secrets.token_hex(8), municipality=municipality or None)
            users[name] = user
            self._write_unlocked(users)
        return user

    def set_password(self, name: str, password: str) -> User:
        """Change ``name``'s password (a new stamp: every session and token of theirs ends)."""
        if len(password or "") < MIN_PASSWORD:
            raise InputError(f"パスワードは {MIN_PASSWORD} 文字以上にしてください")
        with self._write_lock:
            users = self._fresh()
            user = self.get(name)
            if user is None:
                raise NotFoundError(f"利用者 {name} はいません")
            users[user.name] = User(**{**asdict(user), "password_hash": _HASHER.hash(password),
                                       "stamp": secrets.token_hex(8)})
            self._write_unlocked(users)
            return users[user.name]

    def remove(self, name: str) -> None:
        with self._write_lock:
            users = self._fresh()
            user = self.get(name)
            if user is None:
                raise NotFoundError(f"利用者 {name} はいません")
            del users[user.name]
            self._write_unlocked(users)

    def _replace(self, user: User, **changes) -> None:
        with self._write_lock:
            users = self._fresh()
            if user.name in users:
                users[user.name] = User(**{**asdict(users[user.name]), **changes})
                self._write_unlocked(users)

    def _fresh(self) -> dict[str, User]:
        with self._lock:
            self._cache = None
        return dict(self.all())

    def _write_unlocked(self, users: dict[str, User]) -> None:
        data = {"users": [{**asdict(u), "level": str(u.level)} for u in sorted(users.values(),
                                                                                key=lambda u: u.name)]}
        # atomic, with the file's mode kept (0600 by default; docs/security.md)
        write_atomic(self.path, json.dumps(data, ensure_ascii=False, indent=1))
        with self._lock:
            self._cache = None


def _municipality_of(raw: dict) -> str | None:
    """A stored user's municipality; files written before municipalities name none: the
    deployment's (``KARTE_MUNICIPALITY``) for the levels that need one."""
    if Level(raw["level"]) in AGGREGATES_ONLY:
        return None
    return raw.get("municipality") or get_settings().municipality


def _level(value: Level | str) -> Level:
    try:
        return Level(str(value))
    except ValueError:
        raise InputError(f"権限 {value!r} はありません。次のいずれか: "
                         f"{', '.join(str(v) for v in Level)}") from None


# --- server-side sessions ----------------------------------------------------------------------------

def token_hash(token: str) -> str:
    """What the store keeps of a session token: its SHA-256 (the token is 256 random bits, so a
    copy of the store gives nobody a session)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _when(text) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


class Sessions:
    """Logins kept in the store (``web_sessions``, :data:`karte.domain.security.SESSIONS`).

    Every server process asks the store on every request (one small read as the store's trusted
    user, not logged), so a session ended in one process is ended in all of them at once. Rows
    are written by the user the session belongs to, as themselves (their logins and logouts are
    in the access log), or by the city staff member who ends them.

    Parameters
    ----------
    store
        The karte store (GeoPackage or PostGIS).
    users
        The users file: a session is valid only while its user there is unchanged.
    """

    layer = str(SESSIONS.name)

    def __init__(self, store, users: UserFile):
        self.store = store
        self.users = users

    # -- the rows --------------------------------------------------------------------------------

    def rows(self, *, versions: bool = False, token_hash: str | None = None) -> list[dict]:
        """Every session row, read as the store's trusted user (nothing logged): the login check
        itself. ``versions``: with the row versions an edit needs; ``token_hash``: only the rows
        of that token, selected by the store (every request asks, and the layer keeps every
        session ever started: 3,000 rows read whole cost 15 ms a request)."""
        try:
            if versions:
                frame = self.store.read_full(self.layer)
                return [{k: (None if _missing(v) else v) for k, v in r.items()}
                        for r in frame.to_dict(orient="records")]
            if token_hash is not None:
                return self.store.read_records(self.layer, match={"token_hash": token_hash})
            return self.store.read_records(self.layer)
        except StoreError:
            if self.layer in self.store.layers():
                raise
            return []  # nobody has logged in yet: the layer is made by the first login

    def _find(self, token: str, kind: SessionKind | str, *, versions: bool = False) -> dict | None:
        wanted = token_hash(token)
        for row in self.rows(versions=versions, token_hash=None if versions else wanted):
            if row.get("kind") == str(kind) and hmac.compare_digest(str(row.get("token_hash") or ""), wanted):
                return row
        return None

    # -- logging in and out ---------------------------------------------------------------------------

    def start(self, user: User, *, kind: SessionKind | str, hours: float, client: str | None = None,
              route: str = "web:login") -> str:
        """A new session of ``user``; returns its token (give it to the browser or client once)."""
        token = secrets.token_urlsafe(32)
        now = _now()
        row = {"municipality_code": user.municipality,
               "district_code": user.district, "user_name": user.name, "user_level": str(user.level),
               "user_stamp": user.stamp, "kind": str(kind), "token_hash": token_hash(token),
               "client": (client or "")[:64] or None, "created_at": _iso(now),
               "expires_at": _iso(now + dt.timedelta(hours=hours)), "ended_at": None, "ended_by": None,
               "end_reason": None}
        acting = user.access(route)
        self.store.append_rows(self.layer, [row], access=acting)
        self._prune(user, acting)
        return token

    def resolve(self, token: str | None, *, kind: SessionKind | str) -> User | None:
        """The user of a valid session ``token`` of ``kind``, else None: no such row, ended,
        expired, or the user removed or changed since (password, level, district, municipality)."""
        if not token or len(token) > 256:
            return None
        row = self._find(token, kind)
        if row is None or status(row, self.users) != "active":
            return None
        return self.users.get(row["user_name"])

    def end(self, token: str | None, *, kind: SessionKind | str, reason: str = "logout",
            route: str = "web:logout") -> bool:
        """End the session ``token`` as its own user (logging out); False when there was none open."""
        if not token:
            return False
        row = self._find(token, kind, versions=True)
        if row is None or row.get("ended_at"):
            return False
        return self._end(row, _row_access(row, route), reason)

    # -- city staff --------------------------------------------------------------------------------------

    def listing(self, viewer: Access, *, every: bool = False) -> list[dict]:
        """The sessions of the viewer's municipality (city staff only), newest first, each with its
        ``status`` (:func:`status`); open ones only unless ``every``. The read is in the access
        log (action ``read``, layer ``web_sessions``)."""
        _require_staff(viewer)
        rows = [r for r in self.rows() if r.get("municipality_code") in (viewer.municipality, None)]
        out = []
        for row in rows:
            row = {k: v for k, v in row.items() if k != "token_hash"}
            row["status"] = status(row, self.users)
            if every or row["status"] == "active":
                out.append(row)
        out.sort(key=lambda r: str(r.get("created_at")), reverse=True)
        self.store.audit(access=viewer, layer=self.layer, district=None, rows=len(out), action="read")
        return out

    def end_session(self, session_id: str, *, by: Access, reason: str = "ended") -> bool:
        """End one session (by its id, ``WS000012``) as city staff ``by``; False when already ended."""
        _require_staff(by)
        row = next((r for r in self.rows(versions=True) if r.get("session_id") == session_id
                    and r.get("municipality_code") in (by.municipality, None)), None)
        if row is None:
            raise NotFoundError(f"ログインの記録 {session_id} はありません")
        if row.get("ended_at"):
            return False
        return self._end(row, by, reason, audited=True)

    def end_user(self, name: str, *, by: Access | None = None, reason: str = "ended") -> int:
        """End every open session and token of user ``name``: as city staff ``by``, or, without
        one, as the user themselves (their own logout everywhere). Returns how many ended."""
        if by is not None:
            _require_staff(by)
        key = name_key(name)
        ended = 0
        for row in self.rows(versions=True):
            if name_key(row.get("user_name") or "") != key or row.get("ended_at"):
                continue
            if by is not None and row.get("municipality_code") not in (by.municipality, None):
                continue
            ended += self._end(row, by or _row_access(row, "cli:users"), reason, audited=by is not None)
        return ended

    # -- internals -------------------------------------------------------------------------------------

    def _end(self, row: dict, acting: Access, reason: str, *, audited: bool = False) -> bool:
        """End ``row`` as ``acting``; ``audited``: city staff ending another user's session, which
        the access log records (the store does not log row calls on this layer)."""
        try:
            self.store.update_row(self.layer, row["session_id"],
                                  {"ended_at": _iso(_now()), "ended_by": acting.user, "end_reason": reason},
                                  version=int(row["version"]), access=acting)
        except (ConflictError, NotFoundError):  # ended meanwhile by someone else
            return False
        if audited:
            self.store.audit(access=acting, layer=self.layer, district=row.get("district_code"), rows=1,
                             action="update")
        return True

    def _prune(self, user: User, acting: Access) -> None:
        """Delete the user's own sessions that ended or expired more than :data:`PRUNE_AFTER` ago,
        so the table stays the size of the sessions in use (the access log keeps the history)."""
        cutoff = _now() - PRUNE_AFTER
        for row in self.rows(versions=True):
            if row.get("user_name") != user.name:
                continue
            over = _when(row.get("ended_at")) or _when(row.get("expires_at"))
            if over is not None and over < cutoff:
                with contextlib.suppress(KarteError):  # another process pruned it first
                    self.store.delete_row(self.layer, row["session_id"], version=int(row["version"]),
                                          access=acting)


def status(row: dict, users: UserFile) -> str:
    """``active``, ``ended`` (logged out or ended by staff), ``expired`` or ``changed`` (the user
    was removed, or their password, level, district or municipality changed since the login)."""
    if row.get("ended_at"):
        return "ended"
    expires = _when(row.get("expires_at"))
    if expires is None or expires <= _now():
        return "expired"
    user = users.get(str(row.get("user_name") or ""))
    if user is None:
        return "changed"
    now = (user.name, user.stamp, str(user.level), user.district or None, user.municipality or None)
    then = (row.get("user_name"), row.get("user_stamp"), row.get("user_level"),
            row.get("district_code") or None, row.get("municipality_code") or None)
    if now != then:
        return "changed"
    return "active"


STATUS_JA = {"active": "有効", "ended": "終了", "expired": "期限切れ",
             "changed": "無効（利用者の削除・変更）"}


def _row_access(row: dict, route: str) -> Access:
    """The session's own user, as the row records them (they may have been removed since)."""
    level = Level(row.get("user_level") or Level.PUBLIC)
    return Access(user=str(row.get("user_name")), level=level,
                  district=row.get("district_code") if level == Level.DISTRICT_MEMBER else None,
                  route=route, municipality=row.get("municipality_code"))


def _require_staff(access: Access) -> None:
    if access.level != Level.CITY_STAFF:
        raise AccessDenied("ログインの記録を見たり終了したりできるのは市職員だけです")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or str(value) in ("<NA>", "NaT")
