"""The care tables in PostGIS (migration 0006): as modelled, idempotent, reversible; and row-level
security checked in the database with raw SQL as each application role: district members their own
district (read and write, as themselves), coordinators and city staff their municipality, the
public and the prefecture level no privilege at all; none of it in the unprotected generic table.
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from pg_fixtures import as_level, libpq, migrations_serialised
from psycopg import errors as pgerrors
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url
from test_care_support import CARE_TABLES, empty_care_tables

from karte.domain.access import Access, Level
from karte.domain.care import CareLayer
from karte.domain.errors import AccessDenied
from karte.store.cli import alembic_config, db_current, db_upgrade

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

MIGRATION = (Path(__file__).resolve().parent.parent / "karte" / "store" / "migrations" / "versions"
             / "0006_care.py")
STAFF = Access("rls-staff", Level.CITY_STAFF)
COORD = Access("rls-coord", Level.COORDINATOR)
MEMBER_A = Access("rls-member", Level.DISTRICT_MEMBER, "A")
ELSEWHERE = Access("rls-other-city", Level.CITY_STAFF, municipality="02202")


@pytest.fixture
def fresh_database(pg_admin, pg_admin_url):
    name = f"karte_care_{uuid.uuid4().hex[:8]}"
    pg_admin.execute(f"CREATE DATABASE {name}")
    admin = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    with migrations_serialised():
        yield admin
    pg_admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _diff(admin: str) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from karte.store.postgis_models import SCHEMA, Base

    engine = create_engine(admin, poolclass=pool.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_schemas": True, "version_table_schema": SCHEMA,
            "include_name": lambda name, kind, parents: kind != "schema" or name == SCHEMA})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return [d for d in diff if any(t in repr(d) for t in CARE_TABLES)]


def _tables(admin: str) -> set[str]:
    engine = create_engine(admin, poolclass=pool.NullPool)
    names = set(sa.inspect(engine).get_table_names(schema="karte"))
    engine.dispose()
    return names & set(CARE_TABLES)


def _run_upgrade_again(admin: str) -> None:
    """0006's upgrade() run once more on a database already at head (every step must cope)."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    spec = importlib.util.spec_from_file_location("care_migration", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = create_engine(admin, poolclass=pool.NullPool)
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        module.upgrade()
    engine.dispose()


def test_0006_creates_the_care_tables_as_modelled_idempotently_and_downgrades(fresh_database):
    from alembic import command

    admin = fresh_database
    db_upgrade(admin)
    assert _tables(admin) == set(CARE_TABLES)
    assert _diff(admin) == []
    _run_upgrade_again(admin)
    assert _diff(admin) == []
    command.downgrade(alembic_config(admin), "0005")
    assert _tables(admin) == set() and db_current(admin) == "0005"
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'ck_extra_layers_not_care'"
                            ).fetchone() == (0,)
    db_upgrade(admin)
    assert _tables(admin) == set(CARE_TABLES) and _diff(admin) == []


@pytest.fixture
def rows(pg_store, pg_admin_url):
    """Cases and meetings in districts A and B of Aomori (02201) and one of another city, written
    through the store by city staff (as themselves)."""
    empty_care_tables(pg_admin_url)
    pg_store.append_rows(CareLayer.CONCERNS, [{"district_code": d, "household": f"{d}-{i}", "status": "open"}
                                              for d in ("A", "B") for i in range(2)], access=STAFF)
    pg_store.append_rows(CareLayer.MEETINGS, [{"district_code": d, "held_on": "2026-11-01", "participants": 5}
                                              for d in ("A", "B")], access=STAFF)
    pg_store.append_rows(CareLayer.CONCERNS, [{"district_code": "A", "household": "elsewhere"}],
                         access=ELSEWHERE)
    yield pg_store
    empty_care_tables(pg_admin_url)


@pytest.fixture
def app(pg_app_dsn):
    with psycopg.connect(pg_app_dsn) as conn:
        yield conn


def _households(app, access, where: str = "") -> set[str]:
    with app.transaction():
        as_level(app, access)
        return {r[0] for r in app.execute(f"SELECT household FROM karte.care_concerns {where}")}


def test_each_role_sees_exactly_its_rows_in_raw_sql(rows, app):
    assert _households(app, STAFF) == _households(app, COORD) == {"A-0", "A-1", "B-0", "B-1"}
    assert _households(app, MEMBER_A) == {"A-0", "A-1"}
    assert _households(app, MEMBER_A, "WHERE district_code = 'B'") == set()  # asking does not widen it
    assert _households(app, ELSEWHERE) == {"elsewhere"}
    for table in CARE_TABLES:
        for outsider in (Access("p", Level.PUBLIC, municipality=None), Access("q", Level.PREFECTURE,
                                                                              municipality=None)):
            with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
                as_level(app, outsider)
                app.execute(f"SELECT count(*) FROM karte.{table}")
    # the store returns the same rows, and logs the read with the user
    assert sorted(rows.read(CareLayer.CONCERNS, access=MEMBER_A)["household"]) == ["A-0", "A-1"]
    log = rows.audit_log()
    assert log[log["actor"] == MEMBER_A.user][["level", "layer", "rows"]].values.tolist()[-1] == [
        "district_member", "care_concerns", 2]


def test_members_write_in_their_own_district_and_only_as_themselves(rows, app):
    with app.transaction():
        as_level(app, MEMBER_A)
        assert app.execute("UPDATE karte.care_concerns SET status = 'closed'").rowcount == 2  # A's only
        assert app.execute("DELETE FROM karte.care_meetings WHERE district_code = 'B'").rowcount == 0
        app.execute("INSERT INTO karte.care_concerns (concern_id, district_code, household, updated_by) "
                    "VALUES ('CN900001', 'A', 'new', 'rls-member')")
        raise psycopg.Rollback()
    for values in (("'B'", "'rls-member'"), ("'A'", "'someone-else'")):
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege, match="row-level security"):
            as_level(app, MEMBER_A)
            app.execute("INSERT INTO karte.care_concerns (concern_id, district_code, household, updated_by) "
                        f"VALUES ('CN900002', {values[0]}, 'x', {values[1]})")
    with pytest.raises(AccessDenied):  # and through the store
        rows.append_rows(CareLayer.MEETINGS, [{"district_code": "B", "held_on": "2026-11-02"}],
                         access=MEMBER_A)
    stored = rows.append_rows(CareLayer.MEETINGS, [{"district_code": "A", "held_on": "2026-11-02"}],
                              access=MEMBER_A)
    assert stored[0]["updated_by"] == MEMBER_A.user  # the id: a new number (the refused one is not reused)
    assert stored[0]["meeting_id"] not in {"MT000001", "MT000002"}


def test_care_rows_cannot_land_in_the_unprotected_generic_table(rows, app):
    for table in CARE_TABLES:
        with app.transaction(), pytest.raises(pgerrors.CheckViolation):
            as_level(app, STAFF)
            app.execute("INSERT INTO karte.extra_layers (layer, attrs) VALUES (%s, '{}')", (table,))
