"""Outreach visits: ``outreach_visits``, a personal record layer (issue 15, item 2).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

One record layer (``karte.domain.outreach``): a coordinator's visit to a ranked place of the
outreach page (the small area ``key_code`` and its ``district_code``, ``visited_on``, a ``result``
code, the ``next_step``, ``recorded_by``/``recorded_at``; no names). The table follows 0006 and
0009 exactly: the registry's columns, ``municipality_code`` defaulting to the acting user's, the
row version (``version`` from ``row_version``, ``updated_at``, ``updated_by``; the ``bump_version``
trigger), ``fid`` and ``extra``; unique (``municipality_code``, key), indexes on
``municipality_code`` and ``district_code`` (as ``postgis_models._record_model`` declares); the
id sequence owned by the key (``OV000001``) with the statement trigger that advances it past
inserted ids; 0010's key guard (``keep_key``: only city staff and the pipeline change a row's
key or municipality).

``FORCE ROW LEVEL SECURITY``, every policy ending with 0010's
``AND (SELECT karte.context_ok(CURRENT_USER))``, every rule but the pipeline's within the user's
municipality: city staff every row; coordinators read every row, insert as themselves
(``updated_by`` is the transaction's user), edit and delete; district members read their own
district's rows (as on ``supporter_decisions`` and as ``Access.filter_rows`` does on the
GeoPackage; they write none); the pipeline (the store's trusted user) every row. The public and
the prefecture level have no privilege at all. 0011's trigger keeps the name out of
``extra_layers``.

Not a snapshot layer: a visit does not change the build stamp.

Idempotent: every step checks or replaces what it creates. The downgrade drops the table (its rows
are lost: export them first with ``karte export``), its sequence and its catalogue entry.

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

S = "karte"
COLUMN = "municipality_code"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
PREFECTURE, PIPELINE = "karte_prefecture", "karte_pipeline"
DEFAULT = "nullif(current_setting('karte.municipality', true), '')"
OWN_MUNICIPALITY = f"{COLUMN} = {DEFAULT}"
OWN_DISTRICT = "district_code = current_setting('karte.district', true)"
AS_THEMSELVES = "updated_by = current_setting('karte.user', true)"
#: 0010: every policy ends with this (evaluated once per statement).
CHECK = "(SELECT karte.context_ok(CURRENT_USER))"

TABLE, KEY, PREFIX = "outreach_visits", "visit_id", "OV"
#: Columns after key, municipality and district, as karte.domain.outreach.VISIT_COLUMNS declares
#: them at this revision (all text).
COLUMNS = ("key_code", "visited_on", "result", "next_step", "recorded_by", "recorded_at")

#: policy -> (clause before USING, USING, WITH CHECK), before the context check is added.
POLICIES = {
    "city_staff_all": (f"TO {STAFF}", OWN_MUNICIPALITY, OWN_MUNICIPALITY),
    "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", OWN_MUNICIPALITY, None),
    "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, f"{AS_THEMSELVES} AND {OWN_MUNICIPALITY}"),
    "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", OWN_MUNICIPALITY, OWN_MUNICIPALITY),
    "coordinator_delete": (f"FOR DELETE TO {COORDINATOR}", OWN_MUNICIPALITY, None),
    "district_member_read": (f"FOR SELECT TO {MEMBER}", f"{OWN_DISTRICT} AND {OWN_MUNICIPALITY}", None),
    "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
}


def _table() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE, schema=S):
        return
    op.create_table(
        TABLE,
        sa.Column(KEY, sa.Text),
        sa.Column(COLUMN, sa.Text, server_default=sa.text(DEFAULT)),
        sa.Column("district_code", sa.Text),
        *(sa.Column(c, sa.Text) for c in COLUMNS),
        sa.Column("version", sa.BigInteger, nullable=False,
                  server_default=sa.text(f"nextval('{S}.row_version'::regclass)")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_by", sa.Text),
        sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("extra", JSONB),
        schema=S)


def _indexes_and_triggers() -> None:
    op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{TABLE}_{COLUMN}_{KEY} "
               f"ON {S}.{TABLE} ({COLUMN}, {KEY})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_{COLUMN} ON {S}.{TABLE} ({COLUMN})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_district_code ON {S}.{TABLE} (district_code)")
    op.execute(f"CREATE OR REPLACE TRIGGER {TABLE}_version BEFORE UPDATE ON {S}.{TABLE} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.bump_version()")
    op.execute(f"CREATE OR REPLACE TRIGGER {TABLE}_key_kept BEFORE UPDATE ON {S}.{TABLE} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.keep_key('{KEY}')")
    seq = f"{TABLE}_{KEY}_seq"
    op.execute(f"CREATE SEQUENCE IF NOT EXISTS {S}.{seq} OWNED BY {S}.{TABLE}.{KEY}")
    op.execute(f"CREATE OR REPLACE TRIGGER {TABLE}_ids AFTER INSERT ON {S}.{TABLE} "
               "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
               f"EXECUTE FUNCTION {S}.advance_record_id('{KEY}', '{PREFIX}')")
    op.execute(f"REVOKE ALL ON SEQUENCE {S}.{seq} FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.{seq} TO {STAFF}, {COORDINATOR}")


def _grants() -> None:
    op.execute(f"REVOKE ALL ON {S}.{TABLE} FROM PUBLIC, {PUBLIC}, {PREFECTURE}, {MEMBER}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {S}.{TABLE} TO {STAFF}, {COORDINATOR}")
    op.execute(f"GRANT SELECT ON {S}.{TABLE} TO {MEMBER}")


def _row_level_security() -> None:
    op.execute(f"ALTER TABLE {S}.{TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{TABLE} FORCE ROW LEVEL SECURITY")
    for policy, (head, using, check) in POLICIES.items():
        using = None if using is None else f"({using}) AND {CHECK}"
        check = None if check is None else f"({check}) AND {CHECK}"
        op.execute(f"DROP POLICY IF EXISTS {policy} ON {S}.{TABLE}")
        op.execute(f"CREATE POLICY {policy} ON {S}.{TABLE} {head}"
                   + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


def upgrade() -> None:
    _table()
    _indexes_and_triggers()
    _grants()
    _row_level_security()


def downgrade() -> None:
    op.execute(f"DELETE FROM {S}.layer_catalog WHERE layer = '{TABLE}'")
    op.execute(f"DROP TABLE IF EXISTS {S}.{TABLE}")  # its sequence, triggers and policies with it
    op.execute(f"DROP SEQUENCE IF EXISTS {S}.{TABLE}_{KEY}_seq")
