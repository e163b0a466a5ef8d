"""The PostGIS store: layer tables, catalogue, access log, roles, row-level security.

Revision ID: 0001
Revises:
Create Date: 2026-05-01

Frozen: later changes go in new revisions. Roles are cluster-wide and created only when missing
(several karte databases may share one server); the downgrade leaves them in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "karte"
SRID = 6678
LEVELS = ("city_staff", "coordinator", "district_member", "public")
ROLES = tuple(f"karte_{level}" for level in LEVELS)
STAFF, COORDINATOR, MEMBER, PUBLIC = ROLES
SHAREABLE = "consent IN ('consented', 'ordinance')"  # karte.domain.schema.Consent.shareable
OWN_DISTRICT = "district_code = current_setting('karte.district', true)"

T, INT, B = "text", "integer", "boolean"
#: layer -> (geometry type or None, [(column, type)], personal key column or None)
LAYERS = {
    "small_areas": ("MULTIPOLYGON", [
        ("key_code", T), ("name", T), ("fullname", T), ("population", INT), ("households", INT),
        ("concealed", B), ("age_0_14", INT), ("age_15_64", INT), ("age_65_74", INT), ("age_75_plus", INT),
        ("elderly_alone", INT), ("disabled", INT), ("synthetic_age", B), ("district_code", T)], None),
    "districts": ("MULTIPOLYGON", [("district_code", T), ("district_name", T), ("small_areas", INT)], None),
    "district_map": (None, [("key_code", T), ("district_code", T), ("district_name", T)], None),
    "register": ("POINT", [
        ("person_id", T), ("name", T), ("kana", T), ("address", T), ("location_precision", T),
        ("birth_date", T), ("care_level", T), ("disability_kind", T), ("disability_grade", T),
        ("elderly_only_household", B), ("intractable_disease", B), ("infant", B),
        ("medical_devices", T), ("mobility", T), ("consent", T), ("consent_date", T),
        ("supporter_ids", T), ("plan_status", T), ("shelter_id", T), ("district_code", T),
        ("key_code", T)], "person_id"),
    "cooperators": ("POINT", [
        ("cooperator_id", T), ("role", T), ("name", T), ("phone", T), ("district_code", T),
        ("help_kinds", T), ("capacity", INT), ("location_precision", T)], "cooperator_id"),
    "services": ("POINT", [
        ("service_id", T), ("kind", T), ("name", T), ("operator", T), ("venue", T), ("frequency", T),
        ("schedule", T), ("contact", T), ("target", T), ("district_code", T),
        ("location_precision", T)], None),
    "shelters": ("POINT", [("shelter_id", T), ("name", T), ("address", T), ("welfare", B),
                           ("accepts", T), ("note", T)], None),
    "emergency_sites": ("POINT", [
        ("site_id", T), ("name", T), ("address", T), ("hazard_flood", B), ("hazard_landslide", B),
        ("hazard_storm_surge", B), ("hazard_earthquake", B), ("hazard_tsunami", B), ("hazard_fire", B),
        ("hazard_inland_flood", B), ("hazard_volcano", B), ("note", T)], None),
    "kartes": (None, [("district_code", T), ("karte_json", T)], None),
    "meta": (None, [("key", T), ("value", T)], None),
}
PERSONAL = [name for name, (_, _, key) in LAYERS.items() if key]
PUBLIC_TABLES = [name for name in LAYERS if name not in PERSONAL] + ["extra_layers", "layer_catalog"]
_TYPES = {T: sa.Text, INT: sa.Integer, B: sa.Boolean}


def _roles() -> None:
    for role in (*ROLES, "karte_counts"):
        op.execute(f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
                   f"EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    # The login the application connects as: no superuser, no BYPASSRLS, owns nothing, and
    # NOINHERIT, so it holds no level's rights until a transaction runs SET LOCAL ROLE.
    op.execute("DO $$ BEGIN CREATE ROLE karte_app LOGIN; "
               "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    op.execute("ALTER ROLE karte_app LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
    op.execute(f"GRANT {', '.join(ROLES)} TO karte_app")


def _tables() -> None:
    op.execute(f"CREATE SEQUENCE {S}.row_version")
    for name, (geom, columns, key) in LAYERS.items():
        cols = [sa.Column(c, _TYPES[t]()) for c, t in columns]
        if geom:
            cols.append(sa.Column("geom", Geometry(geom, srid=SRID, spatial_index=False)))
        if key:
            cols += [
                sa.Column("version", sa.BigInteger, nullable=False,
                          server_default=sa.text(f"nextval('{S}.row_version'::regclass)")),
                sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                          server_default=sa.text("now()")),
                sa.Column("updated_by", sa.Text),
            ]
        cols += [sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
                 sa.Column("extra", JSONB)]
        op.create_table(name, *cols, schema=S)
        if geom:
            op.create_index(f"ix_{name}_geom", name, ["geom"], schema=S, postgresql_using="gist")
        if "district_code" in dict(columns) and name not in ("district_map", "kartes"):
            op.create_index(f"ix_{name}_district_code", name, ["district_code"], schema=S)
        if key:
            op.create_index(f"ux_{name}_{key}", name, [key], schema=S, unique=True)
    op.create_table(
        "extra_layers",
        sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("layer", sa.Text, nullable=False),
        sa.Column("attrs", JSONB),
        sa.Column("geom", Geometry("GEOMETRY", srid=SRID, spatial_index=False)),
        schema=S)
    op.create_index("ix_extra_layers_geom", "extra_layers", ["geom"], schema=S, postgresql_using="gist")
    op.create_index("ix_extra_layers_layer", "extra_layers", ["layer"], schema=S)
    op.create_table(
        "layer_catalog",
        sa.Column("layer", sa.Text, primary_key=True),
        sa.Column("position", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("columns", JSONB, nullable=False),
        sa.Column("geometry", sa.Text),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema=S)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False,
                  server_default=sa.text("replace(CURRENT_USER::text, 'karte_', '')")),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("layer", sa.Text, nullable=False),
        sa.Column("district", sa.Text),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("db_user", sa.Text, nullable=False, server_default=sa.text("SESSION_USER")),
        schema=S)


def _triggers() -> None:
    # Every update takes a fresh version from the sequence, whoever runs it (raw SQL included).
    op.execute(f"""
        CREATE FUNCTION {S}.bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.version := nextval('{S}.row_version');
            NEW.updated_at := now();
            NEW.updated_by := coalesce(nullif(current_setting('karte.user', true), ''), session_user);
            RETURN NEW;
        END $$""")
    for name in PERSONAL:
        op.execute(f"CREATE TRIGGER {name}_version BEFORE UPDATE ON {S}.{name} "
                   f"FOR EACH ROW EXECUTE FUNCTION {S}.bump_version()")
    op.execute(f"""
        CREATE FUNCTION {S}.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'karte.audit_log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute(f"CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {S}.audit_log "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.audit_append_only()")
    op.execute(f"CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON {S}.audit_log "
               f"FOR EACH STATEMENT EXECUTE FUNCTION {S}.audit_append_only()")


def _grants() -> None:
    everyone = ", ".join(ROLES)
    op.execute(f"GRANT USAGE ON SCHEMA {S} TO {everyone}, karte_counts")
    for name in PUBLIC_TABLES:
        op.execute(f"GRANT SELECT ON {S}.{name} TO {everyone}")
        op.execute(f"GRANT INSERT, UPDATE, DELETE ON {S}.{name} TO {STAFF}")
    for name in PERSONAL:  # the public gets no privilege at all on personal tables
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {S}.{name} TO {STAFF}")
        op.execute(f"GRANT SELECT, UPDATE ON {S}.{name} TO {COORDINATOR}")
        op.execute(f"GRANT SELECT ON {S}.{name} TO {MEMBER}")
    op.execute(f"GRANT SELECT ON {S}.register TO karte_counts")
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.row_version TO {COORDINATOR}")
    # staff also move it past imported versions (setval), so an old number never comes back
    op.execute(f"GRANT USAGE, SELECT, UPDATE ON SEQUENCE {S}.row_version TO {STAFF}")
    op.execute(f"GRANT INSERT ON {S}.audit_log TO {everyone}")
    op.execute(f"GRANT SELECT ON {S}.audit_log TO {STAFF}")


def _row_level_security() -> None:
    for name in (*PERSONAL, "audit_log"):
        op.execute(f"ALTER TABLE {S}.{name} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {S}.{name} FORCE ROW LEVEL SECURITY")
    # register: staff all rows; coordinators every district, consented rows (and counts through
    # register_counts()); district members their own district's consented rows; public nothing.
    op.execute(f"CREATE POLICY city_staff_all ON {S}.register TO {STAFF} USING (true) WITH CHECK (true)")
    op.execute(f"CREATE POLICY coordinator_read ON {S}.register FOR SELECT TO {COORDINATOR} "
               f"USING ({SHAREABLE})")
    op.execute(f"CREATE POLICY coordinator_edit ON {S}.register FOR UPDATE TO {COORDINATOR} "
               f"USING ({SHAREABLE}) WITH CHECK ({SHAREABLE})")
    op.execute(f"CREATE POLICY district_member_read ON {S}.register FOR SELECT TO {MEMBER} "
               f"USING ({SHAREABLE} AND {OWN_DISTRICT})")
    op.execute(f"CREATE POLICY counts_read ON {S}.register FOR SELECT TO karte_counts USING (true)")
    # cooperators are listed by their own registration: every row is shareable, within its district.
    op.execute(f"CREATE POLICY city_staff_all ON {S}.cooperators TO {STAFF} USING (true) WITH CHECK (true)")
    op.execute(f"CREATE POLICY coordinator_read ON {S}.cooperators FOR SELECT TO {COORDINATOR} USING (true)")
    op.execute(f"CREATE POLICY coordinator_edit ON {S}.cooperators FOR UPDATE TO {COORDINATOR} "
               f"USING (true) WITH CHECK (true)")
    op.execute(f"CREATE POLICY district_member_read ON {S}.cooperators FOR SELECT TO {MEMBER} "
               f"USING ({OWN_DISTRICT})")
    # audit_log: everyone appends as themselves, now; only city staff read it back.
    op.execute(f"CREATE POLICY append ON {S}.audit_log FOR INSERT TO {', '.join(ROLES)} WITH CHECK ("
               "at = now() AND actor = current_setting('karte.user', true) "
               "AND level = replace(CURRENT_USER::text, 'karte_', '') AND db_user = SESSION_USER)")
    op.execute(f"CREATE POLICY city_staff_read ON {S}.audit_log FOR SELECT TO {STAFF} USING (true)")


def _counts() -> None:
    op.execute(f"""
        CREATE FUNCTION {S}.register_counts()
        RETURNS TABLE (district_code text, consent text, persons bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT r.district_code, r.consent, count(*) FROM {S}.register r
            GROUP BY r.district_code, r.consent ORDER BY r.district_code, r.consent
        $$""")
    op.execute(f"ALTER FUNCTION {S}.register_counts() OWNER TO karte_counts")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.register_counts() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.register_counts() TO {STAFF}, {COORDINATOR}")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {S}")
    _roles()
    _tables()
    _triggers()
    _grants()
    _row_level_security()
    _counts()


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {S}.register_counts()")
    for name in (*LAYERS, "extra_layers", "layer_catalog", "audit_log"):
        op.execute(f"DROP TABLE IF EXISTS {S}.{name}")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.bump_version()")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.audit_append_only()")
    op.execute(f"DROP SEQUENCE IF EXISTS {S}.row_version")
