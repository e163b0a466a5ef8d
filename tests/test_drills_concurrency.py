"""Sixteen people marking one drill at the same moment lose no mark, on both stores.

Sixteen threads (eight district members of each of two districts) start together and mark every
person of their share of the roll three times (不在, then 未確認, then 無事を確認), one request per
tap as a phone sends them; every few taps each resends the batch before (a reply lost when the
network dropped). At the end every mark is stored exactly once, the latest status of every person
is 無事を確認, and the dashboard counts everyone confirmed. The marks also arrive through the web
API from sixteen clients at once (the same app and store a server uses).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import api_fixtures as fx
import pytest
from fastapi.testclient import TestClient
from test_drills import OTHER, OWN, gpkg_copy, pg_copy, users

from karte.domain.access import Access, Level
from karte.domain.drills import MARKS
from karte.services import drills

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow
MARKERS = 16
SEQUENCE = ("absent", "unconfirmed", "safe")


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, demo, tmp_path):
    if request.param == "gpkg":
        yield gpkg_copy(demo, tmp_path / "store")
        return
    pg = pg_copy(request, demo)
    yield pg
    pg.close()


def _shares(store, drill: dict) -> list[tuple[Access, str, list[str]]]:
    """(marker, district, person ids) for 16 markers: 8 members per district, the roll split."""
    coordinator = users()["coordinator"]
    out = []
    for district in (OWN, OTHER):
        ids = [p["person_id"] for p in drills.roll(store, coordinator, drill, district)]
        for k in range(MARKERS // 2):
            marker = Access(f"m{district}-{k}", Level.DISTRICT_MEMBER, district, route="test")
            out.append((marker, district, ids[k::MARKERS // 2]))
    return out


def test_sixteen_markers_lose_no_mark_and_store_each_once(store):
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    drill = drills.start_drill(store, users()["coordinator"], [OWN, OTHER], name="同時記録", started_at=start)
    shares = _shares(store, drill)
    barrier = threading.Barrier(len(shares))
    sent: dict[str, dict] = {}
    lock = threading.Lock()

    def work(share):
        marker, district, people = share
        barrier.wait()
        previous: list[dict] = []
        tick = 0
        for step, status in enumerate(SEQUENCE):
            for person in people:
                tick += 1
                at = start + dt.timedelta(minutes=step * 5, seconds=tick)
                batch = [{"id": str(uuid.uuid4()), "person_id": person, "district": district,
                          "status": status, "marked_at": at.isoformat()}]
                with lock:
                    sent.update({m["id"]: m for m in batch})
                result = drills.record_marks(store, marker, drill["drill_id"], batch)
                assert result["received"] == [batch[0]["id"]] and not result["rejected"], result
                if tick % 4 == 0:  # the reply of the previous request was lost: sent again
                    again = drills.record_marks(store, marker, drill["drill_id"], previous + batch)
                    assert not again["received"] and len(again["duplicates"]) == len(previous) + 1
                previous = batch

    with ThreadPoolExecutor(max_workers=len(shares)) as pool:
        list(pool.map(work, shares))

    stored = store.read(MARKS)
    assert len(stored) == len(sent) == sum(len(p) for _, _, p in shares) * len(SEQUENCE)
    assert sorted(stored["client_id"]) == sorted(sent)
    assert stored["client_id"].is_unique
    assert set(stored["marked_by"]) == {m.user for m, _, _ in shares}
    for district in (OWN, OTHER):
        st = drills.status(store, users()["coordinator"], drill["drill_id"], district=district)
        here = stored[stored["district_code"] == district]
        assert st["confirmed"] == st["total"] > 0 and st["marks"] == len(here)
    log = store.audit_log()
    appended = log[(log["layer"] == MARKS) & (log["action"] == "append")]
    assert appended["rows"].sum() == len(sent)  # every mark written once, each write logged


def test_sixteen_phones_through_the_web_api(demo, tmp_path):
    store = gpkg_copy(demo, tmp_path / "store")
    web = fx.make_api(store, tmp_path / "web", basemap="none")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    drill = drills.start_drill(store, users()["coordinator"], [OWN], name="API同時", started_at=start)
    people = [p["person_id"] for p in drills.roll(store, users()["coordinator"], drill, OWN)]
    headers = web.headers("member")  # one login, sixteen phones (connections)
    clients = [TestClient(web.app, raise_server_exceptions=False, headers=headers) for _ in range(MARKERS)]
    barrier = threading.Barrier(MARKERS)
    results = []

    def phone(k: int):
        mine = people[k::MARKERS]
        marks = [{"id": str(uuid.uuid4()), "person_id": p, "district": OWN, "status": "safe",
                  "marked_at": (start + dt.timedelta(seconds=i)).isoformat()} for i, p in enumerate(mine)]
        barrier.wait()
        for m in marks:
            r = clients[k].post("/api/drills/marks", json={"drill": drill["drill_id"], "marks": [m]})
            assert r.status_code == 200, r.text
            results.append(r.json())
        r = clients[k].post("/api/drills/marks", json={"drill": drill["drill_id"], "marks": marks})
        assert r.status_code == 200 and len(r.json()["duplicates"]) == len(marks)

    with ThreadPoolExecutor(max_workers=MARKERS) as pool:
        list(pool.map(phone, range(MARKERS)))
    assert sum(len(r["received"]) for r in results) == len(people)
    assert len(store.read(MARKS)) == len(people)
    status = web.client("member").get(f"/api/districts/{OWN}/drills/status?drill={drill['drill_id']}").json()
    assert status["confirmed"] == status["total"] == len(people)
