"""The tables of 地域福祉サポーター, help requests, dispatches, activities, snowfalls and the points
ledger (issue 14).

Revision ID: 0007
Revises: 0006
Create Date: 2027-02-01

Six personal record layers (``karte.domain.supporters.LAYERS``): ``supporters`` (the register of
supporters, a home point each), ``help_requests`` (help wanted, a place each), ``supporter_dispatches``
(派遣), ``supporter_activities`` (活動記録), ``point_ledger`` (the volunteer points) and ``snowfalls``
(降雪の記録, no district). Each table follows 0003 and 0004 exactly:

* the registry's columns (integers ``bigint``), ``municipality_code`` defaulting to the acting
  user's municipality, the row version (``version`` from ``row_version``, ``updated_at``,
  ``updated_by``; a new version on every update by the ``bump_version`` trigger), ``fid`` and
  ``extra``; a point ``geom`` (EPSG:6678, GiST index) on ``supporters`` and ``help_requests``;
* a unique index on (``municipality_code``, key), indexes on ``municipality_code`` and (where
  there is one) ``district_code``;
* the id sequence owned by the key (``<table>_<key>_seq``: ``append_rows`` formats
  ``LayerSpec.new_id(nextval)``) and the statement trigger that moves it past every id inserted
  with the layer's prefix; the first append enters the layer in the catalogue through
  ``karte.open_record_layer`` (0004);
* ``FORCE ROW LEVEL SECURITY`` and a policy for every level: city staff and coordinators every row
  of their municipality (coordinators insert only as themselves: ``updated_by`` is the
  transaction's user), district members read the rows of their own district of their
  municipality (all of ``snowfalls``, which has no district), the pipeline (the store's trusted
  user) every row. Every policy but the pipeline's requires ``municipality_code =
  nullif(current_setting('karte.municipality', true), '')``. The public and the prefecture level
  get no privilege at all (they see counts per district, computed by the services);
* grants: city staff ``SELECT, INSERT, UPDATE, DELETE``, coordinators ``SELECT, INSERT, UPDATE``
  (a supporter leaves by the status 退会, a request by 取下げ: rows are not deleted), district
  members ``SELECT``.

**The points ledger is append-only.** ``point_ledger`` has no ``UPDATE`` or ``DELETE`` grant and no
policy for them for any access level (city staff and coordinators ``SELECT, INSERT``, district
members ``SELECT``), and a row trigger (``point_ledger_append_only``, as on the access log) refuses
``UPDATE`` and ``DELETE`` of any row to everyone, the table's owner included: a correction is a
new, reversing entry. The pipeline role has ``DELETE`` only so that a whole-layer write (a restore
into a new database, a demo build) can replace a ledger that is still empty; a ledger with
entries cannot be replaced, only appended to. ``TRUNCATE`` is granted to nobody (the owner, a
database administrator, keeps it). Check constraints keep each entry's kind and the sign of its
points consistent (付与 positive, 交換 negative, 訂正 not zero and naming the entry it reverses).

Not snapshot layers: writing them does not change the build stamp (recording an activity must not
recompute the city's analyses).

A check constraint keeps the six names out of ``extra_layers`` (which has no row-level security).

Idempotent: every step checks or replaces what it creates. The downgrade drops the tables (their
rows are lost: export them first with ``karte export``), their sequences, policies, the trigger
function and the constraint.

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "karte"
SRID = 6678
COLUMN = "municipality_code"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
PREFECTURE, PIPELINE = "karte_prefecture", "karte_pipeline"
OWN_MUNICIPALITY = f"{COLUMN} = nullif(current_setting('karte.municipality', true), '')"
OWN_DISTRICT = "district_code = current_setting('karte.district', true)"
AS_THEMSELVES = "updated_by = current_setting('karte.user', true)"
DEFAULT = "nullif(current_setting('karte.municipality', true), '')"
NOT_SUPPORTERS = "ck_extra_layers_not_supporters"
LEDGER = "point_ledger"

T, INT, F, B = "text", "integer", "float", "boolean"
#: table -> (key, id prefix, geometry, has a district, [(column, kind)] after key, municipality and
#: district), as karte.domain.supporters.LAYERS declares them at this revision.
TABLES = {
    "supporters": ("supporter_id", "SP", "POINT", True, [
        ("cooperator_id", T), ("name", T), ("kana", T), ("phone", T), ("address", T), ("menu_kinds", T),
        ("activities", T), ("weekdays", T), ("hours", T), ("season", T), ("reach_m", F), ("capacity", INT),
        ("status", T), ("applied_on", T), ("registered_on", T), ("status_since", T), ("training", T),
        ("notes", T)]),
    "help_requests": ("request_id", "RQ", "POINT", True, [
        ("person_id", T), ("requester_name", T), ("phone", T), ("address", T), ("activity", T),
        ("recurrence", T), ("weekdays", T), ("hours", T), ("starts_on", T), ("ends_on", T), ("status", T),
        ("received_on", T), ("closed_on", T), ("notes", T)]),
    "supporter_dispatches": ("dispatch_id", "DP", None, True, [
        ("request_id", T), ("supporter_id", T), ("activity", T), ("status", T), ("distance_m", F),
        ("reasons", T), ("decided_by", T), ("decided_at", T), ("ended_on", T), ("end_reason", T)]),
    "supporter_activities": ("activity_id", "SA", None, True, [
        ("dispatch_id", T), ("request_id", T), ("supporter_id", T), ("activity", T), ("done_on", T),
        ("hours", F), ("visits", INT), ("done", B), ("winter", B), ("note", T), ("recorded_by", T),
        ("recorded_at", T)]),
    LEDGER: ("entry_id", "PT", None, True, [
        ("supporter_id", T), ("entry_on", T), ("fiscal_year", INT), ("entry_kind", T), ("points", INT),
        ("activity_id", T), ("reverses", T), ("rule", T), ("note", T), ("recorded_by", T),
        ("recorded_at", T)]),
    "snowfalls": ("snowfall_id", "SF", None, False, [
        ("fell_on", T), ("depth_cm", F), ("note", T), ("recorded_by", T), ("recorded_at", T)]),
}
_SA = {T: sa.Text, INT: sa.BigInteger, F: sa.Float, B: sa.Boolean}

#: The ledger's entries: kind and the sign of the points (karte.domain.supporters.EntryKind).
LEDGER_CHECKS = {
    "ck_point_ledger_kind": "entry_kind IN ('earned', 'redeemed', 'reversal')",
    "ck_point_ledger_sign": "(entry_kind = 'earned' AND points > 0) "
                            "OR (entry_kind = 'redeemed' AND points < 0) "
                            "OR (entry_kind = 'reversal' AND points <> 0 AND reverses IS NOT NULL)",
}


def _policies(name: str) -> dict[str, tuple[str, str | None, str | None]]:
    """policy -> (clause before USING, USING, WITH CHECK) for table ``name``."""
    has_district = TABLES[name][3]
    member = f"{OWN_DISTRICT} AND {OWN_MUNICIPALITY}" if has_district else OWN_MUNICIPALITY
    insert = f"{AS_THEMSELVES} AND {OWN_MUNICIPALITY}"
    if name == LEDGER:  # append-only: read and insert, nothing else, for every level
        return {
            "city_staff_read": (f"FOR SELECT TO {STAFF}", OWN_MUNICIPALITY, None),
            "city_staff_insert": (f"FOR INSERT TO {STAFF}", None, insert),
            "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", OWN_MUNICIPALITY, None),
            "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, insert),
            "district_member_read": (f"FOR SELECT TO {MEMBER}", member, None),
            "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
        }
    return {
        "city_staff_all": (f"TO {STAFF}", OWN_MUNICIPALITY, OWN_MUNICIPALITY),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", OWN_MUNICIPALITY, None),
        "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, insert),
        "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", OWN_MUNICIPALITY, OWN_MUNICIPALITY),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", member, None),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    }


def _table(name: str) -> None:
    key, _, geometry, has_district, columns = TABLES[name]
    if sa.inspect(op.get_bind()).has_table(name, schema=S):
        return
    cols = [sa.Column(key, sa.Text), sa.Column(COLUMN, sa.Text, server_default=sa.text(DEFAULT))]
    if has_district:
        cols.append(sa.Column("district_code", sa.Text))
    cols += [sa.Column(c, _SA[kind]()) for c, kind in columns]
    if geometry:
        cols.append(sa.Column("geom", Geometry(geometry, srid=SRID, spatial_index=False)))
    cols += [
        sa.Column("version", sa.BigInteger, nullable=False,
                  server_default=sa.text(f"nextval('{S}.row_version'::regclass)")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_by", sa.Text),
        sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("extra", JSONB),
    ]
    op.create_table(name, *cols, schema=S)


def _indexes_and_triggers(name: str) -> None:
    key, prefix, geometry, has_district, _ = TABLES[name]
    op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{name}_{COLUMN}_{key} ON {S}.{name} ({COLUMN}, {key})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_{COLUMN} ON {S}.{name} ({COLUMN})")
    if has_district:
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_district_code ON {S}.{name} (district_code)")
    if geometry:
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_geom ON {S}.{name} USING gist (geom)")
    op.execute(f"CREATE OR REPLACE TRIGGER {name}_version BEFORE UPDATE ON {S}.{name} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.bump_version()")
    seq = f"{name}_{key}_seq"
    op.execute(f"CREATE SEQUENCE IF NOT EXISTS {S}.{seq} OWNED BY {S}.{name}.{key}")
    op.execute(f"CREATE OR REPLACE TRIGGER {name}_ids AFTER INSERT ON {S}.{name} "
               "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
               f"EXECUTE FUNCTION {S}.advance_record_id('{key}', '{prefix}')")
    digits = f"substr({key}, {len(prefix) + 1})"  # ids already in the table: appends continue past
    op.execute(f"SELECT setval('{S}.{seq}', top) FROM (SELECT max({digits}::bigint) AS top "
               f"FROM {S}.{name} WHERE left({key}, {len(prefix)}) = '{prefix}' "
               f"AND {digits} ~ '^[0-9]{{1,18}}$') ids "
               f"WHERE top > coalesce(pg_sequence_last_value('{S}.{seq}'), 0)")
    op.execute(f"REVOKE ALL ON SEQUENCE {S}.{seq} FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.{seq} TO {STAFF}, {COORDINATOR}")


def _grants(name: str) -> None:
    # least privilege: the public and the prefecture level get nothing, as on the register
    op.execute(f"REVOKE ALL ON {S}.{name} FROM PUBLIC, {PUBLIC}, {PREFECTURE}, {STAFF}, {COORDINATOR}, "
               f"{MEMBER}, {PIPELINE}")
    op.execute(f"GRANT SELECT ON {S}.{name} TO {MEMBER}")
    if name == LEDGER:
        op.execute(f"GRANT SELECT, INSERT ON {S}.{name} TO {STAFF}, {COORDINATOR}")
        # a whole-layer write may replace a ledger that is still empty (the trigger refuses rows)
        op.execute(f"GRANT DELETE ON {S}.{name} TO {PIPELINE}")
        return
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {S}.{name} TO {STAFF}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON {S}.{name} TO {COORDINATOR}")


def _row_level_security(name: str) -> None:
    op.execute(f"ALTER TABLE {S}.{name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{name} FORCE ROW LEVEL SECURITY")
    # policies of an earlier run that this one does not define (idempotent, convergent)
    wanted = _policies(name)
    existing = [r[0] for r in op.get_bind().execute(sa.text(
        "SELECT policyname FROM pg_policies WHERE schemaname = :s AND tablename = :t"), {"s": S, "t": name})]
    for policy in existing:
        if policy not in wanted:
            op.execute(f"DROP POLICY IF EXISTS {policy} ON {S}.{name}")
    for policy, (head, using, check) in wanted.items():
        op.execute(f"DROP POLICY IF EXISTS {policy} ON {S}.{name}")
        op.execute(f"CREATE POLICY {policy} ON {S}.{name} {head}"
                   + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


def _append_only_ledger() -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'karte.point_ledger is append-only: % refused '
                            '(a correction is a reversing entry)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.ledger_append_only() FROM PUBLIC")
    op.execute(f"CREATE OR REPLACE TRIGGER {LEDGER}_append_only BEFORE UPDATE OR DELETE ON {S}.{LEDGER} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.ledger_append_only()")
    for name, rule in LEDGER_CHECKS.items():
        op.execute(f"ALTER TABLE {S}.{LEDGER} DROP CONSTRAINT IF EXISTS {name}")
        op.execute(f"ALTER TABLE {S}.{LEDGER} ADD CONSTRAINT {name} CHECK ({rule}) NOT VALID")
        op.execute(f"ALTER TABLE {S}.{LEDGER} VALIDATE CONSTRAINT {name}")


def _keep_out_of_extra_layers() -> None:
    names = ", ".join(f"'{n}'" for n in TABLES)
    op.execute(f"ALTER TABLE {S}.extra_layers DROP CONSTRAINT IF EXISTS {NOT_SUPPORTERS}")
    op.execute(f"ALTER TABLE {S}.extra_layers ADD CONSTRAINT {NOT_SUPPORTERS} CHECK (layer NOT IN ({names}))")


def upgrade() -> None:
    for name in TABLES:
        _table(name)
        _indexes_and_triggers(name)
        _grants(name)
        _row_level_security(name)
    _append_only_ledger()
    _keep_out_of_extra_layers()


def downgrade() -> None:
    op.execute(f"ALTER TABLE {S}.extra_layers DROP CONSTRAINT IF EXISTS {NOT_SUPPORTERS}")
    for name, (key, *_rest) in TABLES.items():
        op.execute(f"DELETE FROM {S}.layer_catalog WHERE layer = '{name}'")
        op.execute(f"DROP TABLE IF EXISTS {S}.{name}")  # its sequence, triggers and policies with it
        op.execute(f"DROP SEQUENCE IF EXISTS {S}.{name}_{key}_seq")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.ledger_append_only()")
