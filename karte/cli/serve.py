"""``karte serve``: the web maps and the API (FastAPI on uvicorn).

Outside the demo the server needs a configured signing key (``KARTE_SECRET_KEY``): without one it
would make a key at each start, logging everyone out at every restart, and several workers could
not share logins. It refuses to start and says how to set one. The demo store (its register is
the synthetic one ``karte demo`` makes) starts without, on a key of its own.

Proxy headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are believed only from the addresses
given with ``--forwarded-allow-ips`` (default: none). uvicorn's own default believes them from
127.0.0.1, so anyone on the server host could claim any client address and slip past the login
throttle; behind nginx on the same host, pass ``--forwarded-allow-ips 127.0.0.1``.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from karte.cli.common import StoreOpt, fail, out
from karte.domain.errors import KarteError
from karte.store import open_store

#: How to make a key, as the refusal says it.
KEY_HINT = ("export KARTE_SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\"")


#: Seconds uvicorn's supervisor (``--workers`` > 1) waits for a worker's answer to its health
#: check before it kills and restarts the worker. A worker answers once it has imported the app
#: (geopandas, shapely, pyogrio …): on a busy 2-core host that took over 30 s, and uvicorn's
#: default of 5 s then killed every worker before it started, over and over.
WORKER_START_S = 120


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    store: StoreOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each with its own caches; "
                                                     "they share logins and the login throttle "
                                                     "through the store)")] = 1,
    forwarded_allow_ips: Annotated[str, typer.Option(
        "--forwarded-allow-ips",
        help="Proxy addresses whose X-Forwarded-For / X-Forwarded-Proto are believed, comma-separated "
             "(e.g. 127.0.0.1 behind nginx on this host); default: none")] = "",
) -> None:
    """Serve the web maps and the API (FastAPI on uvicorn): 地区の地図・カルテ・API.

    The embedded store by default; PostGIS when --store or KARTE_DATABASE_URL is a
    postgresql+psycopg:// URL. Several workers share one store safely (both stores take rows
    from several processes); every worker keeps its own build snapshot, renewed when the store's
    stamp changes; logins (sessions) and the login throttle live in the store, and every worker
    signs cookies with the same key (KARTE_SECRET_KEY). Set KARTE_ALLOWED_HOSTS to the names the
    server is reached by (docs/security.md).
    """
    import uvicorn

    if store:
        # the app reads its store from the settings (environment), like every other command
        key = "KARTE_DATABASE_URL" if store.startswith("postgresql") else "KARTE_STORE"
        os.environ[key] = store
    if not os.environ.get("KARTE_SECRET_KEY"):
        if not is_demo(store):
            fail("KARTE_SECRET_KEY（ログインの署名鍵）が設定されていません。デモ以外のストアで動かすには、"
                 "長い乱数の鍵を設定してから起動してください（再起動やワーカーをまたいでも同じ鍵を使います）。\n"
                 f"  {KEY_HINT}\n"
                 "サービスとして動かすときは、その環境ファイル（systemd の EnvironmentFile など）に書きます")
        if workers > 1:
            fail("複数のワーカーで動かすには KARTE_SECRET_KEY（ログインの署名鍵）を設定してください。"
                 f"ワーカーごとに別の鍵になると、ログインが別のワーカーで通りません。\n  {KEY_HINT}")
        out.print("[yellow]デモのストアなので、起動ごとの鍵で動かします（再起動するとログアウトします）[/yellow]")
    if workers > 1:  # the login throttle's counts must be shared by every worker: in the store
        os.environ["KARTE_SHARED_THROTTLE"] = "true"
    proxies = ",".join(p.strip() for p in forwarded_allow_ips.split(",") if p.strip())
    if not os.environ.get("KARTE_ALLOWED_HOSTS") and host not in ("127.0.0.1", "localhost", "::1"):
        out.print("[yellow]KARTE_ALLOWED_HOSTS が未設定です: この PC の名前（localhost）以外で"
                  "届いた要求は断ります。サーバーの名前を設定してください[/yellow]")
    out.print(f"http://{host}:{port}/ で公開します（ワーカー {workers}、Ctrl-C で終了）")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info", workers=workers,
                proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
                server_header=False, timeout_worker_healthcheck=WORKER_START_S)


def is_demo(store: str | None) -> bool:
    """Is the store to serve the demo (its register the synthetic one ``karte demo`` builds)?"""
    try:
        meta = open_store(store).meta()
    except (KarteError, OSError):
        return False
    try:
        return "register" in json.loads(meta.get("synthetic_layers", "[]"))
    except (TypeError, ValueError):
        return False


__all__ = ["KEY_HINT", "is_demo", "serve"]
