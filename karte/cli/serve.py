"""``karte serve``: the web maps and the API (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from karte.cli.common import StoreOpt, fail, out


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    store: StoreOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each with its own caches; "
                                                     "needs KARTE_SECRET_KEY when more than one)")] = 1,
) -> None:
    """Serve the web maps and the API (FastAPI on uvicorn): 地区の地図・カルテ・API.

    The embedded store by default; PostGIS when --store or KARTE_DATABASE_URL is a
    postgresql+psycopg:// URL. Several workers share one store safely (both stores take rows
    from several processes); every worker keeps its own build snapshot, renewed when the store's
    stamp changes, and they must share the key that signs sessions (KARTE_SECRET_KEY).
    """
    if store:
        # the app reads its store from the settings (environment), like every other command
        key = "KARTE_DATABASE_URL" if store.startswith("postgresql") else "KARTE_STORE"
        os.environ[key] = store
    if workers > 1 and not os.environ.get("KARTE_SECRET_KEY"):
        fail("複数のワーカーで動かすには KARTE_SECRET_KEY（ログインの署名鍵）を設定してください。"
             "ワーカーごとに別の鍵になると、ログインが別のワーカーで通りません")
    out.print(f"http://{host}:{port}/ で公開します（ワーカー {workers}、Ctrl-C で終了）")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info", workers=workers)
