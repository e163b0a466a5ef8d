"""The tables of individual evacuation plans, drills and disaster mode (issue 19).

Revision ID: 0008
Revises: 0007
Create Date: 2027-03-01

Five record layers, as ``karte.domain.drills.LAYERS`` declares them (the columns are written out
here: a migration is frozen, the registry is not), each in the shape of 0002–0004: the layer's
columns, ``municipality_code`` (default: the acting user's), ``version``/``updated_at``/
``updated_by`` with the version trigger, ``fid``, ``extra``; unique (``municipality_code``, key);
indexes on the municipality and the district; the id sequence and the trigger that moves it past
inserted ids; row-level security forced, with the municipality rule in every policy.

* ``evacuation_plans`` (personal; the build snapshot reads it: the snapshot stamp trigger): city
  staff every plan of their municipality; coordinators the plans with a shareable ``consent``
  (the plan's own consent to share it, 第49条の15), any district; district members the same in
  their own district. Coordinators and district members write (insert only as themselves) the
  plans they may see.
* ``drill_marks`` and ``drill_lessons`` (personal): city staff all; coordinators any district;
  district members their own district; inserted only as themselves.
* ``drills`` (personal: names who started it): every level with rows reads its municipality's
  drills (no district rule: a drill spans districts); city staff and coordinators write them.
* ``disaster_modes`` (personal: names who switched; the snapshot reads it): city staff read and
  write them (turning a mode on and off is a row write: audited by the store); coordinators read
  them, district members their own district's.
* **Disaster mode in the register's row-level security** (災害対策基本法 第49条の11第3項):
  ``karte.disaster_districts()`` returns the districts of the caller's municipality whose mode is
  on now (started, not stopped, before its end time). It is ``SECURITY DEFINER``, owned by the
  counting role ``karte_counts`` (as ``karte.register_counts()``), which gets one more right:
  reading ``disaster_modes`` of the caller's municipality (so the function works under forced
  row-level security whoever owns the schema). The district members' read policy on
  ``register`` (and on ``evacuation_plans``) admits, besides shareable rows, every row of their own
  district while that district is in disaster mode; outside disaster mode it is 0004's policy.
* ``extra_layers`` keeps refusing personal layer names: the three personal names of this revision
  are added to its check constraint (whatever other revisions listed there is kept).
* Every table is personal, so the pipeline (the store's trusted user) has ``pipeline_all`` on each,
  and whole-layer writes go through the policies, not ``COPY``.
* District members insert rows now: they get ``USAGE`` on ``row_version``.

Idempotent: every step checks or replaces what it creates. The downgrade restores 0004's register
policy and the constraint, and drops the tables, the function and their sequences (the rows are
lost); it leaves the members' sequence grant (other revisions may rely on it).

Frozen once released: later changes go in new revisions.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "karte"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
PREFECTURE, PIPELINE = "karte_prefecture", "karte_pipeline"
#: Owner of karte.disaster_districts() (the counting role of 0001, owner of register_counts()).
READER = "karte_counts"
COLUMN = "municipality_code"

SHAREABLE = "consent IN ('consented', 'ordinance')"  # karte.domain.schema.Consent.shareable
OWN_DISTRICT = "district_code = current_setting('karte.district', true)"
OWN_MUNICIPALITY = f"{COLUMN} = nullif(current_setting('karte.municipality', true), '')"
AS_THEMSELVES = "updated_by = current_setting('karte.user', true)"
DEFAULT = "nullif(current_setting('karte.municipality', true), '')"
IN_DISASTER = f"district_code = ANY (ARRAY(SELECT unnest({S}.disaster_districts())))"

PLAN_COLUMNS = ("plan_id", "person_id", "district_code", "status", "needs", "medical", "supporter_ids",
                "supporter_note", "emergency_name", "emergency_relation", "emergency_phone", "shelter_id",
                "destination_note", "means", "route_note", "belongings", "consent", "consent_date",
                "made_on", "reviewed_on", "review_due", "made_by", "note")
#: table -> (key, id prefix, text columns besides municipality_code, district rule, snapshot). Every
#: table is personal.
TABLES = {
    "evacuation_plans": ("plan_id", "EP", PLAN_COLUMNS, True, True),
    "drills": ("drill_id", "DR", ("drill_id", "district_code", "districts", "name", "kind", "started_at",
                                  "ended_at", "started_by", "ended_by", "note"), False, False),
    "drill_marks": ("mark_id", "MK", ("mark_id", "district_code", "drill_id", "person_id", "status",
                                      "marked_at", "received_at", "marked_by", "client_id", "note"), True,
                    False),
    "drill_lessons": ("lesson_id", "LS", ("lesson_id", "district_code", "drill_id", "text", "entered_by",
                                          "entered_at"), True, False),
    "disaster_modes": ("mode_id", "DM", ("mode_id", "district_code", "scope", "started_at", "ends_at",
                                         "stopped_at", "started_by", "stopped_by", "reason"), True, True),
}
PERSONAL_NAMES = tuple(TABLES)


def _m(rule: str | None) -> str | None:
    """``rule`` and the municipality rule (every policy of this revision has it)."""
    if rule is None:
        return None
    return OWN_MUNICIPALITY if rule == "true" else f"{rule} AND {OWN_MUNICIPALITY}"


def _own(rule: str = "true") -> str:
    return OWN_DISTRICT if rule == "true" else f"{rule} AND {OWN_DISTRICT}"


#: table -> policy -> (clause before USING, USING, WITH CHECK).
POLICIES = {
    "evacuation_plans": {
        "city_staff_all": (f"TO {STAFF}", _m("true"), _m("true")),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", _m(SHAREABLE), None),
        "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, _m(f"{SHAREABLE} AND {AS_THEMSELVES}")),
        "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", _m(SHAREABLE), _m(SHAREABLE)),
        "coordinator_delete": (f"FOR DELETE TO {COORDINATOR}", _m(SHAREABLE), None),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", _m(_own(f"({SHAREABLE} OR {IN_DISASTER})")),
                                 None),
        "district_member_insert": (f"FOR INSERT TO {MEMBER}", None,
                                   _m(_own(f"{SHAREABLE} AND {AS_THEMSELVES}"))),
        "district_member_edit": (f"FOR UPDATE TO {MEMBER}", _m(_own(SHAREABLE)), _m(_own(SHAREABLE))),
        "district_member_delete": (f"FOR DELETE TO {MEMBER}", _m(_own(SHAREABLE)), None),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    },
    "drill_marks": {
        "city_staff_all": (f"TO {STAFF}", _m("true"), _m("true")),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", _m("true"), None),
        "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, _m(AS_THEMSELVES)),
        "coordinator_delete": (f"FOR DELETE TO {COORDINATOR}", _m("true"), None),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", _m(_own()), None),
        "district_member_insert": (f"FOR INSERT TO {MEMBER}", None, _m(_own(AS_THEMSELVES))),
        "district_member_delete": (f"FOR DELETE TO {MEMBER}", _m(_own()), None),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    },
    "drill_lessons": {
        "city_staff_all": (f"TO {STAFF}", _m("true"), _m("true")),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", _m("true"), None),
        "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, _m(AS_THEMSELVES)),
        "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", _m("true"), _m("true")),
        "coordinator_delete": (f"FOR DELETE TO {COORDINATOR}", _m("true"), None),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", _m(_own()), None),
        "district_member_insert": (f"FOR INSERT TO {MEMBER}", None, _m(_own(AS_THEMSELVES))),
        "district_member_edit": (f"FOR UPDATE TO {MEMBER}", _m(_own()), _m(_own())),
        "district_member_delete": (f"FOR DELETE TO {MEMBER}", _m(_own()), None),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    },
    "drills": {
        "city_staff_all": (f"TO {STAFF}", _m("true"), _m("true")),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", _m("true"), None),
        "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, _m(AS_THEMSELVES)),
        "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", _m("true"), _m("true")),
        "coordinator_delete": (f"FOR DELETE TO {COORDINATOR}", _m("true"), None),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", _m("true"), None),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    },
    "disaster_modes": {
        "city_staff_all": (f"TO {STAFF}", _m("true"), _m("true")),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", _m("true"), None),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", _m(_own()), None),
        # the function's owner: karte.disaster_districts() runs in the caller's transaction
        "counts_read": (f"FOR SELECT TO {READER}", _m("true"), None),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    },
}
#: Privileges per table and role (besides the policies, which narrow them).
ALL = "SELECT, INSERT, UPDATE, DELETE"
GRANTS = {
    "evacuation_plans": {STAFF: ALL, COORDINATOR: ALL, MEMBER: ALL},
    "drill_marks": {STAFF: "SELECT, INSERT, UPDATE, DELETE", COORDINATOR: "SELECT, INSERT, DELETE",
                    MEMBER: "SELECT, INSERT, DELETE"},
    "drill_lessons": {STAFF: "SELECT, INSERT, UPDATE, DELETE", COORDINATOR: "SELECT, INSERT, UPDATE, DELETE",
                      MEMBER: "SELECT, INSERT, UPDATE, DELETE"},
    "drills": {STAFF: "SELECT, INSERT, UPDATE, DELETE", COORDINATOR: "SELECT, INSERT, UPDATE, DELETE",
               MEMBER: "SELECT"},
    "disaster_modes": {STAFF: "SELECT, INSERT, UPDATE, DELETE", COORDINATOR: "SELECT", MEMBER: "SELECT",
                       READER: "SELECT"},
}
#: Who appends rows (and so takes ids from the sequence).
APPENDERS = {"evacuation_plans": (STAFF, COORDINATOR, MEMBER), "drill_marks": (STAFF, COORDINATOR, MEMBER),
             "drill_lessons": (STAFF, COORDINATOR, MEMBER), "drills": (STAFF, COORDINATOR),
             "disaster_modes": (STAFF,)}

#: The register's district-member policy before (0004) and after this revision.
REGISTER_MEMBER_BEFORE = f"{SHAREABLE} AND {OWN_DISTRICT} AND {OWN_MUNICIPALITY}"
REGISTER_MEMBER_AFTER = f"({SHAREABLE} OR {IN_DISASTER}) AND {OWN_DISTRICT} AND {OWN_MUNICIPALITY}"
NOT_PERSONAL = "ck_extra_layers_not_personal"
#: An ISO time as the application writes it (``2027-03-01T09:00:00+00:00``).
ISO = r"'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'"


# -- tables ---------------------------------------------------------------------------------------

def _table(name: str, columns: tuple[str, ...]) -> None:
    if sa.inspect(op.get_bind()).has_table(name, schema=S):
        return
    op.create_table(
        name,
        *[sa.Column(c, sa.Text) for c in columns],
        sa.Column(COLUMN, sa.Text, server_default=sa.text(DEFAULT)),
        sa.Column("version", sa.BigInteger, nullable=False,
                  server_default=sa.text(f"nextval('{S}.row_version'::regclass)")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_by", sa.Text),
        sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("extra", JSONB),
        schema=S)


def _indexes_and_triggers(name: str, key: str, prefix: str, district: bool, snapshot: bool) -> None:
    op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{name}_{COLUMN}_{key} ON {S}.{name} ({COLUMN}, {key})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_{COLUMN} ON {S}.{name} ({COLUMN})")
    if district:  # the district rule reads it
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_district_code ON {S}.{name} (district_code)")
    op.execute(f"CREATE OR REPLACE TRIGGER {name}_version BEFORE UPDATE ON {S}.{name} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.bump_version()")
    seq = f"{name}_{key}_seq"
    op.execute(f"CREATE SEQUENCE IF NOT EXISTS {S}.{seq} OWNED BY {S}.{name}.{key}")
    op.execute(f"CREATE OR REPLACE TRIGGER {name}_ids AFTER INSERT ON {S}.{name} "
               "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
               f"EXECUTE FUNCTION {S}.advance_record_id('{key}', '{prefix}')")
    op.execute(f"REVOKE ALL ON SEQUENCE {S}.{seq} FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.{seq} TO {', '.join(APPENDERS[name])}")
    if snapshot:  # the build snapshot reads it: every statement changes the stamp (as 0003)
        op.execute(f"CREATE OR REPLACE TRIGGER snapshot_stamp BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON {S}.{name} FOR EACH STATEMENT EXECUTE FUNCTION {S}.touch_snapshot_stamp()")


def _grants(name: str) -> None:
    op.execute(f"REVOKE ALL ON {S}.{name} FROM PUBLIC, {PUBLIC}, {PREFECTURE}, {STAFF}, {COORDINATOR}, "
               f"{MEMBER}, {READER}")
    for role, privileges in GRANTS[name].items():
        op.execute(f"GRANT {privileges} ON {S}.{name} TO {role}")


def _policy(table: str, name: str, rule: tuple[str, str | None, str | None]) -> None:
    head, using, check = rule
    op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{table}")
    op.execute(f"CREATE POLICY {name} ON {S}.{table} {head}"
               + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


def _row_level_security(name: str) -> None:
    op.execute(f"ALTER TABLE {S}.{name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{name} FORCE ROW LEVEL SECURITY")
    for policy, rule in POLICIES[name].items():
        _policy(name, policy, rule)


# -- disaster mode ------------------------------------------------------------------------------------

def _disaster_function() -> None:
    """``karte.disaster_districts()``: the districts of the caller's municipality in disaster mode now."""
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.disaster_districts() RETURNS text[]
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT coalesce(array_agg(DISTINCT m.district_code), '{{}}'::text[])
            FROM {S}.disaster_modes m
            WHERE m.{COLUMN} = nullif(current_setting('karte.municipality', true), '')
              AND m.district_code IS NOT NULL
              AND coalesce(m.stopped_at, '') = ''
              AND m.started_at ~ {ISO} AND m.started_at::timestamptz <= now()
              AND (coalesce(m.ends_at, '') = ''
                   OR (m.ends_at ~ {ISO} AND m.ends_at::timestamptz > now()))
        $$""")
    op.execute(f"ALTER FUNCTION {S}.disaster_districts() OWNER TO {READER}")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.disaster_districts() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.disaster_districts() TO {STAFF}, {COORDINATOR}, {MEMBER}")


def _register_policy(using: str) -> None:
    _policy("register", "district_member_read", (f"FOR SELECT TO {MEMBER}", using, None))


# -- extra_layers keeps personal names out ---------------------------------------------------------

def _personal_names_refused(add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
    """Rewrite the check constraint of ``extra_layers`` with ``add`` and without ``remove``,
    keeping every other name it lists (other revisions add theirs)."""
    bind = op.get_bind()
    found = bind.execute(sa.text(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = :s AND t.relname = 'extra_layers' AND c.conname = :c"),
        {"s": S, "c": NOT_PERSONAL}).scalar()
    names = re.findall(r"'([^']+)'", found or "") or ["register", "cooperators", "supporter_decisions"]
    names = [n for n in dict.fromkeys([*names, *add]) if n not in remove]
    listed = ", ".join(f"'{n}'" for n in names)
    op.execute(f"ALTER TABLE {S}.extra_layers DROP CONSTRAINT IF EXISTS {NOT_PERSONAL}")
    op.execute(f"ALTER TABLE {S}.extra_layers ADD CONSTRAINT {NOT_PERSONAL} CHECK (layer NOT IN ({listed}))")


def upgrade() -> None:
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.row_version TO {MEMBER}")
    for name, (key, prefix, columns, district, snapshot) in TABLES.items():
        _table(name, columns)
        _indexes_and_triggers(name, key, prefix, district, snapshot)
    _disaster_function()
    for name in TABLES:
        _grants(name)
        _row_level_security(name)
    _register_policy(REGISTER_MEMBER_AFTER)
    _personal_names_refused(add=PERSONAL_NAMES)


def downgrade() -> None:
    _register_policy(REGISTER_MEMBER_BEFORE)
    _personal_names_refused(remove=PERSONAL_NAMES)
    op.execute(f"DELETE FROM {S}.layer_catalog WHERE layer IN ({', '.join(repr(t) for t in TABLES)})")
    for name in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {S}.{name}")  # its policies, triggers and owned sequence too
    op.execute(f"DROP FUNCTION IF EXISTS {S}.disaster_districts()")
