"""Shared helpers of the care tests (households of concern, safety-net meetings): the users, the
demo store on either store (GeoPackage copy, or imported into this session's PostGIS database with
the care tables emptied), and the forms as the pages post them.

The demo's district S05 is the district member's own (:data:`api_fixtures.OWN`), S06 another.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import psycopg

from karte import snapshot
from karte.domain.access import PUBLIC, Access, Level
from karte.domain.care import CareLayer
from karte.domain.layers import split_list
from karte.services import care
from karte.store import GeoPackageStore

OWN, OTHER = "S05", "S06"
TODAY = dt.date(2026, 11, 30)
MEMBER = Access("care-member", Level.DISTRICT_MEMBER, OWN, route="test:care")
OTHER_MEMBER = Access("care-member-6", Level.DISTRICT_MEMBER, OTHER, route="test:care")
COORD = Access("care-coord", Level.COORDINATOR, route="test:care")
COORD2 = Access("care-coord-2", Level.COORDINATOR, route="test:care")
STAFF = Access("care-staff", Level.CITY_STAFF, route="test:care")
PUBLIC_USER = Access("care-public", Level.PUBLIC, route="test:care", municipality=None)
PREFECTURE = Access("care-pref", Level.PREFECTURE, route="test:care", municipality=None)
CARE_TABLES = tuple(str(layer) for layer in CareLayer)


def gpkg_copy(demo, folder: Path) -> GeoPackageStore:
    """A private copy of the session's demo GeoPackage (tests write to it)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo[1] / "karte.gpkg", folder / "karte.gpkg")
    snapshot.clear()
    return GeoPackageStore(folder / "karte.gpkg")


def empty_care_tables(admin_url: str) -> None:
    """The care tables emptied (with their id sequences) and out of the catalogue: the shared
    PostGIS reset (pg_fixtures) does not know them."""
    from pg_fixtures import libpq

    with psycopg.connect(libpq(admin_url), autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"karte.{t}" for t in CARE_TABLES) + " RESTART IDENTITY")
        conn.execute("DELETE FROM karte.layer_catalog WHERE layer = ANY(%s)", (list(CARE_TABLES),))


def postgis_demo(demo, admin_url: str, app_url: str):
    """The demo imported into this session's PostGIS database, care tables empty."""
    from pg_fixtures import reset

    from karte.store.cli import import_store
    from karte.store.postgis import PostGISStore

    reset(admin_url)
    empty_care_tables(admin_url)
    store = PostGISStore(app_url)
    import_store(demo[1] / "karte.gpkg", store)
    snapshot.clear()
    return store


def consented(store, district: str = OWN, *, supported: bool | None = None) -> list[dict]:
    """Register rows of ``district`` that may be shared (同意・条例), as the pipeline reads them;
    ``supported``: only those with (True) or without (False) a supporter."""
    rows = [r for r in store.read_records("register", district=district)
            if r["consent"] in ("consented", "ordinance")]
    if supported is not None:
        rows = [r for r in rows if bool(split_list(r.get("supporter_ids"))) == supported]
    return sorted(rows, key=lambda r: r["person_id"])


def unconsented(store, district: str = OWN) -> list[dict]:
    return sorted((r for r in store.read_records("register", district=district)
                   if r["consent"] not in ("consented", "ordinance")), key=lambda r: r["person_id"])


def cooperators(store, district: str = OWN) -> list[dict]:
    return sorted(store.read_records("cooperators", district=district), key=lambda r: r["cooperator_id"])


def concern_form(household: str = "角の山田さん宅", **extra) -> dict:
    """The new-household form as the district page posts it (no location unless given)."""
    return {"household": household, "noticed_on": "2026-11-20", "noticed_by_role": "neighbourhood_staff",
            "noticed_by_name": "佐藤 花子", "urgency": "high", "kinds": ["isolation", "evacuation"],
            "summary": "新聞がたまっている", **extra}


def meeting_form(households: dict[str, dict], **extra) -> dict:
    """The meeting form: ``households`` maps a case id to its fields (``watch_who``…, without the
    ``h-<id>-`` prefix)."""
    form: dict = {"held_on": "2026-11-25", "place": "石江会館", "attendees_neighbourhood_staff": "4",
                  "attendees_welfare_commissioner": "2", "attendees_csw": "1", "summary": "見守りの分担",
                  "household": list(households)}
    for cid, fields in households.items():
        form[care.household_field(cid, "discussed")] = "1"
        for name, value in fields.items():
            form[care.household_field(cid, name)] = value
    form.update(extra)
    return form


def new_case(store, access: Access = MEMBER, district: str = OWN, **extra) -> dict:
    return care.record_concern(store, access, district, concern_form(**extra), today=TODAY)


__all__ = ["COORD", "COORD2", "MEMBER", "OTHER", "OTHER_MEMBER", "OWN", "PREFECTURE", "PUBLIC", "PUBLIC_USER",
           "STAFF", "TODAY"]
