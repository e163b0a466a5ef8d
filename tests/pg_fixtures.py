"""PostGIS test fixtures, and the CI guard: PostGIS tests skip on a laptop without a database but
never in CI.

``KARTE_TEST_DATABASE_URL`` is the database owner (it migrates and resets the test database);
the store under test connects as the application role ``karte_app``
(``KARTE_TEST_APP_DATABASE_URL``, or the owner URL with user karte_app and ``KARTE_APP_PASSWORD``).
``eval "$(bash scripts/setup_postgis.sh)"`` sets both. Each session works in its own database
created beside that one (see :data:`SESSION_DB_SUFFIX`).

With ``CI=true`` a missing database fails the tests instead of skipping them, and the hooks below
(imported into ``conftest.py``) fail the session if any test marked ``postgis`` was skipped anyway.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

ADMIN_ENV = "KARTE_TEST_DATABASE_URL"
APP_ENV = "KARTE_TEST_APP_DATABASE_URL"
#: Layer tables, the catalogue and the snapshot stamp; emptied before each PostGIS test, with the
#: sequences they own (record ids start again at 1). The audit log is append-only and is never
#: emptied: tests look at the rows they added.
#: Tables a reset keeps: the schema's revision and the audit log (tests read what they wrote).
#: Every other table of the ``karte`` schema, whichever migration made it, is emptied.
KEEP_TABLES = ("alembic_version", "audit_log")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


#: Written by ``scripts/setup.sh`` (the output of ``scripts/setup_postgis.sh``), so the README's
#: test command finds the database it set up; the environment variables win over it.
SETUP_ENV_FILE = Path(__file__).resolve().parent.parent / ".venv" / "karte-postgis.env"


def _from_setup_file(name: str) -> str:
    if not SETUP_ENV_FILE.exists():
        return ""
    for line in SETUP_ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line.startswith(f"export {name}="):
            return line.split("=", 1)[1].strip().strip("'\"")
    return ""


def setting(name: str) -> str:
    """``name`` from the environment, else from the file ``scripts/setup.sh`` wrote."""
    return os.environ.get(name, "").strip() or _from_setup_file(name)


def admin_url_or_skip() -> str:
    url = setting(ADMIN_ENV)
    if url:
        return url
    message = (f"{ADMIN_ENV} is not set: no PostGIS database to test against "
               '(eval "$(bash scripts/setup_postgis.sh)")')
    if in_ci():
        pytest.fail(f"{message}; CI=true, so PostGIS tests must run, not skip", pytrace=False)
    pytest.skip(message)


def derive_app_url(admin_url: str) -> str:
    explicit = setting(APP_ENV)
    if explicit:
        return explicit
    url = make_url(admin_url)
    url = url.set(username="karte_app", password=os.environ.get("KARTE_APP_PASSWORD", "karte-dev"))
    if "host" in url.query:  # a Unix socket means peer authentication: use TCP with the password
        url = url.difference_update_query(["host"]).set(host="127.0.0.1")
    return url.render_as_string(hide_password=False)


def libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    u = make_url(url)
    parts = {"dbname": u.database, "user": u.username, "password": u.password,
             "host": u.host or u.query.get("host"), "port": u.port or u.query.get("port")}
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


#: Each pytest session gets its own database beside the configured one (``<db>_s<pid>``), so two
#: sessions on one server (two developers, or CI jobs) never empty each other's tables midway.
SESSION_DB_SUFFIX = "_s"


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _session_database(base_url: str) -> str | None:
    """Create this session's database (dropping those of sessions that died on this host); None
    when the owner may not create databases (then the configured one is used as it is)."""
    base = make_url(base_url).database
    name = f"{base}{SESSION_DB_SUFFIX}{os.getpid()}"
    try:
        with psycopg.connect(libpq(base_url), autocommit=True) as conn:
            stale = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{base}{SESSION_DB_SUFFIX}%",))]
            for old in stale:
                pid = old.removeprefix(f"{base}{SESSION_DB_SUFFIX}")
                if pid.isdigit() and not _pid_alive(int(pid)):
                    conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.errors.InsufficientPrivilege:
        return None
    return name


#: Advisory lock, taken in the configured database, around every migration a test session runs.
MIGRATION_GUARD = 0x6B61727467


@contextlib.contextmanager
def migrations_serialised():
    """Hold off other test sessions' migrations on this server meanwhile. Migration 0001 alters the
    cluster-wide roles (``ALTER ROLE karte_app``); two sessions migrating their own databases at
    the same moment collide there ("tuple concurrently updated"), and the migrations' own lock is
    per database, so the sessions serialise on one in the database they share."""
    with psycopg.connect(libpq(admin_url_or_skip()), autocommit=True) as guard:
        guard.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_GUARD,))
        yield  # released with the connection


@pytest.fixture(scope="session")
def pg_admin_url():
    """The owner URL of this session's migrated test database (``karte db upgrade`` once)."""
    from karte.store.cli import db_upgrade

    base = admin_url_or_skip()
    name = _session_database(base)
    url = _with_database(base, name) if name else base
    with migrations_serialised():
        db_upgrade(url)
    yield url
    if name:
        with psycopg.connect(libpq(base), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_app_url(pg_admin_url) -> str:
    """karte_app on the same database as :func:`pg_admin_url`."""
    return _with_database(derive_app_url(pg_admin_url), make_url(pg_admin_url).database)


@pytest.fixture(scope="session")
def pg_app_dsn(pg_app_url) -> str:
    """The application role's libpq connection string (for raw psycopg connections)."""
    return libpq(pg_app_url)


@pytest.fixture
def pg_admin(pg_admin_url):
    """An autocommit psycopg connection as the database owner."""
    with psycopg.connect(libpq(pg_admin_url), autocommit=True) as conn:
        yield conn


def reset(admin_url: str) -> None:
    """Empty every table of the ``karte`` schema but :data:`KEEP_TABLES` (as the owner: the
    append-only ledgers refuse DELETE but not an owner's TRUNCATE)."""
    with psycopg.connect(libpq(admin_url), autocommit=True) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'karte' ORDER BY tablename")
            if t not in KEEP_TABLES]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f"karte.{t}" for t in tables) + " RESTART IDENTITY")


@pytest.fixture
def pg_store(pg_admin_url, pg_app_url):
    """An empty PostGIS store, connected as karte_app."""
    from karte.store.postgis import PostGISStore

    reset(pg_admin_url)
    store = PostGISStore(pg_app_url)
    yield store
    store.close()


def as_level(conn, access, *, role: str | None = None) -> None:
    """What the store does at the start of every transaction, on a raw psycopg connection as
    karte_app (inside a transaction): the level's role (or ``role``), the user, district and
    municipality, all local to the transaction."""
    from karte.store.postgis import ROLE_OF

    conn.execute("SELECT set_config('role', %s, true), set_config('karte.user', %s, true), "
                 "set_config('karte.district', %s, true), set_config('karte.municipality', %s, true)",
                 (role or ROLE_OF[access.level], access.user, access.district or "",
                  access.municipality or ""))


# -- the CI guard: imported into conftest.py ------------------------------------------------------

_SKIPPED: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and "postgis" in report.keywords:
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED and in_ci():
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line(f"CI: {len(_SKIPPED)} PostGIS test(s) skipped; they must run in CI:",
                                red=True)
            for nodeid in _SKIPPED[:20]:
                reporter.write_line(f"  {nodeid}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
