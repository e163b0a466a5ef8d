"""The per-request PostGIS baseline of ``bench/ogc.py``: OGC API - Features items as tipg answers
them (FastAPI, one SQL query per request over a table with a GiST index), without tipg.

    uvicorn --factory bench.ogc_baseline:create_app   (BENCH_DATABASE_URL=postgresql://…)

Serves ``/collections/small_areas/items`` over ``public.ogc_small_areas`` (the table
``bench/ogc.py`` loads: the small areas as the public sees them, EPSG:4326) with ``bbox``,
``limit``, ``offset`` and ``filter`` (CQL2 text, translated to SQL by the ``cql2`` package, as
tipg does). One statement per request counts the matches and builds the page's GeoJSON in
PostGIS (``ST_AsGeoJSON`` to 6 decimals, ordered by ``key_code``); gzip level 1 when the client
accepts it, as karte does. Nothing is cached between requests. Not a product: a bench baseline.
"""

from __future__ import annotations

import gzip
import os

import cql2
from fastapi import FastAPI, Request
from fastapi.responses import Response
from psycopg import sql
from psycopg_pool import ConnectionPool

TABLE = sql.Identifier("public", "ogc_small_areas")
QUERY = """
WITH hits AS (SELECT * FROM {table} WHERE {where}),
page AS (SELECT * FROM hits ORDER BY key_code LIMIT %(limit)s OFFSET %(offset)s)
SELECT json_build_object(
  'type', 'FeatureCollection',
  'numberMatched', (SELECT count(*) FROM hits),
  'numberReturned', (SELECT count(*) FROM page),
  'features', coalesce((SELECT json_agg(json_build_object(
      'type', 'Feature', 'id', p.key_code, 'geometry', ST_AsGeoJSON(p.geometry, 6)::json,
      'properties', to_jsonb(p) - 'geometry') ORDER BY p.key_code) FROM page p), '[]'::json))::text
"""


def create_app() -> FastAPI:
    pool = ConnectionPool(os.environ["BENCH_DATABASE_URL"], min_size=4, max_size=4, open=True)
    app = FastAPI()

    @app.get("/collections/small_areas/items")
    def items(request: Request) -> Response:
        q = request.query_params
        where = [sql.SQL("TRUE")]
        args: dict = {"limit": int(q.get("limit", 10)), "offset": int(q.get("offset", 0))}
        if "bbox" in q:
            args["minx"], args["miny"], args["maxx"], args["maxy"] = map(float, q["bbox"].split(","))
            where.append(sql.SQL("ST_Intersects(geometry, ST_MakeEnvelope(%(minx)s, %(miny)s, "
                                 "%(maxx)s, %(maxy)s, 4326))"))
        if "filter" in q:
            where.append(sql.SQL(cql2.parse_text(q["filter"]).to_sql().replace("%", "%%")))
        statement = sql.SQL(QUERY).format(table=TABLE, where=sql.SQL(" AND ").join(where))
        with pool.connection() as conn:
            body = conn.execute(statement, args).fetchone()[0].encode()
        headers = {}
        if "gzip" in request.headers.get("accept-encoding", ""):
            body, headers = gzip.compress(body, compresslevel=1), {"Content-Encoding": "gzip"}
        return Response(body, media_type="application/geo+json", headers=headers)

    @app.get("/collections")
    def collections() -> dict:
        return {"collections": [{"id": "small_areas"}]}

    return app
