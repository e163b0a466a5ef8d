"""``/api/docs``: the API reference as one server-rendered page, from the OpenAPI document.

FastAPI's own Swagger UI and ReDoc pages load their scripts from a CDN; this page needs nothing
from outside (the app must work offline), and links the machine-readable ``/api/openapi.json``.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter()


@router.get("/api/docs", response_class=HTMLResponse, include_in_schema=False, name="api_docs")
def api_docs(request: Request) -> HTMLResponse:
    spec = request.app.openapi()
    rows = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = ", ".join(
                f"{p['name']}{'' if p.get('required') else '?'} ({p.get('in')})"
                for p in op.get("parameters", []))
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td><td>{html.escape(params)}</td>"
                f"<td>{html.escape((op.get('description') or '').strip())}</td></tr>")
    info = spec.get("info", {})
    page = f"""<!doctype html><html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(info.get('title', 'API'))}</title>
<style>body{{font-family:sans-serif;margin:1.5rem;color:#222}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:.35rem .5rem;vertical-align:top;text-align:left;font-size:.9rem}}
th{{background:#eef2f6}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:1rem}}</style></head>
<body><h1>{html.escape(info.get('title', 'API'))} <small>{html.escape(info.get('version', ''))}</small></h1>
<pre>{html.escape(info.get('description', '').strip())}</pre>
<p>機械可読の定義: <a href="/api/openapi.json">/api/openapi.json</a>（OpenAPI 3）。
OGC API - Features: <a href="/ogc">/ogc</a></p>
<table><thead><tr><th>メソッド</th><th>パス</th><th>概要</th><th>パラメータ</th><th>説明</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table></body></html>"""
    return HTMLResponse(page)
