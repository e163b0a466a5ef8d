"""The hand-out ledger of register copies: ``copies`` and ``copy_events``, append-only.

Revision ID: 0009
Revises: 0008
Create Date: 2027-02-01

Every confidential or drill sheet, personal CSV and sealed shelter list karte makes is a numbered
copy (災害対策基本法 第49条の12・第49条の13: whoever hands the register out must know where each
copy is, and get it back or have it destroyed). Two record layers, declared in
``karte.domain.copies``:

* ``copies``: one row per copy (what it lists and which version, who made it, for whom, why, on
  which legal basis, due back when);
* ``copy_events``: hand-over, return, destruction, opening of a sealed list, drill marks entered.

Both are **append-only**: no application role (``karte_city_staff``, ``karte_coordinator``,
``karte_district_member``, ``karte_public``, ``karte_prefecture``, ``karte_pipeline``) holds
``UPDATE``, ``DELETE`` or ``TRUNCATE`` on them, and a row trigger refuses ``UPDATE`` and ``DELETE``
to everyone, the owner included (as on ``audit_log``; a later migration that must rewrite rows
disables it for its own transaction). ``TRUNCATE`` stays the owner's (a test database is emptied
that way); it is no application role's.

Each table is laid out as the registry's record layers are (0003, 0004,
``karte.store.postgis_models._record_model``): the declared columns, ``municipality_code`` defaulting
to the user's, ``version``/``updated_at``/``updated_by``, ``fid``, ``extra``; unique
(``municipality_code``, key); indexes on the municipality and the district; the row-version
trigger; the id sequence (``K000001``, ``KE000001``) with its advancing trigger, through which
``append_rows`` numbers rows; ``FORCE ROW LEVEL SECURITY``.

Row-level security (every rule within the user's municipality, ``municipality_code =
nullif(current_setting('karte.municipality', true), '')``): city staff and coordinators read every
row; district members read their own district's rows; everyone of these inserts only as
themselves (``updated_by`` is the transaction's user) and a district member only in their own
district; a sealed shelter list (``kind = 'sealed'``: everyone, consented or not) is inserted by
city staff only. The public and the prefecture level have no privilege at all. The pipeline role
(the store's trusted user) reads and inserts in every municipality.

District members insert rows now, so they get ``USAGE`` on the ``row_version`` sequence (the
version default); the downgrade leaves that grant (another topic's table may need it too).

Idempotent: every step checks or replaces what it creates. The downgrade drops both tables, and
refuses (changing nothing) while they hold rows: the ledger is a legal record; export it
(``karte export``) and empty it as the owner first.

Frozen once released: later changes go in new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "karte"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
PREFECTURE, PIPELINE, COUNTS = "karte_prefecture", "karte_pipeline", "karte_counts"
WRITERS = f"{STAFF}, {COORDINATOR}, {MEMBER}"
COLUMN = "municipality_code"

T, INT = "text", "integer"
#: table -> (key, id prefix, [(column, kind)]): karte.domain.copies.COPY_COLUMNS / EVENT_COLUMNS
#: as released with this revision (municipality_code is every layer table's own column).
TABLES = {
    "copies": ("copy_id", "K", [
        ("copy_id", T), ("district_code", T), ("kind", T), ("shelter_id", T), ("layers", T),
        ("scope", T), ("persons", INT), ("rows", INT), ("person_ids", T), ("register_version", T),
        ("holder_kind", T), ("holder_name", T), ("holder_ref", T), ("purpose", T), ("basis", T),
        ("due_back", T), ("made_by", T), ("made_at", T), ("made_via", T), ("file", T), ("paper", T),
        ("note", T)]),
    "copy_events": ("event_id", "KE", [
        ("event_id", T), ("copy_id", T), ("district_code", T), ("event", T), ("at", T),
        ("recorded_by", T), ("person", T), ("holder_kind", T), ("due_back", T), ("note", T),
        ("via", T)]),
}
_SA = {T: sa.Text, INT: sa.BigInteger}  # record layers' integers are bigint (postgis_models)

OWN_MUNICIPALITY = f"{COLUMN} = nullif(current_setting('karte.municipality', true), '')"
OWN_DISTRICT = "district_code = current_setting('karte.district', true)"
AS_THEMSELVES = "updated_by = current_setting('karte.user', true)"
NOT_SEALED = "kind IS DISTINCT FROM 'sealed'"
APPEND_ONLY = "copies_append_only"


def _policies(table: str) -> dict[str, tuple[str, str | None, str | None]]:
    """name -> (clause before USING, USING, WITH CHECK) of one ledger table."""
    sealed = f" AND {NOT_SEALED}" if table == "copies" else ""
    return {
        "city_staff_read": (f"FOR SELECT TO {STAFF}", OWN_MUNICIPALITY, None),
        "city_staff_insert": (f"FOR INSERT TO {STAFF}", None, f"{OWN_MUNICIPALITY} AND {AS_THEMSELVES}"),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", OWN_MUNICIPALITY, None),
        "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None,
                               f"{OWN_MUNICIPALITY} AND {AS_THEMSELVES}{sealed}"),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", f"{OWN_DISTRICT} AND {OWN_MUNICIPALITY}", None),
        "district_member_insert": (f"FOR INSERT TO {MEMBER}", None,
                                   f"{OWN_DISTRICT} AND {OWN_MUNICIPALITY} AND {AS_THEMSELVES}{sealed}"),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    }


def _table(table: str, columns: list[tuple[str, str]]) -> None:
    if sa.inspect(op.get_bind()).has_table(table, schema=S):
        return
    op.create_table(
        table,
        *[sa.Column(name, _SA[kind]()) for name, kind in columns],
        sa.Column("version", sa.BigInteger, nullable=False,
                  server_default=sa.text(f"nextval('{S}.row_version'::regclass)")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_by", sa.Text),
        sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("extra", JSONB),
        sa.Column(COLUMN, sa.Text, server_default=sa.text("nullif(current_setting('karte.municipality', "
                                                          "true), '')")),
        schema=S)


def _indexes(table: str, key: str) -> None:
    op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{table}_{COLUMN}_{key} "
               f"ON {S}.{table} ({COLUMN}, {key})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_{COLUMN} ON {S}.{table} ({COLUMN})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_district_code ON {S}.{table} (district_code)")


def _append_only_function() -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.{APPEND_ONLY}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'karte.%: the hand-out ledger is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.{APPEND_ONLY}() FROM PUBLIC")


def _triggers(table: str, key: str, prefix: str) -> None:
    op.execute(f"CREATE OR REPLACE TRIGGER {table}_version BEFORE UPDATE ON {S}.{table} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.bump_version()")
    op.execute(f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {S}.{table} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.{APPEND_ONLY}()")
    seq = f"{table}_{key}_seq"
    op.execute(f"CREATE SEQUENCE IF NOT EXISTS {S}.{seq} OWNED BY {S}.{table}.{key}")
    op.execute(f"CREATE OR REPLACE TRIGGER {table}_ids AFTER INSERT ON {S}.{table} "
               "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
               f"EXECUTE FUNCTION {S}.advance_record_id('{key}', '{prefix}')")
    op.execute(f"REVOKE ALL ON SEQUENCE {S}.{seq} FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.{seq} TO {WRITERS}")


def _grants(table: str) -> None:
    op.execute(f"REVOKE ALL ON {S}.{table} FROM PUBLIC, {PUBLIC}, {PREFECTURE}, {COUNTS}, {WRITERS}")
    op.execute(f"GRANT SELECT, INSERT ON {S}.{table} TO {WRITERS}")


def _row_level_security(table: str) -> None:
    op.execute(f"ALTER TABLE {S}.{table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{table} FORCE ROW LEVEL SECURITY")
    for name, (head, using, check) in _policies(table).items():
        op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{table}")
        op.execute(f"CREATE POLICY {name} ON {S}.{table} {head}"
                   + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


def upgrade() -> None:
    _append_only_function()
    for table, (key, prefix, columns) in TABLES.items():
        _table(table, columns)
        _indexes(table, key)
        _triggers(table, key, prefix)
        _grants(table)
        _row_level_security(table)
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.row_version TO {MEMBER}")


def downgrade() -> None:
    bind = op.get_bind()
    held = {table: bind.execute(sa.text(f"SELECT count(*) FROM {S}.{table}")).scalar()
            for table in TABLES if sa.inspect(bind).has_table(table, schema=S)}
    if any(held.values()):
        rows = ", ".join(f"{table}: {n}" for table, n in held.items())
        raise RuntimeError(f"the hand-out ledger holds rows ({rows}); it is a legal record: export it "
                           "(karte export) and empty it as the owner before downgrading below 0009")
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {S}.{table}")  # its sequence, triggers and policies go with it
    op.execute(f"DELETE FROM {S}.layer_catalog WHERE layer IN ('copies', 'copy_events')")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.{APPEND_ONLY}()")
