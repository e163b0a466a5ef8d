"""Fixtures of the web tests (API, pages, browser): the app over a demo store, one user per role.

One design for every web test module:

* **users**: one per access level, named after their role (:data:`USERS`: ``public``,
  ``member``, ``coordinator``, ``staff``), all with :data:`PASSWORD`; the district member's
  district is :data:`OWN` (S05), :data:`OTHER` (S06) is a district they must not see;
* :func:`make_api` builds the app over any store (the session's demo GeoPackage, a private copy
  of it for tests that write, PostGIS) with settings overrides (``suppress_max=5``,
  ``token_hours=-1``, ``basemap="none"`` …);
* :class:`Api` gives a client per role, logged in with a bearer token (:meth:`Api.client`,
  :meth:`Api.headers`) or through the login form as a browser is (:meth:`Api.browser`), and the
  :class:`~karte.domain.access.Access` the app should give that role (:meth:`Api.access`).

The session fixture :func:`api` serves one private copy of the demo store, shared by the modules
that use it: printing a personal sheet or CSV records a copy in the ledger, so even "read" routes
write, and the session's demo itself stays as built (other tests import it into PostGIS). A test
that writes on purpose makes its own app over :func:`copy_demo`. In a test module::

    import api_fixtures as fx

    api = fx.api  # the fixture
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

#: Roles of the tests: the anonymous visitor and one user of each access level.
ROLES = ("anonymous", "public", "member", "coordinator", "staff")
#: The district member's district, and another district they must not see.
OWN, OTHER = "S05", "S06"
PASSWORD = "correct horse battery"
#: role (= user name) -> (access level, district)
USERS = {"public": ("public", None), "member": ("district_member", OWN),
         "coordinator": ("coordinator", None), "staff": ("city_staff", None)}
SECRET = "test-key-" + "x" * 24


@dataclass
class Api:
    """The app, its store and users, and a logged-in client per role (bearer tokens)."""

    app: object
    store: object
    folder: Path
    users: dict[str, tuple[str, str | None]] = field(default_factory=lambda: dict(USERS))
    _clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, role: str) -> TestClient:
        """A client of ``role`` that sends its bearer token with every request (kept per role)."""
        if role not in self._clients:
            client = TestClient(self.app, raise_server_exceptions=False)
            client.headers.update(self.headers(role))
            self._clients[role] = client
        return self._clients[role]

    def headers(self, role: str) -> dict[str, str]:
        """``Authorization`` header with a fresh token of ``role`` (none for anonymous)."""
        if role == "anonymous":
            return {}
        client = TestClient(self.app, raise_server_exceptions=False)
        r = client.post("/api/token", data={"username": role, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def browser(self, role: str) -> TestClient:
        """A new client logged in through the ``/login`` form (a session cookie, as a browser)."""
        client = TestClient(self.app, raise_server_exceptions=False)
        if role != "anonymous":
            token = csrf_of(client.get("/login").text)
            r = client.post("/login", data={"username": role, "password": PASSWORD, "csrf": token,
                                            "next": "/"}, follow_redirects=False)
            assert r.status_code == 303 and "error" not in r.headers["location"], r.text
        return client

    def access(self, role: str, route: str = "test"):
        """The :class:`karte.domain.access.Access` the app should give ``role``."""
        from karte.domain.access import PUBLIC, Access, Level

        if role == "anonymous":
            return PUBLIC
        level, district = self.users[role]
        return Access(user=role, level=Level(level), district=district, route=route)


def make_users(path: Path) -> None:
    """The users file with one user per role of :data:`USERS`."""
    from karte.users import UserFile

    file = UserFile(path)
    for name, (level, district) in USERS.items():
        if file.get(name) is None:
            file.add(name, PASSWORD, level=level, district=district)


def make_api(store, folder: Path, **settings) -> Api:
    """The app over ``store`` with a user of every role; ``settings`` override the
    :class:`api.deps.WebSettings` fields (``suppress_max``, ``token_hours``, ``basemap`` …)."""
    from api.app import create_app
    from api.deps import WebSettings

    folder.mkdir(parents=True, exist_ok=True)
    make_users(folder / "users.json")
    web = WebSettings(**{"workspace": folder, "users_file": folder / "users.json", "secret_key": SECRET,
                         **settings})
    return Api(app=create_app(web, store=store, warm=False), store=store, folder=folder)


def demo_store(demo):
    """The session's demo GeoPackage (shared: read it, do not write to it)."""
    from karte.store import GeoPackageStore

    return GeoPackageStore(demo[1] / "karte.gpkg")


def copy_demo(demo, folder: Path):
    """A private copy of the demo GeoPackage in ``folder``, for tests that write. It starts with
    no web sessions or login attempts (tests that log in on the shared demo leave theirs there)."""
    from conftest import copy_store

    from karte.domain.security import NOT_EXPORTED
    from karte.store import GeoPackageStore

    folder.mkdir(parents=True, exist_ok=True)
    path = copy_store(demo[1] / "karte.gpkg", folder / "karte.gpkg")
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for name in sorted(NOT_EXPORTED & tables):
            con.execute(f'DELETE FROM "{name}"')
    return GeoPackageStore(path)


@pytest.fixture(scope="session")
def api(demo, tmp_path_factory) -> Api:
    """The web app over a session-wide copy of the demo store, with a user of every role."""
    folder = tmp_path_factory.mktemp("web")
    return make_api(copy_demo(demo, folder), folder)


# --- reading answers ------------------------------------------------------------------------------

def csrf_of(html: str) -> str:
    """The CSRF token of a page's form."""
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


#: The element in which the district page sends the viewer's personal layers.
PERSONAL_JSON = re.compile(r'<script type="application/json" id="karte-personal">(.*?)</script>', re.S)


def personal_json(html: str) -> dict | None:
    """The personal layers a district page sends (``karte-personal``), or None when it sends none."""
    found = PERSONAL_JSON.findall(html)
    assert len(found) <= 1, "one karte-personal element at most"
    return json.loads(found[0]) if found else None


#: A page's map script, served apart from the page (``/maps/…``) so that the browser keeps it.
MAP_SCRIPT = re.compile(r'<script[^>]* src="(/maps/[^"]+)"')


def with_map(client, page: str) -> str:
    """``page`` with the text of the map scripts it loads appended, as the browser has them: what
    the map shows is part of what the page shows."""
    scripts = [client.get(html.unescape(url)) for url in MAP_SCRIPT.findall(page)]
    assert all(r.status_code == 200 for r in scripts), [r.status_code for r in scripts]
    return page + "".join(f"\n<script>{r.text}</script>" for r in scripts)


_U_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def body_text(response) -> str:
    """The response as text to search for personal data: PDF text from ``pdftotext`` (poppler),
    anything else decoded, with JSON's ``\\uXXXX`` escapes written back as letters (the page's
    embedded JSON and folium's scripts escape Japanese text, which would hide names)."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/pdf"):
        return pdf_text(response.content)
    return unescape(response.content.decode("utf-8-sig", errors="replace"))


def unescape(text: str) -> str:
    """JSON's ``\\uXXXX`` escapes written back as the letters they stand for."""
    return _U_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def pdf_text(data: bytes) -> str:
    """The text of a PDF, laid out as printed (``pdftotext -layout``: a table row stays one line)."""
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True)
    return done.stdout.decode("utf-8", "replace")


#: Keys whose small numbers are not counts of people (reviewed by hand: a new count of people
#: must be suppressed for the public, or the tests fail until it is listed here with a reason).
NOT_PEOPLE = {
    "district": "the district's own facts (small areas, km², concealed areas)",
    "emergency_sites": "number of designated sites (public GSI facilities)",
    "viewer": "who is looking and the threshold itself",
    "fiscal_year": "a year",
    "salons": "number of salons (public services)",
    "small_areas": "number of small areas in a district",
    "area_km2": "area",
    "cells": "number of mesh cells",
    "radius_m": "metres",
    "concealed": "census concealment flag",
    "welfare": "shelter flag",
    "numberMatched": "OGC paging", "numberReturned": "OGC paging",
}


def people_count_paths(value, lo: int = 1, hi: int = 2) -> dict:
    """Paths of every integer from ``lo`` to ``hi`` that may count people (not in NOT_PEOPLE,
    not a hazard flag)."""
    out = {}
    for path, v in walk(value):
        if type(v) is not int or not lo <= v <= hi:
            continue
        keys = [k for k in path if isinstance(k, str)]
        if any(k in NOT_PEOPLE or k.startswith("hazard_") for k in keys):
            continue
        out[path] = v
    return out


def walk(value, path=()):
    """Every leaf of a JSON value with its path (keys and list indexes)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, i))
    else:
        yield path, value


def at(value, path):
    """The leaf of a JSON value at ``path`` (from :func:`walk`)."""
    for step in path:
        value = value[step]
    return value
