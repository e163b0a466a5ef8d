"""``karte serve``: the web maps and the API (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from karte.cli.common import StoreOpt, out


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    store: StoreOpt = None,
) -> None:
    """Serve the web maps and the API (FastAPI on uvicorn): 地区の地図・カルテ・API.

    The embedded store by default; PostGIS when --store or KARTE_DATABASE_URL is a
    postgresql+psycopg:// URL.
    """
    if store:
        # the app reads its store from the settings (environment), like every other command
        key = "KARTE_DATABASE_URL" if store.startswith("postgresql") else "KARTE_STORE"
        os.environ[key] = store
    out.print(f"http://{host}:{port}/ で公開します (Ctrl-C で終了)")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info")
