"""Row writes by the acting user: the access log's action, the snapshot stamp, record ids, and
coordinators writing outreach decisions as themselves.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

* ``audit_log.action`` (read, export, write, append, update, delete; ``read`` for the rows logged
  before, which were all reads and exports).
* ``snapshot_stamp``: one row whose ``stamp`` is the id of the last transaction that wrote a
  layer the build snapshot reads (``karte.domain.layers.SNAPSHOT_LAYERS``). A ``BEFORE`` statement
  trigger on each of those tables sets it, whoever writes (the store, an import, raw SQL), in the
  writing transaction: readers see the new stamp exactly when they can see the new rows, and a
  rolled-back write leaves it alone. The trigger runs before the statement locks any row, so a
  layer replacement and a row edit queue on the stamp row instead of deadlocking. The trigger
  function is ``SECURITY DEFINER`` (owned by the schema owner): application roles only read the
  stamp, every level including the public.
* Record layers (``karte.domain.layers.LayerSpec.records``; today ``supporter_decisions``) get an
  id sequence owned by their key column (``<table>_<key>_seq``: the application formats
  ``LayerSpec.new_id(nextval)``), a statement trigger that moves the sequence past every id
  inserted with the layer's prefix (a whole-layer write, a restore, raw SQL), and
  ``karte.open_record_layer(layer, key)``, through which the first append by any writer enters the
  layer in the catalogue with the table's own columns (application roles may not write the
  catalogue themselves).
* ``supporter_decisions`` is written by the people who decide: coordinators insert (any district,
  and only as themselves: ``updated_by`` is the transaction's user), update and delete, as city
  staff do; district members read their own district, the public nothing (as before).

Idempotent: every step checks or replaces what it creates. The downgrade removes all of it (the
log's actions are lost; decisions go back to being written by city staff only).

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "karte"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
EVERYONE = f"{STAFF}, {COORDINATOR}, {MEMBER}, {PUBLIC}"
#: karte.store.base.AUDIT_ACTIONS
ACTIONS = ("read", "export", "write", "append", "update", "delete")
#: karte.domain.layers.SNAPSHOT_LAYERS
SNAPSHOT = ("small_areas", "districts", "register", "cooperators", "services", "shelters",
            "emergency_sites", "kartes", "meta")
#: Record layers: table -> (key column, id prefix), as karte.domain.layers.LAYERS declares them.
RECORDS = {"supporter_decisions": ("decision_id", "D")}
DECISIONS = "supporter_decisions"
STAMP = "snapshot_stamp"
ACTION_CHECK = "ck_audit_log_action"
#: Columns of a record table that are not the layer's own (catalogue) columns.
NOT_LAYER_COLUMNS = "('fid', 'extra', 'geom', 'version', 'updated_at', 'updated_by')"


def _audit_action() -> None:
    op.execute(f"ALTER TABLE {S}.audit_log ADD COLUMN IF NOT EXISTS action text NOT NULL DEFAULT 'read'")
    op.execute(f"ALTER TABLE {S}.audit_log DROP CONSTRAINT IF EXISTS {ACTION_CHECK}")
    allowed = ", ".join(f"'{a}'" for a in ACTIONS)
    op.execute(f"ALTER TABLE {S}.audit_log ADD CONSTRAINT {ACTION_CHECK} CHECK (action IN ({allowed}))")


def _stamp() -> None:
    if not sa.inspect(op.get_bind()).has_table(STAMP, schema=S):
        op.create_table(
            STAMP,
            sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.text("true")),
            sa.Column("stamp", sa.BigInteger, nullable=False),
            sa.CheckConstraint("id", name=f"ck_{STAMP}_one_row"),
            schema=S)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.touch_snapshot_stamp() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            INSERT INTO {S}.{STAMP} (id, stamp) VALUES (true, pg_current_xact_id()::text::bigint)
            ON CONFLICT (id) DO UPDATE SET stamp = EXCLUDED.stamp
                WHERE {STAMP}.stamp <> EXCLUDED.stamp;
            RETURN NULL;
        END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.touch_snapshot_stamp() FROM PUBLIC")
    for table in SNAPSHOT:
        op.execute(f"CREATE OR REPLACE TRIGGER {STAMP} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON {S}.{table} FOR EACH STATEMENT EXECUTE FUNCTION {S}.touch_snapshot_stamp()")
    op.execute(f"REVOKE ALL ON {S}.{STAMP} FROM PUBLIC")
    op.execute(f"GRANT SELECT ON {S}.{STAMP} TO {EVERYONE}")
    # a store that already holds snapshot layers gets a stamp now (an empty one stays without)
    names = ", ".join(f"'{t}'" for t in SNAPSHOT)
    op.execute(f"INSERT INTO {S}.{STAMP} (id, stamp) SELECT true, pg_current_xact_id()::text::bigint "
               f"WHERE EXISTS (SELECT 1 FROM {S}.layer_catalog WHERE layer IN ({names})) "
               "ON CONFLICT (id) DO NOTHING")


def _record_ids() -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.advance_record_id() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            key text := TG_ARGV[0];
            prefix text := TG_ARGV[1];
            seq regclass := pg_get_serial_sequence(format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME),
                                                   TG_ARGV[0])::regclass;
            top bigint;
        BEGIN
            EXECUTE format('SELECT max(substr(%1$I, %2$s)::bigint) FROM added '
                           'WHERE left(%1$I, %3$s) = %4$L AND substr(%1$I, %2$s) ~ ''^[0-9]{{1,18}}$''',
                           key, length(prefix) + 1, length(prefix), prefix) INTO top;
            IF top > coalesce(pg_sequence_last_value(seq), 0) THEN
                PERFORM pg_advisory_xact_lock(seq::oid::bigint);  -- two advancing writers
                IF top > coalesce(pg_sequence_last_value(seq), 0) THEN
                    PERFORM setval(seq, top);
                END IF;
            END IF;
            RETURN NULL;
        END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.advance_record_id() FROM PUBLIC")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.open_record_layer(name text, key text) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            t regclass := to_regclass(format('{S}.%I', name));
        BEGIN
            IF t IS NULL OR pg_get_serial_sequence(t::text, key) IS NULL THEN
                RAISE EXCEPTION '{S}.%: not a record layer', name USING ERRCODE = 'undefined_table';
            END IF;
            INSERT INTO {S}.layer_catalog (layer, columns, geometry)
            SELECT name,
                   coalesce(jsonb_agg(jsonb_build_object(
                       'name', a.attname,
                       'kind', CASE format_type(a.atttypid, NULL)
                                   WHEN 'double precision' THEN 'float' WHEN 'real' THEN 'float'
                                   WHEN 'integer' THEN 'integer' WHEN 'bigint' THEN 'integer'
                                   WHEN 'smallint' THEN 'integer' WHEN 'boolean' THEN 'boolean'
                                   ELSE 'text' END,
                       'where', 'column') ORDER BY a.attnum)
                       FILTER (WHERE a.attname NOT IN {NOT_LAYER_COLUMNS}), '[]'::jsonb),
                   CASE WHEN bool_or(a.attname = 'geom') THEN 'geometry' END
            FROM pg_attribute a WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped
            ON CONFLICT (layer) DO NOTHING;
        END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.open_record_layer(text, text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.open_record_layer(text, text) TO {STAFF}, {COORDINATOR}, "
               f"{MEMBER}")
    for table, (key, prefix) in RECORDS.items():
        seq = f"{table}_{key}_seq"
        op.execute(f"CREATE SEQUENCE IF NOT EXISTS {S}.{seq} OWNED BY {S}.{table}.{key}")
        op.execute(f"CREATE OR REPLACE TRIGGER {table}_ids AFTER INSERT ON {S}.{table} "
                   "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION {S}.advance_record_id('{key}', '{prefix}')")
        # ids already in the table: appends continue past them
        digits = f"substr({key}, {len(prefix) + 1})"
        op.execute(f"SELECT setval('{S}.{seq}', top) FROM (SELECT max({digits}::bigint) AS top "
                   f"FROM {S}.{table} WHERE left({key}, {len(prefix)}) = '{prefix}' "
                   f"AND {digits} ~ '^[0-9]{{1,18}}$') ids "
                   f"WHERE top > coalesce(pg_sequence_last_value('{S}.{seq}'), 0)")
        op.execute(f"REVOKE ALL ON SEQUENCE {S}.{seq} FROM PUBLIC")
        op.execute(f"GRANT USAGE ON SEQUENCE {S}.{seq} TO {STAFF}, {COORDINATOR}")


def _decision_writers() -> None:
    op.execute(f"GRANT INSERT, UPDATE, DELETE ON {S}.{DECISIONS} TO {COORDINATOR}")
    policies = {
        "coordinator_insert": f"FOR INSERT TO {COORDINATOR} "
                              "WITH CHECK (updated_by = current_setting('karte.user', true))",
        "coordinator_edit": f"FOR UPDATE TO {COORDINATOR} USING (true) WITH CHECK (true)",
        "coordinator_delete": f"FOR DELETE TO {COORDINATOR} USING (true)",
    }
    for name, rule in policies.items():
        op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{DECISIONS}")
        op.execute(f"CREATE POLICY {name} ON {S}.{DECISIONS} {rule}")


def upgrade() -> None:
    _audit_action()
    _stamp()
    _record_ids()
    _decision_writers()


def downgrade() -> None:
    for name in ("coordinator_insert", "coordinator_edit", "coordinator_delete"):
        op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{DECISIONS}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON {S}.{DECISIONS} FROM {COORDINATOR}")
    for table, (key, _) in RECORDS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_ids ON {S}.{table}")
        op.execute(f"DROP SEQUENCE IF EXISTS {S}.{table}_{key}_seq")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.open_record_layer(text, text)")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.advance_record_id()")
    for table in SNAPSHOT:
        op.execute(f"DROP TRIGGER IF EXISTS {STAMP} ON {S}.{table}")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.touch_snapshot_stamp()")
    op.execute(f"DROP TABLE IF EXISTS {S}.{STAMP}")
    op.execute(f"ALTER TABLE {S}.audit_log DROP CONSTRAINT IF EXISTS {ACTION_CHECK}")
    op.execute(f"ALTER TABLE {S}.audit_log DROP COLUMN IF EXISTS action")
