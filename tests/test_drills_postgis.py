"""The PostGIS side of plans, drills and disaster mode (migration 0008): the tables as the registry
declares them, row-level security forced with the municipality rule everywhere, the district rule
for members, the consent rule on plans, the register's disaster-mode rule through
``karte.disaster_districts()``, and the revision going down and up again (raw SQL as the
application role, so the database itself is what is tested); then the plans, drills and marks of
the demo read through the store as each viewer (the database's policies decide, the access log
names the real user), and sixteen servers writing marks into one drill at the same moment."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from alembic import command
from pg_fixtures import as_level, libpq, migrations_serialised
from psycopg import errors as pgerrors
from sqlalchemy.engine import make_url
from test_drills import OTHER, OWN, pg_copy, users
from test_store import all_layers

from karte.domain.access import AGGREGATES_ONLY, SHAREABLE, Access, Level
from karte.domain.drills import DRILLS, MARKS, PLANS, unique_marks
from karte.domain.layers import LAYERS
from karte.services import disaster, drills
from karte.store.cli import alembic_config
from karte.store.postgis import PIPELINE_ROLE, ROLE_OF, PostGISStore

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.postgis

TABLES = ("evacuation_plans", "drills", "drill_marks", "drill_lessons", "disaster_modes")
OWN_MUNICIPALITY = "municipality_code = NULLIF(current_setting('karte.municipality'::text, true), ''::text)"
STAFF = Access("staff", Level.CITY_STAFF)
MEMBER_A = Access("ma", Level.DISTRICT_MEMBER, "A")
MEMBER_B = Access("mb", Level.DISTRICT_MEMBER, "B")
CSW = Access("csw", Level.COORDINATOR)


@pytest.fixture
def filled(pg_store, pg_admin):
    pg_admin.execute("TRUNCATE " + ", ".join(f"karte.{t}" for t in TABLES) + " RESTART IDENTITY")
    pg_store.write(all_layers())
    return pg_store


@pytest.fixture
def app(pg_app_dsn):
    with psycopg.connect(pg_app_dsn) as conn:
        yield conn


def test_the_topics_tables_are_personal_with_forced_rls_and_a_policy_per_level(pg_admin):
    for table in TABLES:
        assert LAYERS[table].personal, table
        enabled, forced = pg_admin.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
            (f"karte.{table}",)).fetchone()
        assert enabled and forced, table
        policies = pg_admin.execute("SELECT policyname, roles, qual, with_check FROM pg_policies "
                                    "WHERE schemaname = 'karte' AND tablename = %s", (table,)).fetchall()
        roles = {r for _, rs, _, _ in policies for r in rs}
        levels = (Level.CITY_STAFF, Level.COORDINATOR, Level.DISTRICT_MEMBER)
        assert {ROLE_OF[lv] for lv in levels} <= roles
        assert PIPELINE_ROLE in roles
        for name, rs, using, check in policies:
            if set(rs) == {PIPELINE_ROLE}:
                assert name == "pipeline_all"
                continue
            for clause in (using, check):
                assert clause is None or OWN_MUNICIPALITY in clause, (table, name, clause)
        for level in AGGREGATES_ONLY:
            assert ROLE_OF[level] not in roles
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                assert not pg_admin.execute("SELECT has_table_privilege(%s, %s, %s)",
                                            (ROLE_OF[level], f"karte.{table}", privilege)).fetchone()[0]
    # the plans and the modes move the build stamp; the marks (many, during a drill) do not
    triggers = {r[0] for r in pg_admin.execute(
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname = 'snapshot_stamp' AND NOT t.tgisinternal")}
    assert {"evacuation_plans", "disaster_modes"} <= triggers and not triggers & {"drill_marks", "drills"}


def test_personal_layer_names_stay_out_of_the_unprotected_table(filled, app):
    for table in TABLES:
        with app.transaction(), pytest.raises(pgerrors.CheckViolation):
            as_level(app, STAFF)
            app.execute("INSERT INTO karte.extra_layers (layer, attrs) VALUES (%s, '{}')", (table,))


def _mode(conn, district: str, *, start: dt.timedelta, end: dt.timedelta | None = None,
          stopped: bool = False) -> None:
    now = dt.datetime.now(dt.UTC)
    conn.execute("INSERT INTO karte.disaster_modes (mode_id, district_code, scope, started_at, ends_at, "
                 "stopped_at, started_by, updated_by) "
                 "VALUES (%s, %s, 'district', %s, %s, %s, 'staff', 'staff')",
                 (f"DM{uuid.uuid4().hex[:8]}", district, (now + start).isoformat(),
                  (now + end).isoformat() if end is not None else "", now.isoformat() if stopped else ""))


def _register(conn, who: Access) -> set[str]:
    with conn.transaction():
        as_level(conn, who)
        return {r[0] for r in conn.execute("SELECT person_id FROM karte.register")}


def test_the_register_admits_a_members_unconsented_rows_only_while_their_district_is_in_disaster_mode(
        filled, app):
    assert _register(app, MEMBER_A) == {"P1", "P3"}  # A's consented rows
    with app.transaction():
        as_level(app, STAFF)
        _mode(app, "A", start=-dt.timedelta(hours=1), end=-dt.timedelta(minutes=1))  # ended at its time
        _mode(app, "A", start=-dt.timedelta(hours=1), stopped=True)                  # ended by hand
        _mode(app, "A", start=dt.timedelta(hours=1))                                 # not yet
    assert _register(app, MEMBER_A) == {"P1", "P3"}
    with app.transaction():
        as_level(app, STAFF)
        _mode(app, "A", start=-dt.timedelta(minutes=5), end=dt.timedelta(hours=2))
    assert _register(app, MEMBER_A) == {"P1", "P2", "P3"}  # P2 refused consent: shown in the disaster
    assert _register(app, MEMBER_B) == {"P5"}              # B is not in disaster mode
    assert _register(app, CSW) == {"P1", "P3", "P5", "P6"}  # coordinators: unchanged
    with app.transaction():
        as_level(app, MEMBER_A)
        assert app.execute("SELECT karte.disaster_districts()").fetchone()[0] == ["A"]
        assert app.execute("SELECT count(*) FROM karte.register WHERE district_code = 'B'").fetchone()[0] == 0
    other_city = Access("mx", Level.DISTRICT_MEMBER, "A", municipality="02202")
    assert _register(app, other_city) == set()
    with app.transaction():
        as_level(app, other_city)  # another municipality's mode list is its own
        assert app.execute("SELECT karte.disaster_districts()").fetchone()[0] == []


def test_members_and_coordinators_write_only_what_the_policies_allow(filled, app):
    columns = "(plan_id, person_id, district_code, status, consent, updated_by)"
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
        as_level(app, MEMBER_A)  # another district
        app.execute(f"INSERT INTO karte.evacuation_plans {columns} VALUES ('EP9', 'P5', 'B', 'done', "
                    "'consented', 'ma')")
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
        as_level(app, CSW)  # a plan without consent is the city's
        app.execute(f"INSERT INTO karte.evacuation_plans {columns} VALUES ('EP9', 'P2', 'A', 'done', "
                    "'refused', 'csw')")
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
        as_level(app, CSW)  # not in another user's name
        app.execute(f"INSERT INTO karte.evacuation_plans {columns} VALUES ('EP9', 'P1', 'A', 'done', "
                    "'consented', 'someone')")
    with app.transaction():
        as_level(app, MEMBER_A)
        app.execute(f"INSERT INTO karte.evacuation_plans {columns} VALUES ('EP1', 'P1', 'A', 'done', "
                    "'consented', 'ma')")
    with app.transaction():
        as_level(app, STAFF)
        app.execute(f"INSERT INTO karte.evacuation_plans {columns} VALUES ('EP2', 'P2', 'A', 'done', "
                    "'refused', 'staff')")
    with app.transaction():
        as_level(app, CSW)
        assert {r[0] for r in app.execute("SELECT person_id FROM karte.evacuation_plans")} == {"P1"}
        assert app.execute("UPDATE karte.evacuation_plans SET note = 'x'").rowcount == 1  # not P2's
    with app.transaction():
        as_level(app, MEMBER_B)
        assert app.execute("SELECT count(*) FROM karte.evacuation_plans").fetchone() == (0,)
        with pytest.raises(pgerrors.InsufficientPrivilege):
            app.execute("INSERT INTO karte.drill_marks (mark_id, district_code, drill_id, person_id, "
                        "status, updated_by) VALUES ('MK9', 'A', 'DR1', 'P1', 'safe', 'mb')")
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
        as_level(app, MEMBER_A)  # members do not start drills nor switch modes
        app.execute("INSERT INTO karte.drills (drill_id, district_code, name, updated_by) "
                    "VALUES ('DR9', 'A', 'x', 'ma')")
    with app.transaction(), pytest.raises(pgerrors.InsufficientPrivilege):
        as_level(app, CSW)
        app.execute("INSERT INTO karte.disaster_modes (mode_id, district_code, started_at, updated_by) "
                    "VALUES ('DM9', 'A', '2026-01-01T00:00:00+00:00', 'csw')")


def test_0008_goes_down_and_up_again(pg_admin, pg_admin_url):
    """On an empty database: up to 0008, down to 0007 (the register's policy as 0004 left it, the
    tables gone), up to 0008 again."""
    name = f"karte_d19_{uuid.uuid4().hex[:8]}"
    pg_admin.execute(f"CREATE DATABASE {name}")
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        with migrations_serialised():
            command.upgrade(alembic_config(url), "0008")
            command.upgrade(alembic_config(url), "0008")  # again: nothing to do
            with psycopg.connect(libpq(url), autocommit=True) as conn:
                qual = conn.execute("SELECT qual FROM pg_policies WHERE tablename = 'register' "
                                    "AND policyname = 'district_member_read'").fetchone()[0]
                assert "disaster_districts" in qual
                assert conn.execute("SELECT to_regclass('karte.drill_marks')").fetchone()[0]
            command.downgrade(alembic_config(url), "0007")
            with psycopg.connect(libpq(url), autocommit=True) as conn:
                qual = conn.execute("SELECT qual FROM pg_policies WHERE tablename = 'register' "
                                    "AND policyname = 'district_member_read'").fetchone()[0]
                assert "disaster_districts" not in qual and "consent" in qual
                assert conn.execute("SELECT to_regclass('karte.drill_marks')").fetchone()[0] is None
                check = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                     "WHERE conname = 'ck_extra_layers_not_personal'").fetchone()[0]
                assert "drill_marks" not in check and "supporter_decisions" in check
            command.upgrade(alembic_config(url), "0008")
    finally:
        pg_admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


# --- through the store, as the viewer ------------------------------------------------------------------

def _ids(rows, key: str) -> set[str]:
    return {str(r[key]) for r in rows}


def test_plans_drills_and_marks_read_as_the_viewer(request, demo):
    """The demo in PostGIS: what each viewer gets of plans, drills and marks is what the database's
    policies let through (the same read with the trusted user holds more), logged as that user."""
    store = pg_copy(request, demo)
    try:
        u = users()
        register = store.read("register")
        own = register[register["district_code"] == OWN]
        agreed = own[own["consent"].isin(SHAREABLE)].iloc[0]
        refused = own[~own["consent"].isin(SHAREABLE)].iloc[0]
        person = next(r for r in drills.register(store, u["member"], OWN)
                      if r["person_id"] == agreed["person_id"])
        shared = drills.save_plan(store, u["member"], OWN, str(agreed["person_id"]),
                                  drills._defaults(person) | {"emergency_phone": "017-000-0001"})
        kept = drills.save_plan(store, u["staff"], OWN, str(refused["person_id"]),
                                {"status": "in_progress", "consent": str(refused["consent"])})
        both = {shared["plan_id"], kept["plan_id"]}
        assert _ids(store.read_records(PLANS), "plan_id") == both  # the trusted read
        assert _ids(drills.plans(store, u["staff"], district=OWN), "plan_id") == both
        for who in ("member", "coordinator"):  # the plan without consent is the city's
            assert _ids(drills.plans(store, u[who], district=OWN), "plan_id") == {shared["plan_id"]}
            assert _ids(store.read_records(PLANS, access=u[who]), "plan_id") == {shared["plan_id"]}
        assert drills.plans(store, u["other"]) == []
        assert store.read_records(PLANS, access=u["other"]) == []  # the database, not only the service
        # the register's plan status follows the plans, for the viewer as for the build
        row = next(r for r in drills.register(store, u["member"], OWN)
                   if r["person_id"] == agreed["person_id"])
        assert row["plan_status"] == shared["status"]

        # disaster mode: the district's members read the plan without consent too, nobody else
        disaster.start(store, u["staff"], [OWN], hours=1)
        lifted = disaster.effective_access(store, u["member"])
        assert _ids(store.read_records(PLANS, access=Access("m5", Level.DISTRICT_MEMBER, OWN)),
                    "plan_id") == both  # the policy itself, without the service's access
        assert _ids(drills.plans(store, lifted, district=OWN), "plan_id") == both
        assert _ids(drills.plans(store, u["coordinator"], district=OWN), "plan_id") == {shared["plan_id"]}
        assert drills.plans(store, disaster.effective_access(store, u["other"])) == []
        disaster.stop(store, u["staff"])
        assert _ids(store.read_records(PLANS, access=u["member"]), "plan_id") == {shared["plan_id"]}

        # drills: the database gives every viewer with rows the municipality's drills; a member's
        # pages show those of their district; marks only of the viewer's district
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        joint = drills.start_drill(store, u["coordinator"], [OWN, OTHER], name="合同", started_at=start)
        alone = drills.start_drill(store, u["staff"], [OTHER], name="S06だけ", started_at=start)
        assert _ids(store.read_records(DRILLS, access=u["member"]), "drill_id") == {joint["drill_id"],
                                                                                   alone["drill_id"]}
        assert _ids(drills.drills_for(store, u["member"]), "drill_id") == {joint["drill_id"]}
        assert store.read_records(DRILLS, access=u["public"]) == []
        for who, code in (("member", OWN), ("other", OTHER)):
            people = drills.roll(store, u[who], joint, code)[:2]
            result = drills.record_marks(store, u[who], joint["drill_id"], [
                {"id": str(uuid.uuid4()), "person_id": p["person_id"], "district": code, "status": "safe",
                 "marked_at": dt.datetime.now(dt.UTC).isoformat()} for p in people])
            assert len(result["received"]) == len(people) == 2
        assert {m["district_code"] for m in store.read_records(MARKS, access=u["member"])} == {OWN}
        assert {m["district_code"] for m in store.read_records(MARKS, access=u["other"])} == {OTHER}
        assert len(store.read_records(MARKS, access=u["coordinator"])) == 4
        assert drills.marks_of(store, u["member"], joint["drill_id"], OTHER) == []  # not even read
        log = store.audit_log()
        reads = log[(log["layer"] == PLANS) & (log["action"] == "read")]
        assert {"m5", "m6", "csw", "staff"} <= set(reads["actor"])
        assert (reads.loc[reads["actor"] == "m6", "rows"] == 0).all()
    finally:
        store.close()


SERVERS = 16


def test_sixteen_servers_write_marks_at_once_and_lose_none(filled, pg_app_url):
    """Sixteen stores (as sixteen servers: their own connections, no lock shared in the process)
    append marks to one drill at the same moment, each also the mark a phone sent to two servers at
    once: every mark is stored under its own id, and every count keeps one per device id."""
    filled.append_rows(DRILLS, [{"district_code": "A", "districts": "A;B", "name": "同時",
                                 "kind": "safety_check", "started_at": dt.datetime.now(dt.UTC).isoformat(),
                                 "started_by": "csw"}], access=CSW)
    drill_id = filled.read(DRILLS)["drill_id"].iloc[0]
    stores = [PostGISStore(pg_app_url) for _ in range(SERVERS)]
    barrier = threading.Barrier(SERVERS)
    twice = [str(uuid.uuid4()) for _ in range(SERVERS)]  # sent to server k and server k+1 at once
    per_server = 20

    def server(k: int) -> int:
        who = [MEMBER_A, MEMBER_B, CSW, STAFF][k % 4]
        district = who.district or ("A" if k % 2 else "B")
        person = {"A": "P1", "B": "P5"}[district]
        rows = [{"district_code": district, "drill_id": drill_id, "person_id": person, "status": "safe",
                 "marked_at": dt.datetime.now(dt.UTC).isoformat(), "received_at": "", "marked_by": who.user,
                 "client_id": str(uuid.uuid4()), "note": ""} for _ in range(per_server)]
        for j in (k, (k - 1) % SERVERS):
            rows.append({**rows[0], "client_id": twice[j]})
        barrier.wait()
        written = 0
        for row in rows:  # one request per mark, as phones send them
            written += len(stores[k].append_rows(MARKS, [row], access=who))
        return written

    try:
        with ThreadPoolExecutor(max_workers=SERVERS) as pool:
            written = sum(pool.map(server, range(SERVERS)))
    finally:
        for s in stores:
            s.close()
    stored = filled.read(MARKS)
    assert written == len(stored) == SERVERS * (per_server + 2)
    assert stored["mark_id"].is_unique and stored["mark_id"].str.startswith("MK").all()
    assert stored["client_id"].nunique() == SERVERS * per_server + SERVERS
    counted = unique_marks(stored.sort_values("mark_id").to_dict("records"))
    assert len(counted) == SERVERS * (per_server + 1)
    assert set(filled.read_full(MARKS)["updated_by"]) == {w.user for w in (MEMBER_A, MEMBER_B, CSW, STAFF)}
