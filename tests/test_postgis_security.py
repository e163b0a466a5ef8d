"""Row-level security, roles and the access log of the PostGIS store, checked in the database.

Raw SQL as the application role ``karte_app`` must see exactly what the store returns: the
policies, not the Python code, decide which rows leave the database.
"""

from __future__ import annotations

import datetime as dt
import uuid

import api_fixtures as fx
import geopandas as gpd
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from pg_fixtures import as_level
from psycopg import errors as pgerrors
from shapely.geometry import Point
from test_store import ACCESS_IDS, ACCESS_MATRIX, CRS, all_layers, decisions, decisions_seen, square

from karte.domain.access import PUBLIC, Access, Level
from karte.domain.errors import AccessDenied, ConflictError, NotFoundError, StoreError
from karte.domain.layers import MUNICIPALITY, PERSONAL_LAYERS, RECORD_LAYERS, SNAPSHOT_LAYERS, Layer
from karte.store.cli import export_store
from karte.store.postgis import PIPELINE_ROLE, ROLE_OF, PostGISStore
from karte.users import UserFile

#: PostGIS fixtures and the CI guard (fails the session if a PostGIS test skipped with CI=true).
pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

#: Tables in the karte schema that hold no personal data. A new table must be added here or get
#: row-level security: the schema test fails otherwise.
NON_PERSONAL = {"small_areas", "districts", "district_map", "services", "shelters", "emergency_sites",
                "kartes", "meta", "extra_layers", "layer_catalog", "snapshot_stamp", "alembic_version"}
LEVELS_WITH_ROWS = (Level.CITY_STAFF, Level.COORDINATOR, Level.DISTRICT_MEMBER)
#: Levels that see no personal row: no privilege at all on a personal table.
AGGREGATES_ONLY = (Level.PREFECTURE, Level.PUBLIC)
APPEND = "INSERT INTO karte.audit_log (actor, route, layer, rows) VALUES (%s, 't', 'register', 0)"
#: Row-level security by municipality: every policy on a personal table has this, but the pipeline's.
OWN_MUNICIPALITY = "municipality_code = NULLIF(current_setting('karte.municipality'::text, true), ''::text)"
#: Every policy of the schema ends with this (migration 0010: who acts is fixed per transaction).
CONTEXT_CHECK = "( SELECT karte.context_ok(CURRENT_USER) AS context_ok)"


def user(level: Level, district: str | None = None, *, municipality: str | None = "02201",
         name: str = "x") -> Access:
    """A user at ``level``; district members of ``district`` (default A); the prefecture level
    and the public of no municipality."""
    if level == Level.DISTRICT_MEMBER:
        district = district or "A"
    if level in AGGREGATES_ONLY:
        municipality = None
    return Access(name, level, district, municipality=municipality)


@pytest.fixture
def filled(pg_store):
    pg_store.write(all_layers())
    return pg_store


@pytest.fixture
def with_decisions(pg_store):
    pg_store.write({**all_layers(), Layer.DECISIONS: decisions()})
    return pg_store


@pytest.fixture
def app(pg_app_dsn):
    """A raw psycopg connection as karte_app (a transaction is open until commit/rollback)."""
    with psycopg.connect(pg_app_dsn) as conn:
        yield conn


# -- the schema ------------------------------------------------------------------------------------

def test_every_personal_table_has_forced_rls_and_a_policy_per_level(pg_admin):
    tables = {r[0]: (r[1], r[2]) for r in pg_admin.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'karte' AND c.relkind = 'r'")}
    policies: dict[str, set[str]] = {}
    rules: list[tuple] = []
    for table, name, roles, using, check in pg_admin.execute(
            "SELECT tablename, policyname, roles, qual, with_check FROM pg_policies "
            "WHERE schemaname = 'karte'"):
        policies.setdefault(table, set()).update(roles)
        rules.append((table, name, set(roles), using, check))
    assert set(PERSONAL_LAYERS) <= set(tables)
    assert Layer.DECISIONS in PERSONAL_LAYERS  # the outreach decisions are personal rows
    problems = []
    for table, (enabled, forced) in sorted(tables.items()):
        if table in NON_PERSONAL:
            continue
        if not (enabled and forced):
            problems.append(f"{table}: row-level security not enabled and forced")
        if not policies.get(table):
            problems.append(f"{table}: no policy")
    for table in PERSONAL_LAYERS:
        missing = {ROLE_OF[level] for level in LEVELS_WITH_ROWS} - policies.get(table, set())
        if missing:
            problems.append(f"{table}: no policy for {sorted(missing)}")
        for level in AGGREGATES_ONLY:
            if ROLE_OF[level] in policies.get(table, set()):
                problems.append(f"{table}: a policy lets {level.value} in")
    for table, name, _, using, check in rules:  # every policy checks who acts (0010)
        for clause in (using, check):
            if clause is not None and not clause.endswith(f"AND {CONTEXT_CHECK})"):
                problems.append(f"{table}.{name}: {clause!r} does not check the sealed context")
    for table, name, roles, using, check in rules:  # every policy keeps to the user's municipality
        if table not in PERSONAL_LAYERS:
            continue
        if roles == {PIPELINE_ROLE}:  # the store's trusted user: every municipality
            assert (using, check) == (f"(true AND {CONTEXT_CHECK})",) * 2, (table, name)
            continue
        for clause in (using, check):
            if clause is not None and OWN_MUNICIPALITY not in clause:
                problems.append(f"{table}.{name}: {clause!r} does not require the user's municipality")
    assert not problems, "\n".join(problems)
    # the store's trusted user has one policy of its own on every personal and every record table
    # (the tables of years since 0011, the sessions and the login attempts since 0010), no other
    assert {(t, n) for t, n, roles, _, _ in rules if roles == {PIPELINE_ROLE}} == {
        (str(t), "pipeline_all") for t in {*PERSONAL_LAYERS, *RECORD_LAYERS}}
    assert {str(t) for t in RECORD_LAYERS} >= {"history", "plan_marks", "web_sessions", "login_attempts"}


@pytest.mark.parametrize("level", AGGREGATES_ONLY)
def test_the_public_and_the_prefecture_have_no_privilege_on_personal_tables(pg_admin, level):
    role = ROLE_OF[level]
    for table in PERSONAL_LAYERS:
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
            granted = pg_admin.execute("SELECT has_table_privilege(%s, %s, %s)",
                                       (role, f"karte.{table}", privilege)).fetchone()[0]
            assert not granted, f"{role} has {privilege} on {table}"
        for privilege in ("SELECT", "INSERT", "UPDATE"):  # nor on any of their columns
            assert not pg_admin.execute("SELECT has_any_column_privilege(%s, %s, %s)",
                                        (role, f"karte.{table}", privilege)).fetchone()[0]
    # (karte.open_record_layer is theirs since 0010: it enters a record table in the catalogue, for
    # the login form's and their own sessions' first rows, and grants nothing)
    for function in ("karte.register_counts()",):
        assert not pg_admin.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')",
                                    (role, function)).fetchone()[0], function


def test_the_prefecture_reads_the_public_layers_the_stamp_and_appends_its_own_log_rows(filled, app):
    prefecture = user(Level.PREFECTURE, name=f"pref-{uuid.uuid4()}")
    updates = {"layer_catalog": "written_at = now()", "snapshot_stamp": "stamp = 1"}
    for table in sorted(NON_PERSONAL - {"alembic_version"}):
        with app.transaction():
            as_level(app, prefecture)
            app.execute(f"SELECT count(*) FROM karte.{table}")
        for statement in (f"DELETE FROM karte.{table}",
                          f"UPDATE karte.{table} SET {updates.get(table, 'fid = fid')}"):
            with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
                as_level(app, prefecture)
                app.execute(statement)
    with app.transaction():
        as_level(app, prefecture)
        app.execute(APPEND, (prefecture.user,))
    assert filled.as_user(prefecture).stamp() == filled.stamp() != ""
    log = filled.audit_log()
    assert list(log.loc[log["actor"] == prefecture.user, "level"]) == ["prefecture"]


def test_application_role_cannot_bypass_rls(pg_admin):
    row = pg_admin.execute("SELECT rolsuper, rolbypassrls, rolinherit, rolcanlogin FROM pg_roles "
                           "WHERE rolname = 'karte_app'").fetchone()
    assert row == (False, False, False, True)
    owners = {r[0] for r in pg_admin.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'karte'")}
    assert "karte_app" not in owners
    for role in (*ROLE_OF.values(), PIPELINE_ROLE):  # the level roles cannot log in or bypass either
        assert pg_admin.execute("SELECT rolcanlogin OR rolbypassrls OR rolsuper FROM pg_roles "
                                "WHERE rolname = %s", (role,)).fetchone() == (False,)


def test_every_geometry_column_has_a_gist_index(pg_admin):
    columns = pg_admin.execute("SELECT f_table_name, f_geometry_column FROM geometry_columns "
                               "WHERE f_table_schema = 'karte'").fetchall()
    assert len(columns) >= 8
    for table, column in columns:
        hit = pg_admin.execute(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = c.relam JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND am.amname = 'gist' "
            "AND a.attname = %s", (f"karte.{table}", column)).fetchone()
        assert hit, f"karte.{table}.{column} has no GiST index"


# -- the role x table matrix -----------------------------------------------------------------------

@pytest.mark.parametrize(("access", "persons", "helpers"), ACCESS_MATRIX,
                         ids=ACCESS_IDS)
def test_raw_sql_as_the_app_role_sees_exactly_the_policy_rows(filled, app, access, persons, helpers):
    expected = {"register": ("person_id", persons), "cooperators": ("cooperator_id", helpers)}
    for table, (key, ids) in expected.items():
        with app.transaction():
            as_level(app, access)
            if not access.sees_personal:
                with pytest.raises(pgerrors.InsufficientPrivilege):
                    app.execute(f"SELECT {key} FROM karte.{table}")
                continue
            got = {r[0] for r in app.execute(f"SELECT {key} FROM karte.{table}")}
        assert got == ids, table
        # and the store returns the same rows
        assert set(filled.read(table, access=access)[key]) == ids
    with app.transaction():  # non-personal tables: every level reads everything
        as_level(app, access)
        assert app.execute("SELECT count(*) FROM karte.services").fetchone() == (2,)


@pytest.mark.parametrize("access", [a for a, _, _ in ACCESS_MATRIX], ids=ACCESS_IDS)
def test_raw_sql_as_the_app_role_sees_exactly_the_policy_decisions(with_decisions, app, access):
    expected = decisions_seen(access)
    with app.transaction():
        as_level(app, access)
        if not access.sees_personal:  # no privilege at all, not merely no rows
            with pytest.raises(pgerrors.InsufficientPrivilege):
                app.execute(f"SELECT decision_id FROM karte.{Layer.DECISIONS}")
            got = set()
        else:
            got = {r[0] for r in app.execute(f"SELECT decision_id FROM karte.{Layer.DECISIONS}")}
    assert got == expected
    assert set(with_decisions.read(Layer.DECISIONS, access=access)["decision_id"]) == expected
    with app.transaction():  # nor do any of them reach the rows through the generic table
        as_level(app, access)
        assert app.execute("SELECT count(*) FROM karte.extra_layers WHERE layer = %s",
                           (Layer.DECISIONS,)).fetchone() == (0,)


DECISION_WRITES = (f"UPDATE karte.{Layer.DECISIONS} SET decision = 'rejected'",
                   f"DELETE FROM karte.{Layer.DECISIONS}",
                   f"INSERT INTO karte.{Layer.DECISIONS} (decision_id, district_code, updated_by) "
                   "VALUES ('D9', 'A', 'x')")


@pytest.mark.parametrize("level", [Level.DISTRICT_MEMBER, *AGGREGATES_ONLY])
def test_members_the_prefecture_and_the_public_write_no_decisions(with_decisions, app, level):
    access = user(level)
    for statement in DECISION_WRITES:
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
            as_level(app, access)
            app.execute(statement)
    with app.transaction():  # a member asking for district B still gets none of B's rows
        as_level(app, Access("m", Level.DISTRICT_MEMBER, "A"))
        assert app.execute(f"SELECT count(*) FROM karte.{Layer.DECISIONS} WHERE district_code = 'B'"
                           ).fetchone() == (0,)


def test_coordinators_write_decisions_as_themselves(with_decisions, app):
    with app.transaction():
        as_level(app, Access("x", Level.COORDINATOR))
        assert app.execute(DECISION_WRITES[0]).rowcount == 3  # every district
        assert app.execute(DECISION_WRITES[2]).rowcount == 1
        assert app.execute(DECISION_WRITES[1]).rowcount == 4
        raise psycopg.Rollback()
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege, match="row-level security"):
        as_level(app, Access("x", Level.COORDINATOR))  # not in another user's name
        app.execute(f"INSERT INTO karte.{Layer.DECISIONS} (decision_id, district_code, updated_by) "
                    "VALUES ('D9', 'A', 'someone-else')")
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):  # nor move the ids back
        as_level(app, Access("x", Level.COORDINATOR))
        app.execute(f"SELECT setval('karte.{Layer.DECISIONS}_decision_id_seq', 1)")


def test_personal_layers_cannot_land_in_the_unprotected_generic_table(filled, app):
    """No layer with a table of its own lands in extra_layers (no row-level security there): the
    copies of 0009 and the sessions of 0010 did, until 0011's trigger, which covers every table of
    the schema, not a list each revision must remember to extend."""
    tables = sorted({*map(str, PERSONAL_LAYERS), *map(str, RECORD_LAYERS), "register", "audit_log"})
    assert {"copies", "copy_events", "web_sessions"} <= set(tables)
    for layer in tables:
        with app.transaction(), pytest.raises(pgerrors.CheckViolation):
            as_level(app, Access("staff", Level.CITY_STAFF))
            app.execute("INSERT INTO karte.extra_layers (layer, attrs) VALUES (%s, '{}')", (layer,))
    with app.transaction(), pytest.raises(pgerrors.CheckViolation):  # nor renamed into one
        as_level(app, Access("staff", Level.CITY_STAFF))
        app.execute("INSERT INTO karte.extra_layers (layer, attrs) VALUES ('pts', '{}')")
        app.execute("UPDATE karte.extra_layers SET layer = 'copies' WHERE layer = 'pts'")
    with app.transaction():  # a layer without a table of its own still does
        as_level(app, Access("staff", Level.CITY_STAFF))
        app.execute("INSERT INTO karte.extra_layers (layer, attrs) VALUES ('pts', '{}')")
        raise psycopg.Rollback()


def test_a_district_member_cannot_widen_the_filter_in_sql(filled, app):
    with app.transaction():
        as_level(app, Access("m", Level.DISTRICT_MEMBER, "A"))
        # even asking for district B, or every row, yields only A's consented rows
        assert app.execute("SELECT count(*) FROM karte.register WHERE district_code = 'B'").fetchone() == (0,)
        assert app.execute("SELECT count(*) FROM karte.register").fetchone() == (2,)
        with pytest.raises(pgerrors.InsufficientPrivilege):  # and cannot change it
            app.execute("UPDATE karte.register SET consent = 'consented'")


def test_the_app_role_alone_has_no_rights(filled, app):
    for table in ("register", "cooperators", "services", "audit_log"):
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
            app.execute(f"SELECT 1 FROM karte.{table} LIMIT 1")


def test_coordinator_writes_only_shareable_rows_and_no_one_but_staff_inserts(filled, app):
    with app.transaction():
        as_level(app, Access("csw", Level.COORDINATOR))
        assert app.execute("UPDATE karte.register SET plan_status = 'in_progress'").rowcount == 4
        with pytest.raises(pgerrors.InsufficientPrivilege):
            app.execute("UPDATE karte.register SET consent = 'refused' WHERE person_id = 'P1'")
    with app.transaction():
        as_level(app, Access("csw", Level.COORDINATOR))
        with pytest.raises(pgerrors.InsufficientPrivilege):
            app.execute("DELETE FROM karte.register")


def test_set_local_never_outlives_the_transaction(pg_app_url):
    store = PostGISStore(pg_app_url, pool_size=1)  # one pooled connection, reused by every call
    member = Access("m", Level.DISTRICT_MEMBER, "A")
    try:
        with store._tx(member) as cur:
            cur.execute("SELECT current_user, current_setting('karte.district', true), "
                        "current_setting('karte.municipality', true)")
            assert cur.fetchone() == ("karte_district_member", "A", "02201")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        with store._shared.engine.connect() as conn:
            raw = conn.connection.driver_connection
            got = raw.execute("SELECT pg_backend_pid(), current_user, "
                              "coalesce(current_setting('karte.district', true), ''), "
                              "coalesce(current_setting('karte.user', true), ''), "
                              "coalesce(current_setting('karte.municipality', true), '')").fetchone()
            assert got == (pid, "karte_app", "", "", "")  # same connection, nothing left over
            conn.rollback()
    finally:
        store.close()


def test_store_refuses_a_login_that_bypasses_rls(pg_admin_url):
    store = PostGISStore(pg_admin_url)
    try:
        with pytest.raises(StoreError, match="karte_app"):
            store.layers()
    finally:
        store.close()


def test_counts_include_rows_a_coordinator_cannot_list(filled):
    counts = filled.register_counts(access=Access("csw", Level.COORDINATOR))
    assert counts["persons"].sum() == 6  # refused and unanswered included, names not
    assert list(counts.columns) == [MUNICIPALITY, "district_code", "consent", "persons"]
    assert set(counts[MUNICIPALITY]) == {"02201"}
    for access in (user(Level.DISTRICT_MEMBER), user(Level.PREFECTURE), user(Level.PUBLIC)):
        with pytest.raises(AccessDenied, match="権限"):
            filled.register_counts(access=access)


# -- the access log --------------------------------------------------------------------------------

def _my_log(store, actor):
    log = store.audit_log()
    return log[log["actor"] == actor].reset_index(drop=True)


@pytest.mark.parametrize(("access", "persons", "helpers"), ACCESS_MATRIX,
                         ids=ACCESS_IDS)
def test_every_personal_read_is_logged(filled, access, persons, helpers):
    from dataclasses import replace

    who = replace(access, user=f"{access.user}-{uuid.uuid4()}", route="api:test")
    filled.read("register", access=who)
    filled.read("cooperators", access=who)
    filled.read("services", access=who)  # not personal: not logged
    filled.read("register", district="A", access=who)
    log = _my_log(filled, who.user)
    assert list(log["layer"]) == ["register", "cooperators", "register"]
    in_a = {p for p in persons if p in {"P1", "P2", "P3"}}
    assert list(log["rows"]) == [len(persons), len(helpers), len(in_a)]
    assert set(log["route"]) == {"api:test"}
    assert set(log["level"]) == {access.level.value}
    assert set(log["action"]) == {"read"}
    assert list(log["district"].fillna("-")) == [access.district or "-", access.district or "-", "A"]


@pytest.mark.parametrize("access", [a for a, _, _ in ACCESS_MATRIX], ids=ACCESS_IDS)
def test_every_read_of_decisions_is_logged(with_decisions, access, tmp_path):
    from dataclasses import replace

    who = replace(access, user=f"{access.user}-{uuid.uuid4()}", route="api:outreach")
    with_decisions.read(Layer.DECISIONS, access=who)
    with_decisions.read(Layer.DECISIONS, district="A", access=who)
    log = _my_log(with_decisions, who.user)
    in_a = {d for d in decisions_seen(access) if d in {"D000001", "D000003"}}
    assert list(zip(log["layer"], log["rows"], log["route"], strict=True)) == [
        (Layer.DECISIONS, len(decisions_seen(access)), "api:outreach"),
        (Layer.DECISIONS, len(in_a), "api:outreach")]
    assert set(log["level"]) == {access.level.value}
    if access.level == Level.CITY_STAFF:  # an export logs them too
        export_store(with_decisions, tmp_path / "out.gpkg", access=replace(who, route="export"))
        exported = _my_log(with_decisions, who.user).iloc[2:]
        assert (Layer.DECISIONS, 3) in set(zip(exported["layer"], exported["rows"], strict=True))


def test_row_reads_locate_and_exports_are_logged(filled, tmp_path):
    from dataclasses import replace

    who = Access(f"staff-{uuid.uuid4()}", Level.CITY_STAFF, route="api:row")
    filled.read_row("register", "P1", access=who)
    filled.locate("register", access=who)
    export_store(filled, tmp_path / "out.gpkg", access=replace(who, route="export"))
    log = _my_log(filled, who.user)
    assert list(zip(log["route"], log["layer"], log["rows"], strict=True)) == [
        ("api:row", "register", 1), ("api:row:locate", "register", 6),
        ("export", "register", 6), ("export", "cooperators", 3)]


def test_the_trusted_pipeline_is_not_logged_but_a_bound_user_is(filled):
    before = len(filled.audit_log())
    filled.read("register")
    filled.read_full("register")
    filled.locate("register")
    assert len(filled.audit_log()) == before
    who = Access(f"csw-{uuid.uuid4()}", Level.COORDINATOR, route="api:karte")
    bound = filled.as_user(who)
    assert len(bound.read("register")) == 4
    log = _my_log(filled, who.user)
    assert list(zip(log["level"], log["action"], log["route"], log["rows"], strict=True)) == [
        ("coordinator", "read", "api:karte", 4)]


@pytest.mark.parametrize("level", list(Level))
def test_no_app_role_can_change_or_delete_the_log(filled, app, level):
    filled.audit(access=Access("x", Level.CITY_STAFF, route="t"), layer="register", district=None, rows=1)
    access = user(level)
    for statement in ("UPDATE karte.audit_log SET rows = 0", "DELETE FROM karte.audit_log",
                      "TRUNCATE karte.audit_log"):
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
            as_level(app, access)
            app.execute(statement)
    with app.transaction():  # but may append, as itself
        as_level(app, access)
        app.execute(APPEND, ("x",))
    # the actor, the time and the level come from the database (migration 0010), whatever the
    # statement says: another actor, a back-dated time, another level are replaced, not stored
    for statement, params in ((APPEND, ("y",)),
                              ("INSERT INTO karte.audit_log (at, actor, route, layer, rows) "
                               "VALUES (now() - interval '1 day', 'x', 't', 'register', 0)", ()),
                              ("INSERT INTO karte.audit_log (actor, route, layer, rows, level, db_user) "
                               "VALUES ('x', 't', 'register', 0, 'city_staff_x', 'postgres')", ())):
        with app.transaction():
            as_level(app, access)
            now = app.execute("SELECT now()").fetchone()[0]
            app.execute(statement, params)
        log = filled.audit_log()
        assert tuple(log.iloc[-1][["actor", "level"]]) == ("x", level.value), statement
        assert log.iloc[-1]["at"] == now.astimezone(dt.UTC).isoformat(timespec="seconds"), statement
    with app.transaction(), pytest.raises(pgerrors.CheckViolation):  # nor an unknown action
        as_level(app, access)
        app.execute("INSERT INTO karte.audit_log (actor, route, layer, rows, action) "
                    "VALUES ('x', 't', 'register', 0, 'erase')")


def test_even_the_owner_cannot_rewrite_the_log(filled, pg_admin):
    filled.audit(access=Access("x", Level.CITY_STAFF, route="t"), layer="register", district=None, rows=1)
    for statement in ("UPDATE karte.audit_log SET rows = 0", "DELETE FROM karte.audit_log",
                      "TRUNCATE karte.audit_log"):
        with pytest.raises(pgerrors.InsufficientPrivilege, match="append-only"):
            pg_admin.execute(statement)


def test_only_city_staff_read_the_log(filled):
    for level in (Level.COORDINATOR, *AGGREGATES_ONLY):
        with pytest.raises(AccessDenied, match="権限"):
            filled.as_user(user(level)).audit_log()


@pytest.mark.parametrize("level", list(Level))
def test_the_log_records_the_acting_users_level_not_the_stores(filled, level):
    """``audit()`` runs as the user it is given, so the database fills in that user's level."""
    who = Access(f"x-{uuid.uuid4()}", level, "A" if level == Level.DISTRICT_MEMBER else None, route="sheet")
    filled.audit(access=who, layer="register", district="A", rows=3, action="export")
    log = _my_log(filled, who.user)
    assert list(zip(log["level"], log["action"], log["route"], log["rows"], strict=True)) == [
        (level.value, "export", "sheet", 3)]
    assert list(log.columns) == ["at", "actor", "level", "route", "action", "layer", "district", "rows"]


# -- a district member and other districts -----------------------------------------------------------

def test_a_district_member_reaches_no_other_districts_rows_by_any_method(with_decisions, app):
    """Member of A against B's rows: every store call, then raw SQL as karte_app at that level."""
    member = Access(f"m-{uuid.uuid4()}", Level.DISTRICT_MEMBER, "A")
    staff = Access("staff", Level.CITY_STAFF)
    b_person = with_decisions.read_row("register", "P5", access=staff)
    b_decision = with_decisions.read_row(Layer.DECISIONS, "D000002", access=staff)
    for layer in ("register", "cooperators", Layer.DECISIONS):
        assert with_decisions.read(layer, district="B", access=member).empty
        assert set(with_decisions.read(layer, access=member)["district_code"]) == {"A"}
        assert set(with_decisions.read_full(layer, access=member)["district_code"]) == {"A"}
    assert set(with_decisions.locate("register", access=member).dropna()) == {"A"}
    for layer, key in (("register", "P5"), ("cooperators", "C3"), (Layer.DECISIONS, "D000002")):
        with pytest.raises(NotFoundError):
            with_decisions.read_row(layer, key, access=member)
    with pytest.raises(AccessDenied):
        with_decisions.update_row("register", "P5", {"plan_status": "x"}, version=b_person["version"],
                                  access=member)
    with pytest.raises(AccessDenied):
        with_decisions.delete_row(Layer.DECISIONS, "D000002", version=b_decision["version"], access=member)
    with pytest.raises(AccessDenied):
        with_decisions.append_rows(Layer.DECISIONS, [{"district_code": "B", "person_id": "P5"}],
                                   access=member)
    with pytest.raises(AccessDenied):
        with_decisions.write({"register": with_decisions.read("register")}, access=member)
    assert with_decisions.read_row(Layer.DECISIONS, "D000002", access=staff) == b_decision
    for table in ("register", "cooperators", Layer.DECISIONS):
        with app.transaction():
            as_level(app, member)
            assert app.execute(f"SELECT count(*) FROM karte.{table} WHERE district_code <> 'A'"
                               ).fetchone() == (0,)
        for statement in (f"UPDATE karte.{table} SET district_code = 'A' WHERE district_code = 'B'",
                          f"DELETE FROM karte.{table} WHERE district_code = 'B'",
                          f"INSERT INTO karte.{table} (district_code) VALUES ('B')"):
            with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
                as_level(app, member)
                app.execute(statement)
    with app.transaction():  # nor through a function that reads the whole register
        as_level(app, member)
        with pytest.raises(pgerrors.InsufficientPrivilege):
            app.execute("SELECT * FROM karte.register_counts()")


# -- the snapshot stamp ----------------------------------------------------------------------------

def _stamp(admin) -> int | None:
    hit = admin.execute("SELECT stamp FROM karte.snapshot_stamp").fetchone()
    return hit and hit[0]


@pytest.mark.parametrize("table", sorted(SNAPSHOT_LAYERS))
def test_raw_sql_on_every_snapshot_table_changes_the_stamp(filled, app, pg_admin, table):
    before = filled.stamp()
    with app.transaction():
        as_level(app, Access("staff", Level.CITY_STAFF))
        app.execute(f"DELETE FROM karte.{table} WHERE false")  # a statement on it, even of no row
    assert filled.stamp() not in ("", before)
    assert filled.stamp() == str(_stamp(pg_admin))


def test_a_raw_insert_into_the_register_as_city_staff_changes_the_stamp(filled, app):
    before = filled.stamp()
    with app.transaction():
        as_level(app, Access("staff", Level.CITY_STAFF))
        app.execute("INSERT INTO karte.register (person_id, district_code, consent) "
                    "VALUES ('P9', 'A', 'consented')")
    assert filled.stamp() not in ("", before)


def test_the_stamp_ignores_decisions_the_log_and_the_catalogue(with_decisions, app):
    before = with_decisions.stamp()
    with app.transaction():
        as_level(app, Access("staff", Level.CITY_STAFF))
        app.execute(f"UPDATE karte.{Layer.DECISIONS} SET decision = 'rejected'")
        app.execute(APPEND, ("staff",))
        app.execute("UPDATE karte.layer_catalog SET written_at = now()")
    assert with_decisions.stamp() == before


@pytest.mark.parametrize("level", list(Level))
def test_every_level_reads_the_stamp_and_none_writes_it(filled, app, level):
    access = user(level)
    with app.transaction():
        as_level(app, access)
        assert str(app.execute("SELECT stamp FROM karte.snapshot_stamp").fetchone()[0]) == filled.stamp()
    for statement in ("UPDATE karte.snapshot_stamp SET stamp = 1", "DELETE FROM karte.snapshot_stamp",
                      "SELECT karte.touch_snapshot_stamp()"):
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
            as_level(app, access)
            app.execute(statement)
    assert filled.as_user(access).stamp() == filled.stamp()


def test_record_layers_are_opened_only_through_their_own_tables(filled, app):
    """``open_record_layer`` enters a record table in the catalogue with its own columns; it
    refuses any other table, and the public may not call it."""
    for layer, key in (("services", "service_id"), ("register", "person_id"), ("nothing", "x")):
        with app.transaction(), pytest.raises(pgerrors.UndefinedTable):
            as_level(app, Access("csw", Level.COORDINATOR))
            app.execute("SELECT karte.open_record_layer(%s, %s)", (layer, key))
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
        as_level(app, PUBLIC)
        app.execute("SELECT karte.open_record_layer(%s, 'decision_id')", (Layer.DECISIONS,))


# -- two municipalities ----------------------------------------------------------------------------

HERE, THERE = "02201", "02202"
KEYS = {"register": "person_id", "cooperators": "cooperator_id", Layer.DECISIONS: "decision_id"}
#: A column that says whose row it is (``<municipality>-<key>``), and a visible key, per table.
WHOSE = {"register": "name", "cooperators": "name", Layer.DECISIONS: "decided_by"}
FIRST = {"register": "P1", "cooperators": "C1", Layer.DECISIONS: "D000002"}
#: Each municipality holds the same keys: register P1 (A, consented), P2 (A, refused),
#: P3 (B, consented); cooperators C1 (A), C2 (B); decisions D000001 (A), D000002 (B).
#: What a user of either municipality sees of their own, and nothing of the other's.
SEEN = {  # level[-district] -> (persons, cooperators, decisions)
    "city_staff": ({"P1", "P2", "P3"}, {"C1", "C2"}, {"D000001", "D000002"}),
    "coordinator": ({"P1", "P3"}, {"C1", "C2"}, {"D000001", "D000002"}),
    "district_member-A": ({"P1"}, {"C1"}, {"D000001"}),
    "district_member-B": ({"P3"}, {"C2"}, {"D000002"}),
    "prefecture": (set(), set(), set()),
    "public": (set(), set(), set()),
}
TWO_CITY_USERS = [
    *[user(level, district, municipality=m, name=f"{level.value}-{m}")
      for m in (HERE, THERE)
      for level, district in ((Level.CITY_STAFF, None), (Level.COORDINATOR, None),
                              (Level.DISTRICT_MEMBER, "A"), (Level.DISTRICT_MEMBER, "B"))],
    user(Level.PREFECTURE, name="pref"), user(Level.PUBLIC, name="anonymous"),
]


def _label(access: Access) -> str:
    return access.level.value + (f"-{access.district}" if access.district else "")


TWO_CITY_IDS = [f"{_label(a)}-{a.municipality}" for a in TWO_CITY_USERS]


def two_cities() -> dict[str, pd.DataFrame]:
    """The personal layers, services and districts of two municipalities with the same keys and
    district codes; a municipality's points lie in its own districts (02201: x 0..200, 02202:
    x 1000..1200)."""
    frames: dict[str, list[pd.DataFrame]] = {
        name: [] for name in ("register", "cooperators", Layer.DECISIONS, "services", "districts")}
    for m, x0 in ((HERE, 0), (THERE, 1000)):
        frames["register"].append(gpd.GeoDataFrame({
            "person_id": ["P1", "P2", "P3"], MUNICIPALITY: [m] * 3, "name": [f"{m}-P{i}" for i in (1, 2, 3)],
            "district_code": ["A", "A", "B"], "consent": ["consented", "refused", "consented"],
        }, geometry=[Point(x0 + 10, 10), Point(x0 + 20, 20), Point(x0 + 150, 50)], crs=CRS))
        frames["cooperators"].append(gpd.GeoDataFrame({
            "cooperator_id": ["C1", "C2"], MUNICIPALITY: [m] * 2, "name": [f"{m}-C1", f"{m}-C2"],
            "district_code": ["A", "B"],
        }, geometry=[Point(x0 + 5, 5), Point(x0 + 199, 99)], crs=CRS))
        frames[Layer.DECISIONS].append(pd.DataFrame({
            "decision_id": ["D000001", "D000002"], "person_id": ["P1", "P3"], "cooperator_id": ["C1", "C2"],
            MUNICIPALITY: [m] * 2, "district_code": ["A", "B"], "decision": ["confirmed", "rejected"],
            "decided_by": [f"{m}-D000001", f"{m}-D000002"],
        }))
        frames["services"].append(gpd.GeoDataFrame({
            "service_id": ["S1"], MUNICIPALITY: [m], "name": [f"{m}-S1"], "district_code": ["A"],
        }, geometry=[Point(x0 + 50, 50)], crs=CRS))
        frames["districts"].append(gpd.GeoDataFrame({
            "district_code": ["A", "B"], MUNICIPALITY: [m] * 2,
        }, geometry=[square(x0, 0), square(x0 + 100, 0)], crs=CRS))
    return {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}


@pytest.fixture
def cities(pg_store):
    """Both municipalities, written whole by the trusted pipeline (whatever codes the frames carry)."""
    pg_store.write(two_cities())
    return pg_store


def test_the_pipeline_writes_and_reads_every_municipality(cities, pg_admin):
    for layer, frame in two_cities().items():
        got = cities.read(layer)
        assert list(zip(got[MUNICIPALITY], got.iloc[:, 0], strict=True)) == \
            list(zip(frame[MUNICIPALITY], frame.iloc[:, 0], strict=True)), layer
        assert len(cities.read(layer, municipality=THERE)) == len(frame) // 2
    assert list(cities.read("register", district="A", municipality=THERE)["name"]) == [
        f"{THERE}-P1", f"{THERE}-P2"]
    assert pg_admin.execute("SELECT count(*) FROM karte.register WHERE municipality_code IS NULL"
                            ).fetchone() == (0,)


@pytest.mark.parametrize("access", TWO_CITY_USERS, ids=TWO_CITY_IDS)
def test_raw_sql_and_the_store_see_the_users_municipality_only(cities, app, access):
    """The role x table matrix over two municipalities: the same keys exist in both, and a user
    gets exactly their own municipality's rows by raw SQL as karte_app and through the store."""
    for (table, key), ids in zip(KEYS.items(), SEEN[_label(access)], strict=True):
        expected = {(access.municipality, k) for k in ids}
        with app.transaction():
            as_level(app, access)
            if not access.sees_personal:
                with pytest.raises(pgerrors.InsufficientPrivilege):
                    app.execute(f"SELECT {key} FROM karte.{table}")
                got = set()
            else:
                got = set(app.execute(f"SELECT municipality_code, {key} FROM karte.{table}").fetchall())
                other = THERE if access.municipality == HERE else HERE
                assert app.execute(f"SELECT count(*) FROM karte.{table} WHERE municipality_code = %s",
                                   (other,)).fetchone() == (0,)
        assert got == expected, table
        frame = cities.read(table, access=access)
        assert set(zip(frame[MUNICIPALITY], frame[key], strict=True)) == expected
        records = cities.read_records(table, access=access)
        assert {(r[MUNICIPALITY], r[key]) for r in records} == expected
    with app.transaction():  # public layers: every municipality's rows, for every level
        as_level(app, access)
        assert app.execute("SELECT count(*) FROM karte.services").fetchone() == (2,)


def test_a_coordinator_reaches_no_row_of_another_municipality_by_any_method(cities, app):
    """A coordinator of 02201 against 02202's rows (same keys, same district codes): every store
    call, then raw SQL as karte_app with the coordinator's role and settings."""
    csw = user(Level.COORDINATOR, municipality=HERE, name=f"csw-{uuid.uuid4()}")
    staff_there = user(Level.CITY_STAFF, municipality=THERE, name="staff-there")

    def theirs() -> dict[str, pd.DataFrame]:
        return {layer: cities.read_full(layer, access=staff_there) for layer in KEYS}

    before = theirs()
    # reads, row reads, locate, counts
    for layer in KEYS:
        assert set(cities.read(layer, access=csw)[MUNICIPALITY]) == {HERE}
        assert cities.read(layer, municipality=THERE, access=csw).empty
        assert set(cities.read(layer, district="A", access=csw)[MUNICIPALITY]) == {HERE}
        assert set(cities.read_full(layer, access=csw)[MUNICIPALITY]) == {HERE}
        assert {r[MUNICIPALITY] for r in cities.read_records(layer, district="B", access=csw)} == {HERE}
        row = cities.read_row(layer, FIRST[layer], access=csw)
        assert (row[MUNICIPALITY], row[WHOSE[layer]]) == (HERE, f"{HERE}-{FIRST[layer]}")
    assert list(cities.locate("register", access=csw)) == ["A", "B"]  # P1 and P3 of 02201 only
    counts = cities.register_counts(access=csw)
    assert set(counts[MUNICIPALITY]) == {HERE} and counts["persons"].sum() == 3
    # row writes: the same keys exist there, and only the coordinator's own rows change
    mine = cities.read_row("register", "P1", access=csw)
    cities.update_row("register", "P1", {"consent": "ordinance"}, version=mine["version"], access=csw)
    decision = cities.read_row(Layer.DECISIONS, "D000001", access=csw)
    cities.delete_row(Layer.DECISIONS, "D000001", version=decision["version"], access=csw)
    appended = cities.append_rows(Layer.DECISIONS, [{"person_id": "P3", "district_code": "B"}], access=csw)
    assert appended[0][MUNICIPALITY] == HERE  # a row without a code is the user's
    with pytest.raises(AccessDenied):  # a row of another municipality is refused
        cities.append_rows(Layer.DECISIONS, [{"person_id": "P1", "district_code": "A", MUNICIPALITY: THERE}],
                           access=csw)
    with pytest.raises(AccessDenied):  # nor may one be moved there
        cities.update_row("register", "P3", {MUNICIPALITY: THERE},
                          version=cities.read_row("register", "P3", access=csw)["version"], access=csw)
    with pytest.raises(ConflictError):  # the version of their row addresses ours, at another version
        cities.update_row("cooperators", "C1", {"name": "x"},
                          version=int(before["cooperators"]["version"].iloc[0]), access=csw)
    with pytest.raises(AccessDenied):
        cities.write({"register": two_cities()["register"]}, access=csw)
    # raw SQL as the coordinator of 02201
    for table, key in KEYS.items():
        with app.transaction():
            as_level(app, csw)
            assert app.execute(f"SELECT count(*) FROM karte.{table} WHERE municipality_code = %s",
                               (THERE,)).fetchone() == (0,)
            assert app.execute(f"UPDATE karte.{table} SET {WHOSE[table]} = 'x' WHERE municipality_code = %s",
                               (THERE,)).rowcount == 0
            raise psycopg.Rollback()
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):  # WITH CHECK: stays here
            as_level(app, csw)
            app.execute(f"UPDATE karte.{table} SET municipality_code = %s WHERE {key} = %s",
                        (THERE, FIRST[table]))
    with app.transaction():
        as_level(app, csw)
        assert app.execute(f"DELETE FROM karte.{Layer.DECISIONS} WHERE municipality_code = %s",
                           (THERE,)).rowcount == 0
        assert {r[0] for r in app.execute("SELECT municipality_code FROM karte.register_counts()")} == {HERE}
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
        as_level(app, csw)
        app.execute(f"INSERT INTO karte.{Layer.DECISIONS} (decision_id, municipality_code, district_code, "
                    "updated_by) VALUES ('D9', %s, 'A', %s)", (THERE, csw.user))
    after = theirs()  # 02202's rows are exactly as they were, versions included
    for layer in KEYS:
        pd.testing.assert_frame_equal(after[layer], before[layer])
    log = cities.audit_log()
    assert set(log.loc[log["actor"] == csw.user, "level"]) == {"coordinator"}


def test_city_staff_replace_their_own_municipalitys_rows_only(cities, pg_admin):
    """A whole-layer write by a user runs under row-level security: it replaces the rows of the
    user's municipality (a row without a code is the user's) and refuses any other's."""
    staff = user(Level.CITY_STAFF, municipality=HERE, name="staff")
    register = two_cities()["register"]
    with pytest.raises(AccessDenied, match="権限"):
        cities.write({"register": register}, access=staff)
    cities.write({"register": register.iloc[:1].drop(columns=MUNICIPALITY)}, access=staff)
    rows = pg_admin.execute("SELECT municipality_code, person_id, updated_by FROM karte.register "
                            "ORDER BY 1, 2").fetchall()
    pipeline = cities.access.user
    assert rows == [(HERE, "P1", "staff"), (THERE, "P1", pipeline), (THERE, "P2", pipeline),
                    (THERE, "P3", pipeline)]


def test_the_prefecture_reads_no_personal_row_through_the_store(cities):
    prefecture = user(Level.PREFECTURE, name=f"pref-{uuid.uuid4()}")
    for layer in KEYS:
        assert cities.read(layer, access=prefecture).empty
        assert cities.read_records(layer, access=prefecture) == []
        with pytest.raises(NotFoundError):
            cities.read_row(layer, FIRST[layer], access=prefecture)
    assert cities.locate("register", access=prefecture).empty
    with pytest.raises(AccessDenied):
        cities.register_counts(access=prefecture)
    with pytest.raises(AccessDenied):
        cities.write({"services": two_cities()["services"]}, access=prefecture)
    assert len(cities.read("services", access=prefecture)) == 2  # every municipality's public rows
    log = cities.audit_log()
    mine = log[log["actor"] == prefecture.user]
    assert set(mine["level"]) == {"prefecture"} and set(mine["rows"]) == {0}


# -- issue 16: who acts is fixed per transaction; keys reveal nothing; sessions and the throttle -------

def _seal(conn, access: Access, *, role: str | None = None) -> None:
    """What the store does first in every transaction since migration 0010: the role and the
    settings, sealed in the same statement."""
    conn.execute("SELECT set_config('role', %s, true), set_config('karte.user', %s, true), "
                 "set_config('karte.district', %s, true), set_config('karte.municipality', %s, true), "
                 "karte.seal_context()",
                 (role or ROLE_OF[access.level], access.user, access.district or "",
                  access.municipality or ""))


@pytest.mark.parametrize("change", [
    "SELECT set_config('karte.district', 'B', true)",
    "SELECT set_config('karte.municipality', '02202', true)",
    "SELECT set_config('karte.user', 'someone-else', true)",
    "SET LOCAL ROLE karte_city_staff",
    "SELECT set_config('karte.seal', '', true)",
    "SELECT set_config('karte.seal', '', true), set_config('karte.sealed_role', '', true), "
    "set_config('karte.district', 'B', true)",
])
def test_a_sealed_transaction_cannot_switch_who_acts(filled, app, change):
    """Issue 16: whoever held the application credential could switch karte.district inside a
    transaction and read another district's rows."""
    member = user(Level.DISTRICT_MEMBER, "A")
    with app.transaction():
        _seal(app, member)
        assert app.execute("SELECT count(*) FROM karte.register").fetchone() == (2,)  # A's consented rows
        app.execute(change)
        with pytest.raises(pgerrors.InsufficientPrivilege, match="changed"):
            app.execute("SELECT count(*) FROM karte.register")


def test_a_transaction_is_sealed_once(filled, app):
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege, match="already set"):
        _seal(app, user(Level.DISTRICT_MEMBER, "A"))
        app.execute("SELECT set_config('karte.seal', '', true)")  # cleared, then sealed again as B
        app.execute("SELECT set_config('karte.district', 'B', true), karte.seal_context()")


def test_the_store_seals_every_transaction(filled):
    member = user(Level.DISTRICT_MEMBER, "A")
    with filled._tx(member) as cur:
        cur.execute("SELECT current_setting('karte.seal', true) <> '', "
                    "current_setting('karte.sealed_role', true)")
        assert cur.fetchone() == (True, "karte_district_member")
        cur.execute("SELECT set_config('karte.district', 'B', true)")
        with pytest.raises(pgerrors.InsufficientPrivilege):
            cur.execute("SELECT person_id FROM karte.register")
    # the next transaction is sealed afresh
    assert sorted(filled.read("register", access=member)["person_id"]) == ["P1", "P3"]


def test_a_refused_key_change_says_nothing_about_hidden_ids(filled, app):
    """Issue 16: a failed unique write confirmed that a hidden person id exists. A coordinator
    renaming a row they see to an unconsented person's id (P2) or to an id nobody has (P99) gets
    the same refusal, before any unique check."""
    errors = []
    for target in ("P2", "P99"):
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege) as info:
            _seal(app, user(Level.COORDINATOR))
            app.execute("UPDATE karte.register SET person_id = %s WHERE person_id = 'P1'", (target,))
        errors.append(str(info.value).splitlines()[0])
    assert errors[0] == errors[1] and "key" in errors[0]
    with app.transaction():  # city staff still may
        _seal(app, user(Level.CITY_STAFF))
        app.execute("UPDATE karte.register SET person_id = 'P99' WHERE person_id = 'P1'")
        app.execute("UPDATE karte.register SET person_id = 'P1' WHERE person_id = 'P99'")


def test_a_district_members_rows_are_numbered_by_the_database(pg_store, app, tmp_path):
    """A member's chosen key could meet a row of another district they cannot see; the database
    numbers their rows instead, so nothing is refused and nothing is revealed."""
    from karte.users import Sessions, UserFile

    users = UserFile(tmp_path / "users.json")
    users.add("mb", "correct horse battery", level="district_member", district="B")
    users.add("ma", "correct horse battery", level="district_member", district="A")
    Sessions(pg_store, users).start(users.get("mb"), kind="cookie", hours=1)
    taken = pg_store.read("web_sessions")["session_id"].iloc[0]
    member_a = users.get("ma").access("test")
    row = {"session_id": taken, "user_name": "ma", "district_code": "A", "kind": "cookie"}
    stored = pg_store.append_rows("web_sessions", [row], access=member_a)
    assert stored[0]["session_id"] != taken and stored[0]["session_id"].startswith("WS")
    with app.transaction():  # raw SQL too: the key given is replaced, no unique violation
        _seal(app, member_a)
        app.execute("INSERT INTO karte.web_sessions (session_id, user_name, district_code, "
                    "municipality_code) VALUES (%s, 'ma', 'A', '02201')", (taken,))
    ids = list(pg_store.read("web_sessions")["session_id"])
    assert ids.count(taken) == 1 and len(ids) == 3


def test_sessions_in_postgis_every_level_own_rows_only(pg_store, app, tmp_path):
    from karte.users import Sessions, UserFile, token_hash

    users = UserFile(tmp_path / "users.json")
    for name, level, district in (("st", "city_staff", None), ("co", "coordinator", None),
                                  ("ma", "district_member", "A"), ("pr", "prefecture", None),
                                  ("pu", "public", None)):
        users.add(name, "correct horse battery", level=level, district=district)
    sessions = Sessions(pg_store, users)
    tokens = {}
    for name in ("st", "co", "ma", "pr", "pu"):
        tokens[name] = sessions.start(users.get(name), kind="token", hours=1)
        assert sessions.resolve(tokens[name], kind="token").name == name
    found = pg_store.read_records("web_sessions", match={"token_hash": token_hash(tokens["co"])})
    assert [r["user_name"] for r in found] == ["co"]  # selected in the database, not every session
    with pytest.raises(StoreError, match="no_such"):
        pg_store.read_records("web_sessions", match={"no_such": 1})
    for name in ("co", "ma", "pu"):  # raw SQL: each reads its own session row, no other
        with app.transaction():
            _seal(app, users.get(name).access("test"))
            seen = [r[0] for r in app.execute("SELECT user_name FROM karte.web_sessions")]
        assert seen == [name]
    staff = users.get("st").access("test")
    assert {r["user_name"] for r in sessions.listing(staff)} == {"st", "co", "ma", "pr", "pu"}
    assert sessions.end(tokens["pu"], kind="token") and sessions.resolve(tokens["pu"], kind="token") is None
    assert sessions.end_user("pr", by=staff) == 1 and sessions.resolve(tokens["pr"], kind="token") is None
    users.set_password("ma", "another password 1")
    assert sessions.resolve(tokens["ma"], kind="token") is None
    log = pg_store.audit_log()
    assert set(log.loc[log["layer"] == "web_sessions", "action"]) == {"read", "update"}  # staff's only


def test_the_store_throttle_on_postgis_lets_no_more_than_ten_through(pg_store, pg_app_url):
    import concurrent.futures as cf
    import threading

    from api.auth import LoginThrottle, StoreLedger, Throttled

    start = threading.Barrier(24)

    def attempt(_):
        with PostGISStore(pg_app_url) as store:  # a server process each
            throttle = LoginThrottle("k", ledger=StoreLedger(store))
            start.wait()
            try:
                ticket = throttle.begin("10.0.0.1", "staff")
            except Throttled:
                return False
            throttle.finish(ticket, ok=False)
            return True

    with cf.ThreadPoolExecutor(24) as pool:
        allowed = sum(pool.map(attempt, range(24)))
    assert 1 <= allowed <= 10
    assert len(pg_store.read("login_attempts")) == 3 * allowed


@pytest.mark.parametrize("shared", [False, True], ids=["memory-throttle", "store-throttle"])
def test_every_level_logs_in_and_out_through_the_web_on_postgis(pg_store, tmp_path, shared):
    """The login form and the token grant on PostGIS for every level, the public and an account
    of the prefecture level included (their sessions have no municipality; the login form writes
    the throttle's rows as the public), then logout: a copy of the cookie stops working."""
    web = fx.make_api(pg_store, tmp_path, shared_throttle=shared)
    web.users = {**fx.USERS, "pref": ("prefecture", None)}
    UserFile(tmp_path / "users.json").add("pref", fx.PASSWORD, level="prefecture")
    for role, (level, _) in web.users.items():
        browser = web.browser(role)
        me = browser.get("/api/me").json()
        assert (me["user"], me["level"], me["logged_in"]) == (role, level, True)
        copied = TestClient(web.app, raise_server_exceptions=False)
        copied.cookies.update(browser.cookies)
        token = fx.csrf_of(browser.get("/login").text)
        assert browser.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
        assert copied.get("/api/me").json()["logged_in"] is False
        bearer = web.headers(role)
        assert browser.get("/api/me", headers=bearer).json()["user"] == role
        assert browser.post("/api/logout", headers=bearer).status_code == 204
    rows = pg_store.read("web_sessions")
    assert set(rows["user_name"]) == set(web.users) and rows["ended_at"].notna().all()
    assert set(rows.loc[rows["user_level"].isin(["public", "prefecture"]), MUNICIPALITY].fillna("-")) == {"-"}
