"""Fixtures of the web API tests: the app over the session's demo store, one user per role.

Import the fixtures a test module uses: ``from api_fixtures import api  # noqa: F401``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

#: Roles of the matrix: the anonymous visitor and one user of each access level.
ROLES = ("anonymous", "public", "member", "coordinator", "staff")
#: The district member's district, and another district they must not see.
OWN, OTHER = "S05", "S06"
PASSWORD = "correct horse battery"


@dataclass
class Api:
    """The app, its store and users, and a logged-in client per role (bearer tokens)."""

    app: object
    store: object
    folder: Path
    users: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # role -> (level, district)
    _clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, role: str) -> TestClient:
        if role not in self._clients:
            client = TestClient(self.app, raise_server_exceptions=False)
            if role != "anonymous":
                r = client.post("/api/token", data={"username": role, "password": PASSWORD})
                assert r.status_code == 200, r.text
                client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            self._clients[role] = client
        return self._clients[role]

    def access(self, role: str):
        """The :class:`karte.domain.access.Access` the app should give ``role``."""
        from karte.domain.access import PUBLIC, Access, Level

        if role == "anonymous":
            return PUBLIC
        level, district = self.users[role]
        return Access(user=role, level=Level(level), district=district)


def make_api(store, folder: Path) -> Api:
    from api.app import create_app
    from api.deps import WebSettings
    from karte.users import UserFile

    folder.mkdir(parents=True, exist_ok=True)
    users = {"public": ("public", None), "member": ("district_member", OWN),
             "coordinator": ("coordinator", None), "staff": ("city_staff", None)}
    file = UserFile(folder / "users.json")
    for name, (level, district) in users.items():
        file.add(name, PASSWORD, level=level, district=district)
    settings = WebSettings(workspace=folder, users_file=folder / "users.json",
                           secret_key="test-key-" + "x" * 24)
    app = create_app(settings, store=store, warm=False)
    return Api(app=app, store=store, folder=folder, users=users)


@pytest.fixture(scope="session")
def api(demo, tmp_path_factory) -> Api:
    """The web app over the session's demo store, with a user of every level."""
    from karte.store import GeoPackageStore

    _, folder = demo
    return make_api(GeoPackageStore(folder / "karte.gpkg"), tmp_path_factory.mktemp("web"))


#: Keys whose small numbers are not counts of people (reviewed by hand: a new count of people
#: must be suppressed for the public, or the matrix test fails until it is listed here with a reason).
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


def body_text(response) -> str:
    """The response as text: PDF pages extracted, everything else decoded."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/pdf"):
        import io

        from pypdf import PdfReader

        return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(response.content)).pages)
    text = response.content.decode("utf-8", errors="replace")
    if "json" in kind:
        # JSON escapes (\u3042) would hide Japanese text from a substring search
        try:
            return json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            return text
    return text


def squash(text: str) -> str:
    """Without any whitespace (PDF text extraction splits and joins words freely)."""
    return re.sub(r"\s+", "", text)
