"""Row operations and the build stamp: one contract, run against the GeoPackage and the PostGIS store.

People write rows (outreach decisions now; meetings, visits and plans later) one at a time, as
themselves, several at once and from several processes. Every case here has an exact expected
answer on tiny hand-built frames (those of :mod:`test_store`).
"""

from __future__ import annotations

import multiprocessing as mp
import uuid

import pandas as pd
import pytest
from test_store import CITY, OTHER_CITY, all_layers, decisions, meta, register, services

from karte.domain.access import PUBLIC, Access, Level
from karte.domain.errors import AccessDenied, ConflictError, NotFoundError, StoreError
from karte.domain.layers import LAYERS, Layer
from karte.store import GeoPackageStore, open_store
from karte.store.base import ROWS

pytest_plugins = ["pg_fixtures"]

STAFF = Access("staff", Level.CITY_STAFF, route="test")
CSW = Access("csw", Level.COORDINATOR, route="test")
MEMBER_A = Access("member-a", Level.DISTRICT_MEMBER, "A", route="test")
MEMBER_B = Access("member-b", Level.DISTRICT_MEMBER, "B", route="test")


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, tmp_path):
    if request.param == "gpkg":
        return GeoPackageStore(tmp_path / "karte.gpkg")
    return request.getfixturevalue("pg_store")


@pytest.fixture
def target(request, store, tmp_path):
    """What a second process opens to reach the same store (a path or a URL)."""
    if isinstance(store, GeoPackageStore):
        return str(store.path)
    return request.getfixturevalue("pg_app_url")


def decision(person: str = "P1", district: str = "A", **extra) -> dict:
    return {"person_id": person, "cooperator_id": "C1", "district_code": district,
            "decision": "confirmed", "distance_m": 120.5, "decided_by": "csw",
            "decided_at": "2026-11-30T09:00:00+00:00", **extra}


def mine(store, user: str) -> pd.DataFrame:
    log = store.audit_log()
    return log[log["actor"] == user]


def test_both_stores_write_rows(store):
    assert ROWS in store.capabilities


def test_the_first_append_creates_the_record_layer_and_ids_come_from_the_store(store):
    store.write({"register": register()})
    assert Layer.DECISIONS not in store.layers()
    first = store.append_rows(Layer.DECISIONS, [decision("P1"), decision("P3")], access=CSW)
    second = store.append_rows(Layer.DECISIONS, [decision("P5", "B")], access=CSW)
    assert [r["decision_id"] for r in first + second] == ["D000001", "D000002", "D000003"]
    assert all(isinstance(r["version"], int) for r in first + second)
    got = store.read(Layer.DECISIONS)
    assert list(got.columns) == list(LAYERS[Layer.DECISIONS].column_names)
    assert list(got["decision_id"]) == ["D000001", "D000002", "D000003"]
    assert list(got["distance_m"]) == [120.5] * 3


def test_ids_are_never_reused_after_a_delete(store):
    store.write({"register": register()})
    rows = store.append_rows(Layer.DECISIONS, [decision(), decision()], access=CSW)
    store.delete_row(Layer.DECISIONS, rows[1]["decision_id"], version=rows[1]["version"], access=STAFF)
    again = store.append_rows(Layer.DECISIONS, [decision()], access=CSW)
    assert again[0]["decision_id"] == "D000003"


def test_appending_after_a_whole_layer_write_continues_past_the_written_ids(store):
    store.write({"register": register(), Layer.DECISIONS: decisions()})  # D000001..D000003
    row = store.append_rows(Layer.DECISIONS, [decision()], access=CSW)[0]
    assert row["decision_id"] not in set(decisions()["decision_id"])
    assert len(store.read(Layer.DECISIONS)) == 4


def test_a_given_key_is_kept_and_a_duplicate_writes_nothing(store):
    store.write({"register": register()})
    store.append_rows(Layer.DECISIONS, [decision(decision_id="X1")], access=CSW)
    with pytest.raises(StoreError):
        store.append_rows(Layer.DECISIONS, [decision(decision_id="X2"), decision(decision_id="X1")],
                          access=CSW)
    assert list(store.read(Layer.DECISIONS)["decision_id"]) == ["X1"]


def test_who_may_append(store):
    store.write({"register": register()})
    for who in (MEMBER_A, PUBLIC):  # decisions are written by coordinators and city staff only
        with pytest.raises(AccessDenied):
            store.append_rows(Layer.DECISIONS, [decision()], access=who)
    store.append_rows(Layer.DECISIONS, [decision()], access=STAFF)
    assert len(store.read(Layer.DECISIONS)) == 1


def test_writes_are_logged_with_the_acting_user_and_level(store):
    store.write({"register": register()})
    who = Access(f"csw-{uuid.uuid4()}", Level.COORDINATOR, route="web:outreach_decide")
    row = store.append_rows(Layer.DECISIONS, [decision(district="B")], access=who)[0]
    store.update_row(Layer.DECISIONS, row["decision_id"], {"decision": "rejected"},
                     version=row["version"], access=who)
    log = mine(store, who.user)
    assert list(zip(log["action"], log["layer"], log["district"], log["rows"], log["level"], log["route"],
                    strict=True)) == [
        ("append", Layer.DECISIONS, "B", 1, "coordinator", "web:outreach_decide"),
        ("update", Layer.DECISIONS, "B", 1, "coordinator", "web:outreach_decide")]
    assert store.read_full(Layer.DECISIONS)["updated_by"].tolist() == [who.user]


def test_update_with_a_stale_version_conflicts_and_changes_nothing(store):
    store.write({"register": register()})
    row = store.append_rows(Layer.DECISIONS, [decision()], access=CSW)[0]
    key = row["decision_id"]
    v2 = store.update_row(Layer.DECISIONS, key, {"decision": "rejected"}, version=row["version"],
                          access=CSW)
    assert v2 != row["version"]
    with pytest.raises(ConflictError):
        store.update_row(Layer.DECISIONS, key, {"decision": "confirmed"}, version=row["version"],
                         access=STAFF)
    now = store.read_row(Layer.DECISIONS, key, access=CSW)
    assert now["decision"] == "rejected" and now["version"] == v2
    with pytest.raises(ConflictError):
        store.delete_row(Layer.DECISIONS, key, version=row["version"], access=STAFF)
    store.delete_row(Layer.DECISIONS, key, version=v2, access=STAFF)
    assert store.read(Layer.DECISIONS).empty


def test_a_district_member_reaches_no_other_districts_rows(store):
    store.write({"register": register(), Layer.DECISIONS: decisions()})
    b = store.read_row(Layer.DECISIONS, "D000002", access=STAFF)  # district B
    with pytest.raises(NotFoundError):
        store.read_row(Layer.DECISIONS, "D000002", access=MEMBER_A)
    with pytest.raises((NotFoundError, AccessDenied)):
        store.update_row(Layer.DECISIONS, "D000002", {"decision": "rejected"}, version=b["version"],
                         access=MEMBER_A)
    with pytest.raises((NotFoundError, AccessDenied)):
        store.delete_row(Layer.DECISIONS, "D000002", version=b["version"], access=MEMBER_A)
    assert store.read_row(Layer.DECISIONS, "D000002", access=MEMBER_B)["decision"] == "rejected"  # unchanged
    with pytest.raises(NotFoundError):
        store.read_row(Layer.DECISIONS, "D000002", access=PUBLIC)


def test_the_register_is_edited_row_by_row_by_city_staff(store):
    store.write(all_layers())
    row = store.read_row("register", "P1", access=STAFF)
    version = store.update_row("register", "P1", {"plan_status": "in_progress"}, version=row["version"],
                               access=STAFF)
    assert store.read_row("register", "P1", access=CSW)["version"] == version
    with pytest.raises((AccessDenied, NotFoundError)):
        store.update_row("register", "P1", {"plan_status": "done"}, version=version, access=MEMBER_A)
    with pytest.raises(NotFoundError):  # not shareable: a coordinator may not even see it
        store.read_row("register", "P2", access=CSW)
    # coordinators correct the city's rows (a supporter confirmed); they do not add or remove people
    now = store.read_row("register", "P1", access=CSW)["version"]
    store.update_row("register", "P1", {"supporter_ids": "C2"}, version=now, access=CSW)
    assert store.read_row("register", "P1", access=STAFF)["supporter_ids"] == "C2"
    with pytest.raises(AccessDenied):
        store.append_rows("register", [{"person_id": "P9", "district_code": "A", "consent": "consented"}],
                          access=CSW)
    with pytest.raises((AccessDenied, NotFoundError)):
        store.delete_row("register", "P1", version=store.read_row("register", "P1", access=CSW)["version"],
                         access=CSW)


def test_only_city_staff_replace_a_personal_layer(store):
    store.write(all_layers())
    for who in (CSW, MEMBER_A, PUBLIC):
        with pytest.raises(AccessDenied):
            store.write({"register": register().iloc[:1]}, access=who)
    assert len(store.read("register")) == 6
    store.write({"register": register().iloc[:2]}, access=STAFF)
    assert len(store.read("register")) == 2


def test_the_stamp_changes_with_snapshot_layers_only(store):
    assert store.stamp() == ""
    store.write({"register": register(), "meta": meta()})
    first = store.stamp()
    assert first and store.stamp() == first  # stable while nothing changes
    store.append_rows(Layer.DECISIONS, [decision()], access=CSW)  # not read by the snapshot
    assert store.stamp() == first
    store.read("register", access=CSW)  # reads (and their log rows) change nothing
    assert store.stamp() == first
    row = store.read_row("register", "P1", access=STAFF)
    store.update_row("register", "P1", {"plan_status": "none"}, version=row["version"], access=STAFF)
    second = store.stamp()
    assert second != first
    store.write({"meta": meta()})
    assert store.stamp() not in (first, second)


def test_system_columns_round_trip_through_a_restore(store):
    store.write({"register": register()})
    store.append_rows(Layer.DECISIONS, [decision(), decision("P5", "B")], access=CSW)
    full = store.read_full(Layer.DECISIONS)
    assert {"version", "updated_at", "updated_by"} <= set(full.columns)
    store.write({Layer.DECISIONS: full})
    pd.testing.assert_frame_equal(store.read_full(Layer.DECISIONS), full, check_dtype=False)
    assert "version" not in store.read(Layer.DECISIONS).columns


# -- several processes ------------------------------------------------------------------------------

def _append_many(target: str, user: str, n: int, start, results) -> None:
    store = open_store(target)
    who = Access(user, Level.COORDINATOR, route="test:process")
    start.wait(30)
    ids = []
    for i in range(n):
        ids += [r["decision_id"] for r in store.append_rows(Layer.DECISIONS, [decision(f"P{i}")],
                                                              access=who)]
    results.put(ids)
    close = getattr(store, "close", None)
    if close:
        close()


def test_two_processes_appending_at_once_lose_nothing(store, target):
    store.write({"register": register()})
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    users = [f"p1-{uuid.uuid4()}", f"p2-{uuid.uuid4()}"]
    procs = [ctx.Process(target=_append_many, args=(target, u, 10, start, results)) for u in users]
    for p in procs:
        p.start()
    ids = results.get(timeout=120) + results.get(timeout=120)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(ids) == 20 and len(set(ids)) == 20
    assert sorted(store.read(Layer.DECISIONS)["decision_id"]) == sorted(ids)
    for user in users:
        assert len(mine(store, user)) == 10


def _replace_layers(target: str, n: int, start, results) -> None:
    store = open_store(target)
    start.wait(30)
    for _ in range(n):
        store.write({"register": register(), "meta": meta()})
    results.put("done")


def test_rows_appended_while_another_process_replaces_layers_are_kept(store, target):
    store.write({"register": register(), "meta": meta()})
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    writer = ctx.Process(target=_replace_layers, args=(target, 8, start, results))
    writer.start()
    start.wait(30)
    who = Access(f"csw-{uuid.uuid4()}", Level.COORDINATOR, route="test")
    ids = []
    for i in range(10):
        ids += [r["decision_id"] for r in store.append_rows(Layer.DECISIONS, [decision(f"P{i}")], access=who)]
        assert len(store.read("register", access=who)) == 4
    assert results.get(timeout=120) == "done"
    writer.join(60)
    assert writer.exitcode == 0
    assert sorted(store.read(Layer.DECISIONS)["decision_id"]) == sorted(ids)
    log = mine(store, who.user)
    assert list(log["action"]).count("append") == 10 and list(log["action"]).count("read") == 10


@pytest.mark.parametrize("who", [STAFF, CSW, MEMBER_A, PUBLIC], ids=lambda a: str(a.level))
def test_read_records_are_the_rows_of_read_and_logged_alike(store, who):
    """``read_records`` (a page's fast path) gives exactly ``read``'s rows, with x and y for the
    point, and writes the same access-log row."""
    from karte.store.base import frame_records

    store.write(all_layers())
    for district in (None, "A"):
        before = len(store.audit_log())
        fast = store.read_records("register", district=district, access=who)
        after_fast = store.audit_log().iloc[before:]
        slow = frame_records(store.read("register", district=district, access=who))
        after_slow = store.audit_log().iloc[before + len(after_fast):]
        assert fast == slow
        assert list(after_fast["rows"]) == list(after_slow["rows"])
        assert list(after_fast["action"]) == list(after_slow["action"])
    rows = store.read_records("register", access=STAFF)
    p1 = next(r for r in rows if r["person_id"] == "P1")
    assert (p1["x"], p1["y"]) == (10.0, 10.0) and "geometry" not in p1
    p6 = next(r for r in rows if r["person_id"] == "P6")
    assert (p6["x"], p6["y"]) == (None, None)


# -- municipalities ---------------------------------------------------------------------------------

def two_cities():
    """The register of :func:`register` in Aomori city (02201) and the same people, keys included,
    in a second municipality (02202): keys repeat across municipalities."""
    here, there = register(), register()
    there["municipality_code"] = OTHER_CITY
    there["name"] = [f"他市{n}" for n in there["name"]]
    return pd.concat([here, there], ignore_index=True)


def test_a_user_sees_and_counts_the_rows_of_their_own_municipality_only(store):
    store.write({"register": two_cities()})
    for who, n in ((STAFF, 6), (CSW, 4), (MEMBER_A, 2)):
        rows = store.read("register", access=who)
        assert len(rows) == n and set(rows["municipality_code"]) == {CITY}, who.level
        records = store.read_records("register", access=who)
        assert {r["municipality_code"] for r in records} == {CITY} and len(records) == n
    there = Access("staff-2", Level.CITY_STAFF, route="test", municipality=OTHER_CITY)
    assert set(store.read("register", access=there)["name"]) == {f"他市氏名{i}" for i in range(6)}
    assert len(store.read("register")) == 12  # the trusted pipeline reads both
    assert len(store.read("register", municipality=OTHER_CITY)) == 6


def test_keys_repeat_across_municipalities_and_row_calls_stay_in_the_users(store):
    store.write({"register": two_cities()})
    there = Access("staff-2", Level.CITY_STAFF, route="test", municipality=OTHER_CITY)
    mine = store.read_row("register", "P1", access=STAFF)
    theirs = store.read_row("register", "P1", access=there)
    assert mine["municipality_code"] == CITY and theirs["municipality_code"] == OTHER_CITY
    store.update_row("register", "P1", {"plan_status": "none"}, version=mine["version"], access=STAFF)
    assert store.read_row("register", "P1", access=there)["plan_status"] == "done"


def test_nobody_writes_into_another_municipality(store):
    store.write({"register": register()})
    with pytest.raises(AccessDenied):
        store.append_rows(Layer.DECISIONS, [decision(municipality_code=OTHER_CITY)], access=CSW)
    row = store.append_rows(Layer.DECISIONS, [decision()], access=CSW)[0]
    assert row["municipality_code"] == CITY  # filled with the user's
    there = Access("csw-2", Level.COORDINATOR, route="test", municipality=OTHER_CITY)
    with pytest.raises(NotFoundError):
        store.read_row(Layer.DECISIONS, row["decision_id"], access=there)
    with pytest.raises((NotFoundError, AccessDenied)):
        store.update_row(Layer.DECISIONS, row["decision_id"], {"decision": "rejected"},
                         version=row["version"], access=there)


def test_the_prefecture_level_sees_no_personal_row(store):
    store.write({"register": two_cities(), "services": services()})
    prefecture = Access("pref", Level.PREFECTURE, route="test", municipality=None)
    assert store.read("register", access=prefecture).empty
    assert store.read_records("register", access=prefecture) == []
    assert len(store.read("services", access=prefecture)) == 2
    with pytest.raises(AccessDenied):
        store.append_rows(Layer.DECISIONS, [decision()], access=prefecture)
