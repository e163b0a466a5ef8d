"""``karte serve --workers 2`` over PostGIS (issue 18, item 3): the real server, two uvicorn worker
processes, one store. Twenty concurrent decisions sent to both workers are all stored and seen by
both; a logout through one worker ends the session on the other at once.

Which worker answered: each test connection is kept open (HTTP keep-alive), so every request on it
goes to the worker process that accepted it. That process is found from outside, without changing
the app: the server side of the connection is the TCP socket whose peer is the connection's local
port (``/proc/net/tcp``), and the worker is the child of the server whose file descriptors hold
that socket (``/proc/<pid>/fd``).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import api_fixtures as fx
import pytest
from browser_fixtures import free_port

from karte import snapshot
from karte.domain.access import Access, Level
from karte.domain.layers import Layer
from karte.services import outreach

pytest_plugins = ["pg_fixtures"]
pytestmark = [pytest.mark.postgis, pytest.mark.slow]

#: ``karte serve`` run as the command line runs it (the typer app), with one change the test needs:
#: idle keep-alive connections stay open :data:`KEEP_ALIVE_S` (uvicorn's default 5 s would close
#: the ones pinned to a worker while a slow request runs elsewhere). Run through ``python -c``, the
#: workers do not re-import the command line's own modules (multiprocessing's spawn re-imports a
#: main *file*, not ``-c``). The workers' start-up wait is ``karte serve``'s own
#: (:data:`karte.cli.serve.WORKER_START_S`).
KEEP_ALIVE_S = 600
LAUNCH = ("import functools, sys, uvicorn\n"
          f"uvicorn.run = functools.partial(uvicorn.run, timeout_keep_alive={KEEP_ALIVE_S})\n"
          "from karte.cli import app\n"
          "sys.argv = ['karte', *sys.argv[1:]]\n"
          "app()\n")
WORKERS = 2
DECISIONS = 20
#: Connections opened (at most) to find one on each worker.
MAX_CONNECTIONS = 400


# --- which worker holds a connection --------------------------------------------------------------

def _children(pid: int) -> list[int]:
    """The worker processes of the uvicorn supervisor ``pid``: its children started by
    multiprocessing's spawn (not its resource tracker, also a child)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == pid and b"spawn_main" in command:
            out.append(int(entry.name))
    return out


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of the TCP connection from ``client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port and inode != "0"):
                return inode
    return None


def _holder(pids: list[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


class Server:
    """``karte serve --workers 2`` in a process group of its own, on a free port."""

    def __init__(self, url: str, folder: Path):
        self.port = free_port()
        env = {**os.environ, "KARTE_SECRET_KEY": fx.SECRET, "KARTE_USERS_FILE": str(folder / "users.json"),
               "KARTE_WORKSPACE": str(folder), "KARTE_BASEMAP": "none", "KARTE_THREADS": "4"}
        env.pop("KARTE_STORE", None)
        self.log = (folder / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "serve", "--workers", str(WORKERS), "--port", str(self.port),
             "--store", url],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers: list[int] = []

    def wait_ready(self, timeout: float = 400) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server stopped: {self.output()}"
            self.workers = _children(self.proc.pid)
            if len(self.workers) >= WORKERS:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    conn.request("GET", "/api/health")
                    if conn.getresponse().status == 200:
                        conn.close()
                        # every worker's app is up: each answers on a connection of its own
                        self.connections(1)
                        return
                except (OSError, http.client.HTTPException):
                    pass
            time.sleep(0.5)
        raise AssertionError(f"the server did not start: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the supervisor and its workers: our own group
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()

    def worker_of(self, conn: http.client.HTTPConnection) -> int | None:
        inode = _server_socket_inode(self.port, conn.sock.getsockname()[1])
        return _holder(self.workers, inode) if inode else None

    def connections(self, per_worker: int) -> dict[int, list[http.client.HTTPConnection]]:
        """Open keep-alive connections until every worker holds ``per_worker`` of them."""
        found: dict[int, list] = {pid: [] for pid in self.workers}
        spare = []
        for _ in range(MAX_CONNECTIONS):
            if all(len(v) >= per_worker for v in found.values()):
                break
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", "/api/health")  # the worker accepts it and answers
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            pid = self.worker_of(conn)
            assert pid in found, f"connection held by {pid}, not a worker of {self.workers}"
            (found[pid] if len(found[pid]) < per_worker else spare).append(conn)
        for conn in spare:
            conn.close()
        assert all(len(v) >= per_worker for v in found.values()), (
            f"a worker accepted no connection: {[(p, len(v)) for p, v in found.items()]}")
        return found


def _send(conn: http.client.HTTPConnection, method: str, path: str, cookie: str,
          form: dict | None = None) -> tuple[int, dict[str, str], str]:
    headers = {"Cookie": cookie} if cookie else {}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode("utf-8", errors="replace")
    return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def _cookie_of(headers: dict[str, str], old: str) -> str:
    """The session cookie a response sets (``name=value``), else ``old``."""
    found = re.match(r"\s*([^=;\s]+=[^;]*)", headers.get("set-cookie", ""))
    return found.group(1) if found else old


@pytest.fixture
def served(pg_store, pg_app_url, demo, tmp_path):
    """The city demo in this session's PostGIS database, served by two workers."""
    from karte.store.cli import import_store

    import_store(demo[1] / "karte.gpkg", pg_store)
    snapshot.clear()
    fx.make_users(tmp_path / "users.json")
    server = Server(pg_app_url, tmp_path)
    try:
        server.wait_ready()
        assert len(server.workers) == WORKERS
        yield server, pg_store
    finally:
        server.stop()
        snapshot.clear()


def test_two_workers_share_rows_and_logins(served):
    server, store = served
    coordinator = Access(user="coordinator", level=Level.COORDINATOR, route="test:workers")
    open_ = outreach.suggestions(store, coordinator).drop_duplicates("person_id")
    assert len(open_) > DECISIONS
    chosen = open_.head(DECISIONS)

    conns = server.connections(DECISIONS // WORKERS)
    (pid_a, on_a), (pid_b, on_b) = conns.items()
    assert pid_a != pid_b

    # log in through worker A (the form, as a browser)
    first = on_a[0]
    status, headers, page = _send(first, "GET", "/login", "")
    cookie = _cookie_of(headers, "")
    status, headers, _ = _send(first, "POST", "/login", cookie, {
        "username": "coordinator", "password": fx.PASSWORD, "csrf": fx.csrf_of(page), "next": "/"})
    assert status == 303 and "error" not in headers["location"]
    cookie = _cookie_of(headers, cookie)
    # the same cookie is a login on both workers, and both give the same form token
    tokens = set()
    for conn in (on_a[0], on_b[0]):
        status, _, text = _send(conn, "GET", "/api/me", cookie)
        assert status == 200 and '"logged_in":true' in text.replace(" ", "")
        status, _, text = _send(conn, "GET", "/outreach", cookie)
        assert status == 200
        tokens.add(fx.csrf_of(text))
    assert len(tokens) == 1
    csrf = tokens.pop()

    # 20 decisions at once, half through each worker
    targets = [*on_a, *on_b][:DECISIONS]
    answers: list[tuple[int, int, str]] = [None] * DECISIONS  # type: ignore[list-item]
    start = threading.Barrier(DECISIONS)

    def decide(i: int, row) -> None:
        start.wait()
        status, headers, text = _send(targets[i], "POST", "/outreach/decisions", cookie, {
            "person_id": row.person_id, "cooperator_id": row.cooperator_id, "decision": "rejected",
            "csrf": csrf})
        answers[i] = (status, server.worker_of(targets[i]), headers.get("location", text[:200]))

    threads = [threading.Thread(target=decide, args=(i, row))
               for i, row in enumerate(chosen.itertuples())]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(a is not None for a in answers), "a decision got no answer"
    assert [a[0] for a in answers] == [303] * DECISIONS, answers
    assert {a[1] for a in answers} == {pid_a, pid_b}  # both workers wrote

    # every row is in the store, each once
    stored = store.read(Layer.DECISIONS)
    assert len(stored) == DECISIONS
    assert sorted(stored["person_id"]) == sorted(chosen["person_id"])
    assert sorted(stored["decision_id"]) == [f"D{n:06d}" for n in range(1, DECISIONS + 1)]
    # ... and seen at once by both workers: the outreach page lists all 20 decisions
    for pid, conn in ((pid_a, on_a[1]), (pid_b, on_b[1])):
        assert server.worker_of(conn) == pid
        status, _, text = _send(conn, "GET", "/outreach", cookie)
        assert status == 200
        missing = [p for p in chosen["person_id"] if f"<td>{p}</td>" not in text]
        assert not missing, f"worker {pid} does not list {len(missing)} decisions"

    # log out through worker A: the cookie is refused by both workers at once
    status, _, _ = _send(on_a[2], "POST", "/logout", cookie, {"csrf": csrf})
    assert status == 303
    for pid, conn in ((pid_a, on_a[3]), (pid_b, on_b[3])):
        assert server.worker_of(conn) == pid
        status, _, text = _send(conn, "GET", "/api/me", cookie)
        assert status == 200 and '"logged_in":false' in text.replace(" ", ""), (pid, text)
        extra = open_.iloc[DECISIONS]
        status, headers, _ = _send(conn, "POST", "/outreach/decisions", cookie, {
            "person_id": extra.person_id, "cooperator_id": extra.cooperator_id, "decision": "rejected",
            "csrf": csrf})
        assert status == 303 and headers["location"].startswith("/login"), (pid, status)  # anonymous now
    assert len(store.read(Layer.DECISIONS)) == DECISIONS
    for conns_of in conns.values():
        for conn in conns_of:
            conn.close()
