"""The municipality as a key: ``municipality_code`` on every layer table, row-level security by
municipality, keys unique within a municipality, the prefecture level and the pipeline role.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-15

karte grows from one city to a prefecture: every row carries its municipality's JIS code
(``municipality_code``, five digits, ``02201`` = Aomori city); district codes, and the keys of
the personal tables, are unique within a municipality only.

* Every layer table (``small_areas``, ``districts``, ``district_map``, ``register``,
  ``cooperators``, ``services``, ``shelters``, ``emergency_sites``, ``kartes``, ``meta``,
  ``supporter_decisions``) and ``extra_layers`` get ``municipality_code text`` with a B-tree
  index. Its default is the transaction's ``karte.municipality`` setting (the acting user's), so
  a row inserted without one, by the store or by raw SQL, belongs to the user's municipality.
* Existing values move in: a layer written before with a ``municipality_code`` column kept it in
  the ``extra`` (``attrs``) JSONB; it moves to the new column and its catalogue entry says so.
* Backfill: when ``small_areas`` holds exactly one municipality (``left(key_code, 5)`` over its
  rows with a key code), every table's rows without a code get it, and the catalogue entry of
  every layer that had no code at all lists the column (after the layer's first column, where the
  build writes it; for ``supporter_decisions`` where its registry entry declares it).
  **Otherwise (no small areas, or several municipalities) rows without a code stay NULL**: no
  user sees a personal row with a NULL municipality (row-level security compares it with the
  user's), so the operator writes the layers again with their codes (``karte build``,
  ``karte import``) or sets them in SQL as the owner. The backfill keeps each row's ``version``,
  ``updated_at`` and ``updated_by`` (the version triggers are off meanwhile) and changes the
  snapshot stamp (only when it changes a row).
* Row-level security: every policy on a personal table (``register``, ``cooperators``,
  ``supporter_decisions``) also requires ``municipality_code = current_setting('karte.municipality',
  true)`` (an empty setting matches no row), the counting role's included, so
  ``karte.register_counts()`` counts the caller's municipality only; it now returns rows per
  municipality, district and consent. The one exception is the new role ``karte_pipeline``: the
  store's own trusted user (the build, imports and restores, the command line without a user),
  a member of ``karte_city_staff`` with one more policy per personal table that admits every
  municipality, so a whole-layer write holds whatever codes its frames carry.
* ``karte_prefecture`` (県社協, every municipality's aggregates): like ``karte_public``, no
  privilege at all on a personal table; it reads the public layers, the catalogue and the stamp
  and appends its own access-log rows.
* The unique indexes on ``person_id``, ``cooperator_id`` and ``decision_id`` become unique on
  (``municipality_code``, key). Row operations address a row by key within the user's municipality.
* ``karte.open_record_layer(layer, key, names)``: a record layer's catalogue entry lists its
  columns in the order of ``names`` (the registry's), the new column included.

Idempotent: every step checks or replaces what it creates, so a half-applied schema (or a
re-run by hand) converges. Roles are cluster-wide and only created when missing; the downgrade
leaves them (and the pipeline's membership) in place. The downgrade moves the codes back into the
``extra``/``attrs`` JSONB (so an upgrade again restores them), restores the 0001–0003 policies,
function and unique indexes (it fails, changing nothing, while a key repeats across
municipalities) and drops the column.

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "karte"
COLUMN = "municipality_code"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
PREFECTURE, PIPELINE, COUNTS = "karte_prefecture", "karte_pipeline", "karte_counts"
#: Layer tables (JSONB bag ``extra``) and the generic table (bag ``attrs``).
LAYER_TABLES = ("small_areas", "districts", "district_map", "register", "cooperators", "services",
                "shelters", "emergency_sites", "kartes", "meta", "supporter_decisions")
EXTRA = "extra_layers"
#: Tables open to every level (0001's PUBLIC_TABLES), now to the prefecture level too.
PUBLIC_TABLES = ("small_areas", "districts", "district_map", "services", "shelters", "emergency_sites",
                 "kartes", "meta", "extra_layers", "layer_catalog", "snapshot_stamp")
#: Personal tables: key column and its row-version trigger.
PERSONAL = {"register": "person_id", "cooperators": "cooperator_id", "supporter_decisions": "decision_id"}
#: Catalogue position of the column: after the named column (default: after the first column).
AFTER = {"supporter_decisions": "cooperator_id"}

SHAREABLE = "consent IN ('consented', 'ordinance')"  # karte.domain.schema.Consent.shareable
OWN_DISTRICT = "district_code = current_setting('karte.district', true)"
OWN_MUNICIPALITY = f"{COLUMN} = nullif(current_setting('karte.municipality', true), '')"
AS_THEMSELVES = "updated_by = current_setting('karte.user', true)"
DEFAULT = "nullif(current_setting('karte.municipality', true), '')"

#: table -> policy -> (clause before USING, USING, WITH CHECK): before (0001–0003) and after.
POLICIES_BEFORE = {
    "register": {
        "city_staff_all": (f"TO {STAFF}", "true", "true"),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", SHAREABLE, None),
        "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", SHAREABLE, SHAREABLE),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", f"{SHAREABLE} AND {OWN_DISTRICT}", None),
        "counts_read": (f"FOR SELECT TO {COUNTS}", "true", None),
    },
    "cooperators": {
        "city_staff_all": (f"TO {STAFF}", "true", "true"),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", "true", None),
        "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", "true", "true"),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", OWN_DISTRICT, None),
    },
    "supporter_decisions": {
        "city_staff_all": (f"TO {STAFF}", "true", "true"),
        "coordinator_read": (f"FOR SELECT TO {COORDINATOR}", "true", None),
        "district_member_read": (f"FOR SELECT TO {MEMBER}", OWN_DISTRICT, None),
        "coordinator_insert": (f"FOR INSERT TO {COORDINATOR}", None, AS_THEMSELVES),
        "coordinator_edit": (f"FOR UPDATE TO {COORDINATOR}", "true", "true"),
        "coordinator_delete": (f"FOR DELETE TO {COORDINATOR}", "true", None),
    },
}


def _and_own_municipality(rule: str | None) -> str | None:
    if rule is None:
        return None
    return OWN_MUNICIPALITY if rule == "true" else f"{rule} AND {OWN_MUNICIPALITY}"


POLICIES_AFTER = {
    table: {name: (head, _and_own_municipality(using), _and_own_municipality(check))
            for name, (head, using, check) in policies.items()}
    for table, policies in POLICIES_BEFORE.items()
}
PIPELINE_POLICY = "pipeline_all"
#: Columns of a record table that are not the layer's own (catalogue) columns (as 0003).
NOT_LAYER_COLUMNS = "('fid', 'extra', 'geom', 'version', 'updated_at', 'updated_by')"
AUDIT_APPEND = ("at = now() AND actor = current_setting('karte.user', true) "
                "AND level = replace(CURRENT_USER::text, 'karte_', '') AND db_user = SESSION_USER")


def _bag(table: str) -> str:
    return "attrs" if table == EXTRA else "extra"


def _update(table: str, assignments: str, where: str, params: dict | None = None) -> None:
    """``UPDATE`` the rows of ``table`` matching ``where``, only when there are any: the snapshot
    stamp's statement trigger fires on any ``UPDATE``, even of no row, and an empty or untouched
    store keeps its stamp."""
    bind, params = op.get_bind(), params or {}
    if bind.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {S}.{table} WHERE {where})"), params).scalar():
        bind.execute(sa.text(f"UPDATE {S}.{table} SET {assignments} WHERE {where}"), params)


# -- roles -----------------------------------------------------------------------------------------

def _roles() -> None:
    for role in (PREFECTURE, PIPELINE):
        op.execute(f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
                   f"EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    # role memberships are cluster-wide: granted again, they stay as they are
    op.execute(f"GRANT {STAFF} TO {PIPELINE}")
    op.execute(f"GRANT {PREFECTURE}, {PIPELINE} TO karte_app")


def _prefecture_grants() -> None:
    op.execute(f"GRANT USAGE ON SCHEMA {S} TO {PREFECTURE}")
    for table in PUBLIC_TABLES:
        op.execute(f"GRANT SELECT ON {S}.{table} TO {PREFECTURE}")
    op.execute(f"GRANT INSERT ON {S}.audit_log TO {PREFECTURE}")
    everyone = ", ".join((STAFF, COORDINATOR, MEMBER, PUBLIC, PREFECTURE))
    op.execute(f"DROP POLICY IF EXISTS append ON {S}.audit_log")
    op.execute(f"CREATE POLICY append ON {S}.audit_log FOR INSERT TO {everyone} WITH CHECK ({AUDIT_APPEND})")


# -- the column ------------------------------------------------------------------------------------

def _columns() -> None:
    for table in (*LAYER_TABLES, EXTRA):
        op.execute(f"ALTER TABLE {S}.{table} ADD COLUMN IF NOT EXISTS {COLUMN} text")
        op.execute(f"ALTER TABLE {S}.{table} ALTER COLUMN {COLUMN} SET DEFAULT {DEFAULT}")
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_{COLUMN} ON {S}.{table} ({COLUMN})")


def _catalogue() -> dict[str, list]:
    rows = op.get_bind().execute(sa.text(f"SELECT layer, columns FROM {S}.layer_catalog")).fetchall()
    return {layer: list(columns) for layer, columns in rows}


def _save(layer: str, columns: list) -> None:
    op.get_bind().execute(
        sa.text(f"UPDATE {S}.layer_catalog SET columns = CAST(:c AS jsonb) WHERE layer = :l"),
        {"c": json.dumps(columns, ensure_ascii=False), "l": layer})


@contextlib.contextmanager
def _rows_as_owner() -> Iterator[None]:
    """Rewrite rows of the personal tables as the owner, keeping their row versions: row-level
    security not forced (the owner passes), the version triggers off. No ``finally``: a failed
    step aborts the one migration transaction, which rolls all of it back."""
    for table in PERSONAL:
        op.execute(f"ALTER TABLE {S}.{table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {S}.{table} DISABLE TRIGGER {table}_version")
    yield
    for table in PERSONAL:
        op.execute(f"ALTER TABLE {S}.{table} ENABLE TRIGGER {table}_version")
        op.execute(f"ALTER TABLE {S}.{table} FORCE ROW LEVEL SECURITY")


def _move_codes_in() -> None:
    """Codes written before as an unmodelled column (in the JSONB bag) move to the column."""
    for table in (*LAYER_TABLES, EXTRA):
        bag = _bag(table)
        _update(table, f"{COLUMN} = coalesce({COLUMN}, {bag} ->> '{COLUMN}'), "
                       f"{bag} = nullif({bag} - '{COLUMN}', '{{}}'::jsonb)", f"{bag} ? '{COLUMN}'")
    for layer, columns in _catalogue().items():
        entry = next((c for c in columns if c.get("name") == COLUMN), None)
        if entry is not None and (entry.get("where"), entry.get("kind")) != ("column", "text"):
            entry.update(kind="text", where="column")
            _save(layer, columns)


def _backfill() -> None:
    """One municipality in the small areas: every row without a code gets it, and so does the
    catalogue entry of every layer none of whose rows had one (a layer written before 0004; one
    whose codes came back from the JSONB bag after a downgrade stays as it was). Otherwise
    nothing (see the module's docstring)."""
    bind = op.get_bind()
    codes = [r[0] for r in bind.execute(sa.text(
        f"SELECT DISTINCT left(key_code, 5) FROM {S}.small_areas WHERE key_code IS NOT NULL"))]
    if len(codes) != 1:
        return
    coded = {r[0] for r in bind.execute(sa.text(
        f"SELECT DISTINCT layer FROM {S}.{EXTRA} WHERE {COLUMN} IS NOT NULL"))}
    coded |= {t for t in LAYER_TABLES if bind.execute(sa.text(
        f"SELECT EXISTS (SELECT 1 FROM {S}.{t} WHERE {COLUMN} IS NOT NULL)")).scalar()}
    for table in (*LAYER_TABLES, EXTRA):
        _update(table, f"{COLUMN} = :code", f"{COLUMN} IS NULL", {"code": codes[0]})
    for layer, columns in _catalogue().items():
        names = [c.get("name") for c in columns]
        if COLUMN in names or layer in coded:
            continue
        after = AFTER.get(layer)
        position = names.index(after) + 1 if after in names else min(1, len(names))
        columns.insert(position, {"name": COLUMN, "kind": "text", "where": "column"})
        _save(layer, columns)


def _unique_within_municipality() -> None:
    for table, key in PERSONAL.items():
        op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{table}_{COLUMN}_{key} "
                   f"ON {S}.{table} ({COLUMN}, {key})")
        op.execute(f"DROP INDEX IF EXISTS {S}.ux_{table}_{key}")


# -- row-level security and the functions ------------------------------------------------------------

def _policy(table: str, name: str, rule: tuple[str, str | None, str | None]) -> None:
    head, using, check = rule
    op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{table}")
    op.execute(f"CREATE POLICY {name} ON {S}.{table} {head}"
               + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


def _row_level_security() -> None:
    for table, policies in POLICIES_AFTER.items():
        for name, rule in policies.items():
            _policy(table, name, rule)
        # the store's own trusted user: every municipality (its only policy without the rule)
        _policy(table, PIPELINE_POLICY, (f"TO {PIPELINE}", "true", "true"))


def _register_counts(municipality: bool) -> None:
    """``karte.register_counts()``: per municipality (after) or not (before), owned by the counting
    role, whose policy decides which rows it counts."""
    first = "r.municipality_code, " if municipality else ""
    out = "municipality_code text, " if municipality else ""
    groups = "1, 2, 3" if municipality else "1, 2"
    op.execute(f"DROP FUNCTION IF EXISTS {S}.register_counts()")
    op.execute(f"""
        CREATE FUNCTION {S}.register_counts()
        RETURNS TABLE ({out}district_code text, consent text, persons bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT {first}r.district_code, r.consent, count(*) FROM {S}.register r
            GROUP BY {groups} ORDER BY {groups}
        $$""")
    op.execute(f"ALTER FUNCTION {S}.register_counts() OWNER TO {COUNTS}")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.register_counts() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.register_counts() TO {STAFF}, {COORDINATOR}")


def _open_record_layer() -> None:
    """0003's ``open_record_layer(layer, key)`` with the columns in the order of ``names``."""
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.open_record_layer(name text, key text, names text[])
        RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
                       'where', 'column')
                       ORDER BY coalesce(array_position(names, a.attname::text), 2147483647), a.attnum)
                       FILTER (WHERE a.attname NOT IN {NOT_LAYER_COLUMNS}), '[]'::jsonb),
                   CASE WHEN bool_or(a.attname = 'geom') THEN 'geometry' END
            FROM pg_attribute a WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped
            ON CONFLICT (layer) DO NOTHING;
        END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.open_record_layer(text, text, text[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.open_record_layer(text, text, text[]) "
               f"TO {STAFF}, {COORDINATOR}, {MEMBER}")


def upgrade() -> None:
    _roles()
    _columns()
    with _rows_as_owner():
        _move_codes_in()
        _backfill()
    _unique_within_municipality()
    _row_level_security()
    _prefecture_grants()
    _register_counts(municipality=True)
    _open_record_layer()


# -- downgrade -------------------------------------------------------------------------------------

def _move_codes_out() -> None:
    """The codes back into the JSONB bag, as the 0003 store keeps a column it does not model."""
    for table in (*LAYER_TABLES, EXTRA):
        bag = _bag(table)
        _update(table, f"{bag} = coalesce({bag}, '{{}}'::jsonb) || jsonb_build_object('{COLUMN}', {COLUMN})",
                f"{COLUMN} IS NOT NULL")
    for layer, columns in _catalogue().items():
        entry = next((c for c in columns if c.get("name") == COLUMN), None)
        if entry is not None and entry.get("where") == "column":
            entry["where"] = "extra" if layer in LAYER_TABLES else "attrs"
            _save(layer, columns)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {S}.open_record_layer(text, text, text[])")
    _register_counts(municipality=False)
    for table, policies in POLICIES_BEFORE.items():
        op.execute(f"DROP POLICY IF EXISTS {PIPELINE_POLICY} ON {S}.{table}")
        for name, rule in policies.items():
            _policy(table, name, rule)
    op.execute(f"DROP POLICY IF EXISTS append ON {S}.audit_log")
    op.execute(f"CREATE POLICY append ON {S}.audit_log FOR INSERT TO {STAFF}, {COORDINATOR}, {MEMBER}, "
               f"{PUBLIC} WITH CHECK ({AUDIT_APPEND})")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {S} FROM {PREFECTURE}")
    op.execute(f"REVOKE ALL ON SCHEMA {S} FROM {PREFECTURE}")
    for table, key in PERSONAL.items():  # fails while a key repeats across municipalities
        op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{table}_{key} ON {S}.{table} ({key})")
        op.execute(f"DROP INDEX IF EXISTS {S}.ux_{table}_{COLUMN}_{key}")
    with _rows_as_owner():
        _move_codes_out()
    for table in (*LAYER_TABLES, EXTRA):
        op.execute(f"ALTER TABLE {S}.{table} DROP COLUMN IF EXISTS {COLUMN}")
