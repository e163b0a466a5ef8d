"""The tables of households of concern and safety-net meetings (issue 13).

Revision ID: 0006
Revises: 0005
Create Date: 2027-02-01

Five personal record layers (``karte.domain.care``): ``care_concerns`` (気づき: the households of
concern, the cases; a point each), ``care_referrals`` (つなぐ), ``care_meetings`` (共有: the
地域セーフティネット会議), ``care_decisions`` (what a meeting decided per household) and
``care_actions`` (支援). Each table follows 0003 and 0004 exactly:

* the registry's columns (integers ``bigint``), ``municipality_code`` defaulting to the acting
  user's municipality, the row version (``version`` from ``row_version``, ``updated_at``,
  ``updated_by``; a new version on every update by the ``bump_version`` trigger), ``fid`` and
  ``extra``; a point ``geom`` (EPSG:6678, GiST index) on ``care_concerns``;
* a unique index on (``municipality_code``, key), indexes on ``municipality_code`` and
  ``district_code``;
* the id sequence owned by the key (``<table>_<key>_seq``: ``append_rows`` formats
  ``LayerSpec.new_id(nextval)``) and the statement trigger that moves it past every id inserted
  with the layer's prefix; the first append enters the layer in the catalogue through
  ``karte.open_record_layer`` (0004);
* ``FORCE ROW LEVEL SECURITY`` and a policy for every level: city staff and coordinators every row
  of their municipality, district members the rows of their own district of their municipality
  (read and write), the pipeline (the store's trusted user) every row; coordinators and district
  members insert only as themselves (``updated_by`` is the transaction's user). Every policy but
  the pipeline's requires ``municipality_code = nullif(current_setting('karte.municipality', true),
  '')``. The public and the prefecture level get no privilege at all;
* district members may now take row versions (``USAGE`` on ``row_version``), as coordinators could
  since 0001: they write these rows;
* a check constraint keeps the five names out of ``extra_layers`` (which has no row-level security).

Not snapshot layers: writing them does not change the build stamp.

Idempotent: every step checks or replaces what it creates. The downgrade drops the tables (their
rows are lost: export them first with ``karte export``), their sequences, policies and the
constraint; it leaves district members' ``USAGE`` on ``row_version`` (harmless, a counter, and a
later topic may rely on it).

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
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
NOT_CARE = "ck_extra_layers_not_care"

T, INT = "text", "integer"
ROLES = ("neighbourhood_staff", "welfare_commissioner", "neighbourhood_association", "council", "csw",
         "community_support_centre", "city", "other")
#: table -> (key, id prefix, geometry, [(column, kind)] after key, municipality and district),
#: as karte.domain.care.LAYERS declares them at this revision.
TABLES = {
    "care_concerns": ("concern_id", "CN", "POINT", [
        ("household", T), ("address", T), ("location_precision", T), ("key_code", T), ("person_id", T),
        ("kinds", T), ("urgency", T), ("summary", T), ("noticed_on", T), ("noticed_by_role", T),
        ("noticed_by_name", T), ("noticed_by_cooperator_id", T), ("responsible_role", T),
        ("responsible_name", T), ("next_review", T), ("status", T), ("closed_on", T), ("close_reason", T),
        ("close_note", T), ("recorded_by", T), ("recorded_at", T)]),
    "care_referrals": ("referral_id", "RF", None, [
        ("concern_id", T), ("referred_on", T), ("from_role", T), ("from_name", T), ("to_kind", T),
        ("to_name", T), ("status", T), ("accepted_on", T), ("closed_on", T), ("note", T),
        ("recorded_by", T), ("recorded_at", T)]),
    "care_meetings": ("meeting_id", "MT", None, [
        ("held_on", T), ("place", T), ("participants", INT), *((f"attendees_{r}", INT) for r in ROLES),
        ("attendee_names", T), ("households", INT), ("summary", T), ("recorded_by", T),
        ("recorded_at", T)]),
    "care_decisions": ("decision_id", "MD", None, [
        ("meeting_id", T), ("concern_id", T), ("kind", T), ("who_role", T), ("who_name", T),
        ("cooperator_id", T), ("frequency", T), ("detail", T), ("person_id", T), ("evacuation", T),
        ("replaces_id", T), ("register_status", T), ("next_review", T), ("decided_by", T),
        ("decided_at", T)]),
    "care_actions": ("action_id", "AC", None, [
        ("concern_id", T), ("acted_on", T), ("kind", T), ("actor_role", T), ("actor_name", T),
        ("note", T), ("next_review", T), ("recorded_by", T), ("recorded_at", T)]),
}
_SA = {T: sa.Text, INT: sa.BigInteger}

#: policy -> (clause before USING, USING, WITH CHECK)
POLICIES = {
    "city_staff_all": (f"TO {STAFF}", OWN_MUNICIPALITY, OWN_MUNICIPALITY),
    "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", OWN_MUNICIPALITY, None),
    "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, f"{AS_THEMSELVES} AND {OWN_MUNICIPALITY}"),
    "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", OWN_MUNICIPALITY, OWN_MUNICIPALITY),
    "coordinator_delete": (f"FOR DELETE TO {COORDINATOR}", OWN_MUNICIPALITY, None),
    "district_member_read": (f"FOR SELECT TO {MEMBER}", f"{OWN_DISTRICT} AND {OWN_MUNICIPALITY}", None),
    "district_member_insert": (f"FOR INSERT TO {MEMBER}", None,
                               f"{AS_THEMSELVES} AND {OWN_DISTRICT} AND {OWN_MUNICIPALITY}"),
    "district_member_edit": (f"FOR UPDATE TO {MEMBER}", f"{OWN_DISTRICT} AND {OWN_MUNICIPALITY}",
                             f"{OWN_DISTRICT} AND {OWN_MUNICIPALITY}"),
    "district_member_delete": (f"FOR DELETE TO {MEMBER}", f"{OWN_DISTRICT} AND {OWN_MUNICIPALITY}", None),
    "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
}


def _table(name: str) -> None:
    key, _, geometry, columns = TABLES[name]
    if sa.inspect(op.get_bind()).has_table(name, schema=S):
        return
    cols = [sa.Column(key, sa.Text),
            sa.Column(COLUMN, sa.Text, server_default=sa.text(DEFAULT)),
            sa.Column("district_code", sa.Text),
            *(sa.Column(c, _SA[kind]()) for c, kind in columns)]
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
    key, prefix, geometry, _ = TABLES[name]
    op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{name}_{COLUMN}_{key} ON {S}.{name} ({COLUMN}, {key})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_{COLUMN} ON {S}.{name} ({COLUMN})")
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
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.{seq} TO {STAFF}, {COORDINATOR}, {MEMBER}")


def _grants(name: str) -> None:
    # least privilege: the three levels that see rows read and write them (their policies narrow
    # it); the public and the prefecture level get nothing, as on the register
    op.execute(f"REVOKE ALL ON {S}.{name} FROM PUBLIC, {PUBLIC}, {PREFECTURE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {S}.{name} TO {STAFF}, {COORDINATOR}, {MEMBER}")


def _row_level_security(name: str) -> None:
    op.execute(f"ALTER TABLE {S}.{name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{name} FORCE ROW LEVEL SECURITY")
    for policy, (head, using, check) in POLICIES.items():
        op.execute(f"DROP POLICY IF EXISTS {policy} ON {S}.{name}")
        op.execute(f"CREATE POLICY {policy} ON {S}.{name} {head}"
                   + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


def _keep_out_of_extra_layers() -> None:
    names = ", ".join(f"'{n}'" for n in TABLES)
    op.execute(f"ALTER TABLE {S}.extra_layers DROP CONSTRAINT IF EXISTS {NOT_CARE}")
    op.execute(f"ALTER TABLE {S}.extra_layers ADD CONSTRAINT {NOT_CARE} CHECK (layer NOT IN ({names}))")


def upgrade() -> None:
    for name in TABLES:
        _table(name)
        _indexes_and_triggers(name)
        _grants(name)
        _row_level_security(name)
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.row_version TO {MEMBER}")
    _keep_out_of_extra_layers()


def downgrade() -> None:
    op.execute(f"ALTER TABLE {S}.extra_layers DROP CONSTRAINT IF EXISTS {NOT_CARE}")
    for name, (key, _, _, _) in TABLES.items():
        op.execute(f"DELETE FROM {S}.layer_catalog WHERE layer = '{name}'")
        op.execute(f"DROP TABLE IF EXISTS {S}.{name}")  # its sequence, triggers and policies with it
        op.execute(f"DROP SEQUENCE IF EXISTS {S}.{name}_{key}_seq")
