"""Web users (利用者): names, access levels and Argon2id password hashes, kept in one file.

Where: ``WORKSPACE/users.json`` (or ``KARTE_USERS_FILE``), written atomically (temporary file and
``os.replace``) and readable by its owner only (mode 0600). A file works the same whichever store
holds the layers (GeoPackage or PostGIS), and keeps password hashes out of the store, whose
layers are exported, copied to QGIS desktops and readable by every database role.

Why argon2-cffi: Argon2id is the password hash OWASP recommends first; argon2-cffi is the
maintained binding of the reference C implementation (by a CPython core developer), with safe
parameters by default and ``check_needs_rehash`` to upgrade old hashes on login.

The command line (``karte users add NAME --level L [--district D]``, ``list``, ``remove``) is
:mod:`karte.cli.users`; this module holds no command.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from karte.domain.access import AGGREGATES_ONLY, Access, Level
from karte.domain.errors import InputError, KarteError, NotFoundError
from karte.domain.schema import DEFAULT_MUNICIPALITY
from karte.settings import Settings, get_settings

_HASHER = PasswordHasher()
#: Verified against when the user does not exist, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
DISTRICT_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MUNICIPALITY_RE = re.compile(r"^[0-9]{5}$")
MIN_PASSWORD = 10


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
        return self.all().get(name)

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (same time for unknown names)."""
        user = self.get(name) if isinstance(name, str) else None
        try:
            _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
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
            user = User(name=name, level=level, district=district if level == Level.DISTRICT_MEMBER else None,
                        password_hash=_HASHER.hash(password),
                        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        stamp=secrets.token_hex(8), municipality=municipality or None)
            users[name] = user
            self._write_unlocked(users)
        return user

    def remove(self, name: str) -> None:
        with self._write_lock:
            users = self._fresh()
            if name not in users:
                raise NotFoundError(f"利用者 {name} はいません")
            del users[name]
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"users": [{**asdict(u), "level": str(u.level)} for u in sorted(users.values(),
                                                                                key=lambda u: u.name)]}
        fd, tmp = tempfile.mkstemp(prefix=".users.", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=1)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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
