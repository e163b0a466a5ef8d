"""Shared helpers of the web API tests (no tests here): users of every level, an app over the
session's demo store, and bearer-token login."""

from __future__ import annotations

from pathlib import Path

from api.app import create_app
from api.deps import WebSettings
from karte.store import GeoPackageStore
from karte.users import UserFile

PASSWORD = "correct-horse-battery"
#: The district member's own district, and another one.
OWN, OTHER = "S01", "S02"
#: role -> (user name, level, district); "anonymous" has no user.
ROLES = {
    "anonymous": None,
    "public": ("viewer", "public", None),
    "district_member": ("s01member", "district_member", OWN),
    "coordinator": ("csw", "coordinator", None),
    "city_staff": ("staff", "city_staff", None),
}


def make_users(path: Path) -> UserFile:
    users = UserFile(path)
    for spec in ROLES.values():
        if spec and users.get(spec[0]) is None:
            users.add(spec[0], PASSWORD, level=spec[1], district=spec[2])
    return users


def make_app(demo, tmp: Path, **settings):
    """The app over the demo store (its own GeoPackageStore object on the same file)."""
    _, folder = demo
    make_users(tmp / "users.json")
    web = WebSettings(users_file=tmp / "users.json", secret_key="test-secret", workspace=tmp, **settings)
    return create_app(web, store=GeoPackageStore(folder / "karte.gpkg"), warm=False)


def bearer(client, role: str) -> dict[str, str]:
    """Authorization headers of ``role`` (none for anonymous)."""
    spec = ROLES[role]
    if spec is None:
        return {}
    r = client.post("/api/token", data={"username": spec[0], "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
