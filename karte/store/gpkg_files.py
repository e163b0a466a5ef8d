"""The one rule for the files karte writes: who may read them, kept across atomic replacements.

Every file karte creates (the GeoPackage store, ``karte export`` files, sheets, CSV and other
exports, the users file) gets one creation mode (``docs/security.md``):

* **personal use** (default): ``0600``, readable by its owner only; new folders ``0700``;
* **a server user** (``KARTE_FILE_GROUP=<group>``: an operator writes the store, a server running as
  another user of that group reads and writes it): ``0640`` with the file's group set to that
  group (the server's writes need ``0660``: set ``KARTE_FILE_MODE=0660``); new folders ``0750``
  (``0770``). Give the folder the set-group-id bit (``chmod g+s``) so that files SQLite creates
  beside the store (``-wal``, ``-shm``) get the group too: SQLite copies the store's mode to them.

A file replaced atomically (written beside it, then renamed over it) keeps the mode and group of
the file it replaces, so an operator's ``chmod``/``chgrp`` survives every later write.

Temporary copies are named ``.<name>.<pid>.<random>.tmp`` beside their target; :func:`sweep` removes
those of processes that are gone (a ``kill -9`` mid-write), and the GeoPackage store sweeps its own
scratch folders when it is opened (:meth:`karte.store.gpkg.GeoPackageStore._sweep`).

Stdlib only, so every layer of karte may use it (the store, the services, the command line).
"""

from __future__ import annotations

import contextlib
import glob
import grp
import os
import re
import secrets
from pathlib import Path

#: The default: the owner alone reads what karte writes (it may hold personal data).
PRIVATE_MODE = 0o600
#: With ``KARTE_FILE_GROUP``: the group reads too.
GROUP_MODE = 0o640
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def file_group() -> int | None:
    """The group id of ``KARTE_FILE_GROUP`` (a name or a number), or None when unset.

    Raises ``ValueError`` for a group that does not exist (a typo must not leave files unreadable
    by the server, nor silently private)."""
    name = os.environ.get("KARTE_FILE_GROUP", "").strip()
    if not name:
        return None
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ValueError(f"KARTE_FILE_GROUP: グループ {name} がありません") from None


def creation_mode() -> int:
    """The mode of a new file: ``KARTE_FILE_MODE`` (octal, at most ``0660``) if set, else ``0640``
    with a group and ``0600`` without."""
    text = os.environ.get("KARTE_FILE_MODE", "").strip()
    if text:
        mode = int(text, 8)
        if mode & ~0o660:
            raise ValueError("KARTE_FILE_MODE は 0600, 0640, 0660 のいずれかにしてください"
                             "（他の利用者には読ませません）")
        return mode
    return GROUP_MODE if file_group() is not None else PRIVATE_MODE


def folder_mode() -> int:
    """The mode of a new folder: the file mode with the matching search (x) bits."""
    mode = creation_mode()
    return mode | ((mode & 0o444) >> 2)


def apply(path: Path | str, *, like: Path | str | None = None) -> None:
    """Give ``path`` the mode and group of ``like`` when that file exists (a replacement keeps
    the replaced file's), else the creation mode and ``KARTE_FILE_GROUP``."""
    path = Path(path)
    if like is not None:
        try:
            st = os.stat(like)
        except FileNotFoundError:
            pass
        else:
            os.chmod(path, st.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):  # a group we are not in: keep ours
                os.chown(path, -1, st.st_gid)
            return
    os.chmod(path, creation_mode())
    gid = file_group()
    if gid is not None:
        os.chown(path, -1, gid)


def make_folder(path: Path | str) -> Path:
    """``mkdir -p`` with :func:`folder_mode` for the folders it creates (existing ones are left)."""
    path = Path(path)
    missing = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=folder_mode())
            gid = file_group()
            if gid is not None:
                os.chown(folder, -1, gid)
    return path


def create(path: Path | str) -> None:
    """Create an empty file with the creation mode and group; an existing file is left as it is."""
    path = Path(path)
    make_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, creation_mode())
    except FileExistsError:
        return
    try:
        apply(path)  # the mode again: the umask may have taken bits off
    finally:
        os.close(fd)


def temp_path(path: Path | str) -> Path:
    """A temporary path beside ``path`` that :func:`sweep` recognises (``.<name>.<pid>.<hex>.tmp``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` all at once: a temporary file beside it (created with the mode
    the result will have: the old file's, else the creation mode), flushed to disk, then renamed
    over ``path``. A reader sees the old file or the new one, never half of one; a crash leaves at
    most a temporary file that :func:`sweep` removes."""
    path = Path(path)
    make_folder(path.parent)
    sweep(path)
    tmp = temp_path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        apply(tmp, like=path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def sweep(path: Path | str) -> list[Path]:
    """Remove the temporary copies of ``path`` (:func:`temp_path`) whose writing process is gone,
    with any SQLite journal beside them; returns what was removed."""
    path = Path(path)
    removed = []
    pattern = glob.escape(f".{path.name}.") + "*.tmp*"
    for candidate in path.parent.glob(pattern):
        base = candidate.name
        for suffix in ("-journal", "-wal", "-shm"):
            base = base.removesuffix(suffix)
        m = _TEMP.match(base)
        if not m or m.group("name") != path.name or alive(int(m.group("pid"))):
            continue
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
