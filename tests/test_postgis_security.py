"""Row-level security, roles and the access log of the PostGIS store, checked in the database.

Raw SQL as the application role ``karte_app`` must see exactly what the store returns: the
policies, not the Python code, decide which rows leave the database.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors as pgerrors
from test_store import ACCESS_IDS, ACCESS_MATRIX, all_layers, decisions, decisions_seen

from karte.domain.access import PUBLIC, Access, Level
from karte.domain.errors import AccessDenied, NotFoundError, StoreError
from karte.domain.layers import PERSONAL_LAYERS, SNAPSHOT_LAYERS, Layer
from karte.store.cli import export_store
from karte.store.postgis import ROLE_OF, PostGISStore

#: PostGIS fixtures and the CI guard (fails the session if a PostGIS test skipped with CI=true).
pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

#: Tables in the karte schema that hold no personal data. A new table must be added here or get
#: row-level security: the schema test fails otherwise.
NON_PERSONAL = {"small_areas", "districts", "district_map", "services", "shelters", "emergency_sites",
                "kartes", "meta", "extra_layers", "layer_catalog", "snapshot_stamp", "alembic_version"}
LEVELS_WITH_ROWS = (Level.CITY_STAFF, Level.COORDINATOR, Level.DISTRICT_MEMBER)
APPEND = "INSERT INTO karte.audit_log (actor, route, layer, rows) VALUES (%s, 't', 'register', 0)"


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


def as_level(conn, access: Access) -> None:
    """What the store does at the start of every transaction."""
    conn.execute(f"SET LOCAL ROLE {ROLE_OF[access.level]}")
    conn.execute("SELECT set_config('karte.user', %s, true), set_config('karte.district', %s, true)",
                 (access.user, access.district or ""))


# -- the schema ------------------------------------------------------------------------------------

def test_every_personal_table_has_forced_rls_and_a_policy_per_level(pg_admin):
    tables = {r[0]: (r[1], r[2]) for r in pg_admin.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'karte' AND c.relkind = 'r'")}
    policies: dict[str, set[str]] = {}
    for table, roles in pg_admin.execute(
            "SELECT tablename, roles FROM pg_policies WHERE schemaname = 'karte'"):
        policies.setdefault(table, set()).update(roles)
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
        if ROLE_OF[Level.PUBLIC] in policies.get(table, set()):
            problems.append(f"{table}: a policy lets the public in")
    assert not problems, "\n".join(problems)


def test_public_has_no_privilege_on_personal_tables(pg_admin):
    for table in PERSONAL_LAYERS:
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            granted = pg_admin.execute("SELECT has_table_privilege('karte_public', %s, %s)",
                                       (f"karte.{table}", privilege)).fetchone()[0]
            assert not granted, f"karte_public has {privilege} on {table}"


def test_application_role_cannot_bypass_rls(pg_admin):
    row = pg_admin.execute("SELECT rolsuper, rolbypassrls, rolinherit, rolcanlogin FROM pg_roles "
                           "WHERE rolname = 'karte_app'").fetchone()
    assert row == (False, False, False, True)
    owners = {r[0] for r in pg_admin.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'karte'")}
    assert "karte_app" not in owners
    for level in Level:  # the level roles cannot log in or bypass either
        assert pg_admin.execute("SELECT rolcanlogin OR rolbypassrls OR rolsuper FROM pg_roles "
                                "WHERE rolname = %s", (ROLE_OF[level],)).fetchone() == (False,)


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
            if access.level == Level.PUBLIC:
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
        if access.level == Level.PUBLIC:  # no privilege at all, not merely no rows
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


@pytest.mark.parametrize("level", [Level.DISTRICT_MEMBER, Level.PUBLIC])
def test_members_and_the_public_write_no_decisions(with_decisions, app, level):
    access = Access("x", level, "A" if level == Level.DISTRICT_MEMBER else None)
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
    for layer in sorted(PERSONAL_LAYERS):
        with app.transaction(), pytest.raises(pgerrors.CheckViolation):
            as_level(app, Access("staff", Level.CITY_STAFF))
            app.execute("INSERT INTO karte.extra_layers (layer, attrs) VALUES (%s, '{}')", (str(layer),))


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
            cur.execute("SELECT current_user, current_setting('karte.district', true)")
            assert cur.fetchone() == ("karte_district_member", "A")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        with store._shared.engine.connect() as conn:
            raw = conn.connection.driver_connection
            got = raw.execute("SELECT pg_backend_pid(), current_user, "
                              "coalesce(current_setting('karte.district', true), ''), "
                              "coalesce(current_setting('karte.user', true), '')").fetchone()
            assert got == (pid, "karte_app", "", "")  # same connection, nothing left over
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
    assert set(counts.columns) == {"district_code", "consent", "persons"}
    for access in (Access("m", Level.DISTRICT_MEMBER, "A"), Access("p", Level.PUBLIC)):
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
    access = Access("x", level, "A" if level == Level.DISTRICT_MEMBER else None)
    for statement in ("UPDATE karte.audit_log SET rows = 0", "DELETE FROM karte.audit_log",
                      "TRUNCATE karte.audit_log"):
        with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
            as_level(app, access)
            app.execute(statement)
    with app.transaction():  # but may append, as itself
        as_level(app, access)
        app.execute(APPEND, ("x",))
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):  # not as someone else
        as_level(app, access)
        app.execute(APPEND, ("y",))
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):  # nor back-dated
        as_level(app, access)
        app.execute("INSERT INTO karte.audit_log (at, actor, route, layer, rows) "
                    "VALUES (now() - interval '1 day', 'x', 't', 'register', 0)")
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):  # nor at another level
        as_level(app, access)
        app.execute("INSERT INTO karte.audit_log (actor, route, layer, rows, level) "
                    "VALUES ('x', 't', 'register', 0, 'city_staff_x')")
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
    for level in (Level.COORDINATOR, Level.PUBLIC):
        with pytest.raises(AccessDenied, match="権限"):
            filled.as_user(Access("x", level)).audit_log()


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
    access = Access("x", level, "A" if level == Level.DISTRICT_MEMBER else None)
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
