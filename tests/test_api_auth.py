"""Login, sessions, CSRF, bearer tokens, the users file and its command line; errors never leak."""

from __future__ import annotations

import logging
import stat

import api_fixtures as fx
import pytest
from api_fixtures import OWN, PASSWORD, csrf_of
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from karte.cli.users import users_app
from karte.domain.errors import InputError
from karte.users import UserFile

pytestmark = pytest.mark.slow  # over the session's demo build


@pytest.fixture()
def web(demo, tmp_path) -> fx.Api:
    """An app of its own (the users file and the login throttle change here)."""
    return fx.make_api(fx.demo_store(demo), tmp_path)


@pytest.fixture()
def client(web):
    with TestClient(web.app, raise_server_exceptions=False) as c:
        yield c




def test_login_form_session_and_logout(client):
    page = client.get("/login?next=/api/me")
    assert page.status_code == 200 and "ログイン" in page.text
    token = csrf_of(page.text)
    r = client.post("/login", data={"username": "member", "password": PASSWORD, "csrf": token,
                                    "next": "/api/me"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/api/me"
    cookie = r.headers["set-cookie"]
    assert "karte_session=" in cookie and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert PASSWORD not in cookie
    me = client.get("/api/me").json()
    assert me == {"user": "member", "level": "district_member", "level_ja": "地区社協",
                  "district": OWN, "logged_in": True}
    assert client.get("/api/me").headers["cache-control"] == "private, no-store"
    # the session's CSRF token was renewed at login: the old one no longer works
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 403
    fresh = csrf_of(client.get("/login").text)
    assert client.post("/logout", data={"csrf": fresh}, follow_redirects=False).status_code == 303
    assert client.get("/api/me").json()["logged_in"] is False


def test_wrong_password_and_unknown_user_are_refused_alike(client):
    token = csrf_of(client.get("/login").text)
    for user, pw in (("member", "wrong-password-123"), ("nobody", PASSWORD)):
        r = client.post("/login", data={"username": user, "password": pw, "csrf": token},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?error=1")
    assert client.get("/api/me").json()["logged_in"] is False
    r = client.post("/api/token", data={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"


def test_login_without_or_with_a_forged_csrf_token_is_refused(client):
    client.get("/login")
    r = client.post("/login", data={"username": "staff", "password": PASSWORD, "csrf": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403 and r.json()["code"] == "csrf"
    r = client.post("/login", data={"username": "staff", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 422


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_login_never_redirects_off_site(client, target):
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "staff", "password": PASSWORD, "csrf": token,
                                    "next": target}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_bearer_tokens(web, client):
    headers = web.headers("coordinator")
    assert client.get("/api/me", headers=headers).json()["level"] == "coordinator"
    assert client.get("/api/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Basic abc"}).status_code == 401
    tampered = headers["Authorization"][:-2] + ("AA" if not headers["Authorization"].endswith("AA") else "BB")
    assert client.get("/api/me", headers={"Authorization": tampered}).status_code == 401


def test_changing_the_password_or_removing_the_user_ends_their_tokens(web, client):
    users: UserFile = client.app.state.users
    headers = web.headers("coordinator")
    users.add("coordinator", "another-password-1", level="coordinator", replace=True)
    assert client.get("/api/me", headers=headers).status_code == 401
    r = client.post("/api/token", data={"username": "coordinator", "password": "another-password-1"})
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/api/me", headers=headers).json()["user"] == "coordinator"
    users.remove("coordinator")
    assert client.get("/api/me", headers=headers).status_code == 401


def test_expired_token_is_refused(demo, tmp_path):
    app = fx.make_api(fx.demo_store(demo), tmp_path, token_hours=-1).app
    with TestClient(app) as c:
        r = c.post("/api/token", data={"username": "staff", "password": PASSWORD})
        token = r.json()["access_token"]
        assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_users_file_is_private_and_holds_argon2_hashes(client):
    users: UserFile = client.app.state.users
    text = users.path.read_text()
    assert PASSWORD not in text and "$argon2id$" in text
    assert stat.S_IMODE(users.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("kwargs", [
    {"name": "bad name", "level": "coordinator"},
    {"name": "x", "level": "mayor"},
    {"name": "x", "level": "district_member"},
    {"name": "x", "level": "coordinator", "district": "S01"},
    {"name": "x", "level": "coordinator", "password": "short"},
])
def test_bad_users_are_refused(tmp_path, kwargs):
    kwargs = {"password": PASSWORD, **kwargs}
    with pytest.raises(InputError):
        UserFile(tmp_path / "u.json").add(kwargs.pop("name"), kwargs.pop("password"), **kwargs)


def test_users_command_line(tmp_path):
    path = tmp_path / "users.json"
    runner = CliRunner()
    r = runner.invoke(users_app, ["add", "member5", "--level", "district_member", "--district", "S05",
                                  "--password-stdin", "--file", str(path)], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert "地区社協" in r.output
    r = runner.invoke(users_app, ["list", "--file", str(path)])
    assert "member5\tdistrict_member\t02201\tS05" in r.output and "argon2" not in r.output
    r = runner.invoke(users_app, ["add", "x", "--level", "mayor", "--password-stdin", "--file", str(path)],
                      input=PASSWORD + "\n")
    assert r.exit_code == 1 and "権限" in r.output
    assert UserFile(path).verify("member5", PASSWORD).district == "S05"
    r = runner.invoke(users_app, ["remove", "member5", "--file", str(path)])
    assert r.exit_code == 0 and UserFile(path).get("member5") is None


def test_an_unexpected_error_is_a_plain_500_and_logs_no_data(web, caplog):
    app = web.app

    def boom():
        raise ValueError("斎藤 博 青森県青森市大字四戸橋1-1")  # as if an exception quoted a row

    app.add_api_route("/api/boom", boom, name="boom")
    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.DEBUG):
        r = c.get("/api/boom")
    assert r.status_code == 500
    assert r.json()["code"] == "server_error" and "斎藤" not in r.text and "Traceback" not in r.text
    assert "斎藤" not in caplog.text and "ValueError" in caplog.text


def test_repeated_wrong_passwords_are_throttled(client):
    for _ in range(10):
        r = client.post("/api/token", data={"username": "staff", "password": "wrong-password-1"})
        assert r.status_code == 401
    r = client.post("/api/token", data={"username": "staff", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["code"] == "too_many_requests"
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "staff", "password": PASSWORD, "csrf": token},
                    follow_redirects=False)
    assert r.status_code == 429
    # another user name is not affected, and a success clears the count
    r = client.post("/api/token", data={"username": "coordinator", "password": PASSWORD})
    assert r.status_code == 200
