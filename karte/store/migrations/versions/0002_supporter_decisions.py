"""Outreach decisions as a personal table: ``supporter_decisions`` under row-level security.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

The web app's confirm/reject decisions on supporter suggestions (``karte.outreach``: person id,
cooperator id, district, who decided) were stored as an unmodelled layer in ``extra_layers``,
which has no row-level security: every level, the public included, could read them. They get
their own table, protected like ``cooperators``: city staff read and write every row, coordinators
read every row, district members read their own district's rows, the public has no privilege at
all; ``FORCE ROW LEVEL SECURITY`` binds the owner too; rows carry ``version``/``updated_at``/
``updated_by`` like every personal table. Rows already in ``extra_layers`` move over (in order,
with their catalogue entry), and a check constraint keeps personal layer names out of
``extra_layers`` from now on.

Idempotent: every step checks or replaces what it creates, so a half-applied schema (or a
re-run by hand) converges. The downgrade moves the rows back to ``extra_layers`` and drops the
table (the row versions are lost).

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "karte"
TABLE = "supporter_decisions"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
OWN_DISTRICT = "district_code = current_setting('karte.district', true)"
#: The modelled columns and their catalogue kind (karte.outreach.DECISION_COLUMNS).
COLUMNS = (("decision_id", "text"), ("person_id", "text"), ("cooperator_id", "text"),
           ("district_code", "text"), ("decision", "text"), ("distance_m", "float"),
           ("decided_by", "text"), ("decided_at", "text"))
_SA = {"text": sa.Text, "float": sa.Float}
_PG = {"text": "text", "float": "double precision"}
NOT_PERSONAL = "ck_extra_layers_not_personal"
PERSONAL_NAMES = "('register', 'cooperators', 'supporter_decisions')"


def _table() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE, schema=S):
        return
    op.create_table(
        TABLE,
        *[sa.Column(name, _SA[kind]()) for name, kind in COLUMNS],
        sa.Column("version", sa.BigInteger, nullable=False,
                  server_default=sa.text(f"nextval('{S}.row_version'::regclass)")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_by", sa.Text),
        sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("extra", JSONB),
        schema=S)


def _indexes_and_trigger() -> None:
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_district_code ON {S}.{TABLE} (district_code)")
    op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{TABLE}_decision_id ON {S}.{TABLE} (decision_id)")
    op.execute(f"CREATE OR REPLACE TRIGGER {TABLE}_version BEFORE UPDATE ON {S}.{TABLE} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.bump_version()")


def _grants() -> None:
    # least privilege: only city staff write (the web app writes as the store's own user); the
    # public gets no privilege at all, as on the register
    op.execute(f"REVOKE ALL ON {S}.{TABLE} FROM PUBLIC, {PUBLIC}, {COORDINATOR}, {MEMBER}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {S}.{TABLE} TO {STAFF}")
    op.execute(f"GRANT SELECT ON {S}.{TABLE} TO {COORDINATOR}, {MEMBER}")


def _row_level_security() -> None:
    op.execute(f"ALTER TABLE {S}.{TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{TABLE} FORCE ROW LEVEL SECURITY")
    policies = {
        "city_staff_all": f"TO {STAFF} USING (true) WITH CHECK (true)",
        "coordinator_read": f"FOR SELECT TO {COORDINATOR} USING (true)",
        "district_member_read": f"FOR SELECT TO {MEMBER} USING ({OWN_DISTRICT})",
    }
    for name, rule in policies.items():
        op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{TABLE}")
        op.execute(f"CREATE POLICY {name} ON {S}.{TABLE} {rule}")


def _move_rows_in() -> None:
    """Rows and catalogue entry of the layer from ``extra_layers`` to the new table."""
    bind = op.get_bind()
    entry = bind.execute(sa.text(f"SELECT columns, geometry FROM {S}.layer_catalog WHERE layer = :l"),
                         {"l": TABLE}).fetchone()
    if entry is None:
        return
    columns, geometry = entry
    if geometry:
        raise RuntimeError(f"{TABLE} has a geometry column ({geometry}); it is an attribute table")
    if any(c.get("where") != "attrs" for c in columns):
        return  # already moved
    kinds = dict(COLUMNS)
    direct = [c["name"] for c in columns if kinds.get(c["name"]) == c["kind"]]
    values = [f"(attrs ->> '{name}')::{_PG[kinds[name]]}" for name in direct]
    keys = "ARRAY[" + ", ".join(f"'{name}'" for name in direct) + "]::text[]"
    op.execute(
        f"INSERT INTO {S}.{TABLE} ({', '.join([*direct, 'extra', 'updated_by'])}) "
        f"SELECT {', '.join([*values, ''])}"
        f"nullif(coalesce(attrs, '{{}}'::jsonb) - {keys}, '{{}}'::jsonb), session_user "
        f"FROM {S}.extra_layers WHERE layer = '{TABLE}' ORDER BY fid")
    op.execute(f"DELETE FROM {S}.extra_layers WHERE layer = '{TABLE}'")
    moved = [{**c, "where": "column" if c["name"] in direct else "extra"} for c in columns]
    bind.execute(sa.text(f"UPDATE {S}.layer_catalog SET columns = CAST(:c AS jsonb) WHERE layer = :l"),
                 {"c": json.dumps(moved, ensure_ascii=False), "l": TABLE})


def _keep_personal_out_of_extra_layers() -> None:
    op.execute(f"ALTER TABLE {S}.extra_layers DROP CONSTRAINT IF EXISTS {NOT_PERSONAL}")
    op.execute(f"ALTER TABLE {S}.extra_layers ADD CONSTRAINT {NOT_PERSONAL} "
               f"CHECK (layer NOT IN {PERSONAL_NAMES})")


def upgrade() -> None:
    _table()
    _indexes_and_trigger()
    _grants()
    _row_level_security()
    _move_rows_in()
    _keep_personal_out_of_extra_layers()


def downgrade() -> None:
    op.execute(f"ALTER TABLE {S}.extra_layers DROP CONSTRAINT IF EXISTS {NOT_PERSONAL}")
    bind = op.get_bind()
    if not sa.inspect(bind).has_table(TABLE, schema=S):
        return
    entry = bind.execute(sa.text(f"SELECT columns FROM {S}.layer_catalog WHERE layer = :l"),
                         {"l": TABLE}).fetchone()
    if entry is not None:
        direct = [c["name"] for c in entry[0] if c.get("where") == "column"]
        pairs = ", ".join(f"'{name}', {name}" for name in direct) or ""
        op.execute(
            f"INSERT INTO {S}.extra_layers (layer, attrs) "
            f"SELECT '{TABLE}', nullif(jsonb_strip_nulls(jsonb_build_object({pairs})) "
            f"|| coalesce(extra, '{{}}'::jsonb), '{{}}'::jsonb) FROM {S}.{TABLE} ORDER BY fid")
        back = [{**c, "where": "attrs"} for c in entry[0]]
        bind.execute(sa.text(f"UPDATE {S}.layer_catalog SET columns = CAST(:c AS jsonb) WHERE layer = :l"),
                     {"c": json.dumps(back, ensure_ascii=False), "l": TABLE})
    op.execute(f"DROP TABLE {S}.{TABLE}")
