"""Server-side sessions and the login throttle's state; who acts is fixed once per transaction;
the access log's actor and time come from the database; keys reveal no hidden row (issue 16).

Revision ID: 0010
Revises: 0009
Create Date: 2027-03-01

**Two record layers** (``karte.domain.security``), tables as 0003, 0004 and 0006 make them (the
registry's columns, ``municipality_code`` defaulting to the acting user's, the row version,
``fid`` and ``extra``; unique (``municipality_code``, key), indexes on ``municipality_code`` and
``district_code``; the id sequence and its trigger; ``FORCE ROW LEVEL SECURITY``):

* ``web_sessions``: a login per row (only the token's SHA-256). Every level, the public and the
  prefecture level included (anyone with an account logs in), reads, adds, ends and deletes its
  own rows (``user_name`` = the transaction's user, of the user's municipality or of none); city
  staff every row of their municipality and of none; the pipeline every row.
* ``login_attempts``: the throttle's counters when several server processes share it (keyed hashes
  only). Written by the login form, which acts as the public; city staff and the pipeline too.

The public and the prefecture level take row versions now (``USAGE`` on ``row_version``) and may
enter a record layer in the catalogue (``karte.open_record_layer``, which only lists an existing
record table): they write these two layers.

**Who acts is fixed once per transaction.** Until now the application set the role, the user,
the district and the municipality with ``set_config`` and could set them again at any point of
the transaction (so could anything that ran SQL in it). Now the store calls
``karte.seal_context()`` in the statement that sets them: a ``SECURITY DEFINER`` function that
records a seal, a SHA-256 over a secret only the schema owner reads (``karte_private.context_key``),
the backend, the transaction's start, the role and the three settings; reading the secret leaves
a lock on its table that nothing can release before the transaction ends (and that the
application cannot take itself), the mark that the transaction was sealed. Every policy of every
table in the schema (those of 0001-0009 included) gets
``AND (SELECT karte.context_ok(CURRENT_USER))``: evaluated once per statement, it raises
``insufficient_privilege`` when the settings or the role no longer match the seal, or when the
seal was cleared while the lock is held. A transaction that was never sealed (raw SQL by the
owner or by a test) is unaffected: whoever holds the credential can open a new transaction as
anyone anyway; what can no longer happen is a change of district, municipality, user or level
inside a transaction the store set up.

**The access log's actor and time** come from the database: a ``BEFORE INSERT`` trigger sets
``at`` (``now()``), ``actor`` (the transaction's sealed ``karte.user``), ``level`` (the role) and
``db_user`` (the login), whatever the statement says.

**Keys reveal no hidden row.** A unique key failure would confirm that a row the user cannot see
exists. So (a) a ``BEFORE UPDATE`` trigger refuses to change a row's key or municipality except to
city staff and the pipeline (a coordinator could otherwise rename a row they see to the id of an
unconsented person and learn from the refusal that it exists); and (b) on every record layer a
district member (who sees their district's rows only) inserts, the database numbers the row itself,
whatever key the statement gives (``BEFORE INSERT``), so no key of theirs can meet another's.

Idempotent: every step checks or replaces what it creates; the policies' original expressions are
kept in ``karte_private.policy_backup`` (once) and the downgrade puts them back, drops the
triggers, the functions, the two tables (their rows are lost) and ``karte_private``.

Frozen: later changes go in new revisions. A later table's policies must end with the same
``AND (SELECT karte.context_ok(CURRENT_USER))``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

S = "karte"
P = "karte_private"
COLUMN = "municipality_code"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
PREFECTURE, PIPELINE = "karte_prefecture", "karte_pipeline"
LEVEL_ROLES = (STAFF, COORDINATOR, MEMBER, PUBLIC, PREFECTURE)
DEFAULT = "nullif(current_setting('karte.municipality', true), '')"
OWN_MUNICIPALITY = f"{COLUMN} = {DEFAULT}"
OWN_OR_NONE = f"({COLUMN} = {DEFAULT} OR {COLUMN} IS NULL)"
MINE = (f"user_name = current_setting('karte.user', true) "
        f"AND {COLUMN} IS NOT DISTINCT FROM {DEFAULT}")
#: The check every policy gets (evaluated once per statement: an uncorrelated sub-select).
CHECK = "(SELECT karte.context_ok(CURRENT_USER))"

T, F = "text", "float"
#: table -> (key, id prefix, [(column, kind)] after key, municipality and district), as
#: karte.domain.security.LAYERS declares them at this revision.
TABLES = {
    "web_sessions": ("session_id", "WS", [
        ("user_name", T), ("user_level", T), ("user_stamp", T), ("kind", T), ("token_hash", T),
        ("client", T), ("created_at", T), ("expires_at", T), ("ended_at", T), ("ended_by", T),
        ("end_reason", T)]),
    "login_attempts": ("attempt_id", "LA", [("subject", T), ("at", F), ("outcome", T)]),
}
_SA = {T: sa.Text, F: sa.Float}

#: table -> policy -> (clause before USING, USING, WITH CHECK), before the context check is added.
POLICIES = {
    "web_sessions": {
        "city_staff_all": (f"TO {STAFF}", OWN_OR_NONE, OWN_OR_NONE),
        "own_sessions": (f"TO {COORDINATOR}, {MEMBER}, {PUBLIC}, {PREFECTURE}", MINE, MINE),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    },
    "login_attempts": {
        "login_form": (f"TO {PUBLIC}", f"{COLUMN} IS NULL", f"{COLUMN} IS NULL"),
        "city_staff_all": (f"TO {STAFF}", OWN_OR_NONE, OWN_OR_NONE),
        "pipeline_all": (f"TO {PIPELINE}", "true", "true"),
    },
}
GRANTS = {
    "web_sessions": ("SELECT, INSERT, UPDATE, DELETE", LEVEL_ROLES),
    "login_attempts": ("SELECT, INSERT, UPDATE, DELETE", (PUBLIC, STAFF)),
}


# -- the two tables ------------------------------------------------------------------------------------

def _table(name: str) -> None:
    key, _, columns = TABLES[name]
    if sa.inspect(op.get_bind()).has_table(name, schema=S):
        return
    op.create_table(
        name,
        sa.Column(key, sa.Text),
        sa.Column(COLUMN, sa.Text, server_default=sa.text(DEFAULT)),
        sa.Column("district_code", sa.Text),
        *(sa.Column(c, _SA[kind]()) for c, kind in columns),
        sa.Column("version", sa.BigInteger, nullable=False,
                  server_default=sa.text(f"nextval('{S}.row_version'::regclass)")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_by", sa.Text),
        sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("extra", JSONB),
        schema=S)


def _indexes_and_triggers(name: str) -> None:
    key, prefix, _ = TABLES[name]
    op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{name}_{COLUMN}_{key} ON {S}.{name} ({COLUMN}, {key})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_{COLUMN} ON {S}.{name} ({COLUMN})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_district_code ON {S}.{name} (district_code)")
    op.execute(f"CREATE OR REPLACE TRIGGER {name}_version BEFORE UPDATE ON {S}.{name} "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.bump_version()")
    seq = f"{name}_{key}_seq"
    op.execute(f"CREATE SEQUENCE IF NOT EXISTS {S}.{seq} OWNED BY {S}.{name}.{key}")
    op.execute(f"CREATE OR REPLACE TRIGGER {name}_ids AFTER INSERT ON {S}.{name} "
               "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
               f"EXECUTE FUNCTION {S}.advance_record_id('{key}', '{prefix}')")
    op.execute(f"REVOKE ALL ON SEQUENCE {S}.{seq} FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.{seq} TO {', '.join(LEVEL_ROLES)}")


def _grants(name: str) -> None:
    privileges, roles = GRANTS[name]
    op.execute(f"REVOKE ALL ON {S}.{name} FROM PUBLIC, {', '.join(LEVEL_ROLES)}")
    op.execute(f"GRANT {privileges} ON {S}.{name} TO {', '.join(roles)}")


def _policies(name: str) -> None:
    op.execute(f"ALTER TABLE {S}.{name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{name} FORCE ROW LEVEL SECURITY")
    for policy, (head, using, check) in POLICIES[name].items():
        op.execute(f"DROP POLICY IF EXISTS {policy} ON {S}.{name}")
        op.execute(f"CREATE POLICY {policy} ON {S}.{name} {head}"
                   + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


# -- who acts, fixed once per transaction -----------------------------------------------------------------

def _private() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {P}")
    op.execute(f"REVOKE ALL ON SCHEMA {P} FROM PUBLIC")
    op.execute(f"CREATE TABLE IF NOT EXISTS {P}.context_key (id boolean PRIMARY KEY DEFAULT true "
               "CHECK (id), key text NOT NULL)")
    # 244 random bits (gen_random_uuid draws from the server's strong random source)
    op.execute(f"INSERT INTO {P}.context_key (id, key) VALUES (true, replace(gen_random_uuid()::text || "
               "gen_random_uuid()::text, '-', '')) ON CONFLICT (id) DO NOTHING")
    op.execute(f"CREATE TABLE IF NOT EXISTS {P}.policy_backup (tablename name, policyname name, "
               "qual text, with_check text, PRIMARY KEY (tablename, policyname))")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {P} FROM PUBLIC")


def _functions() -> None:
    # the seal: the key on both sides (no length extension), the backend, the transaction's start
    # (as a number: no time zone or date style), the role and the three settings
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {P}.context_mac(acting_role text) RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT encode(sha256(convert_to(k.key || chr(31) || pg_backend_pid()::text || chr(31)
                || (extract(epoch FROM now()) * 1000000)::bigint::text || chr(31) || acting_role
                || chr(31) || coalesce(current_setting('karte.user', true), '')
                || chr(31) || coalesce(current_setting('karte.district', true), '')
                || chr(31) || coalesce(current_setting('karte.municipality', true), '')
                || chr(31) || k.key, 'UTF8')), 'hex')
            FROM {P}.context_key k
        $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {P}.context_mac(text) FROM PUBLIC")
    # the mark of a sealed transaction that nothing can take off before its end: the lock on the
    # key's table that reading the key took (ACCESS SHARE: it blocks nobody); the application may
    # not take it itself (it has no privilege on the table) nor release it
    held = (f"EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'relation' "
            f"AND pid = pg_backend_pid() AND relation = '{P}.context_key'::regclass "
            "AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.seal_context() RETURNS boolean
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            acting_role text := current_setting('role');
        BEGIN
            IF coalesce(current_setting('karte.seal', true), '') <> '' OR {held} THEN
                RAISE EXCEPTION 'karte: the acting user of this transaction is already set'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            LOCK TABLE {P}.context_key IN ACCESS SHARE MODE;
            PERFORM set_config('karte.sealed_role', acting_role, true);
            PERFORM set_config('karte.seal', {P}.context_mac(acting_role), true);
            RETURN true;
        END $$""")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.context_ok(acting name) RETURNS boolean
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            seal text := coalesce(current_setting('karte.seal', true), '');
            sealed_role text := coalesce(current_setting('karte.sealed_role', true), '');
        BEGIN
            IF seal = '' THEN
                IF {held} THEN
                    RAISE EXCEPTION 'karte: the acting user of this transaction was changed'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN true;  -- a transaction the store did not set up (raw SQL)
            END IF;
            IF seal IS DISTINCT FROM {P}.context_mac(sealed_role) THEN
                RAISE EXCEPTION 'karte: the acting user of this transaction was changed'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF acting::text IN ({", ".join(f"'{r}'" for r in (*LEVEL_ROLES, PIPELINE))})
                    AND acting::text IS DISTINCT FROM sealed_role THEN
                RAISE EXCEPTION 'karte: the role of this transaction was changed'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN true;
        END $$""")
    everyone = ", ".join((*LEVEL_ROLES, PIPELINE, "karte_counts"))
    op.execute(f"REVOKE ALL ON FUNCTION {S}.seal_context() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.seal_context() TO {everyone}")
    # every role that reads a protected table runs the check, the owners of SECURITY DEFINER
    # functions included (it answers true or raises, and reveals nothing)
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.context_ok(name) TO PUBLIC")
    # the store sets the role and seals in one statement: the login resolves the name and is
    # checked for EXECUTE before the statement switches to the level's role. Nothing else: the
    # login still has no privilege on any table (and sealing as itself makes its transaction useless)
    op.execute(f"GRANT USAGE ON SCHEMA {S} TO karte_app")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.seal_context() TO karte_app")


def _checked_policies() -> None:
    """Every policy of the schema also requires :data:`CHECK` (the originals kept for the downgrade)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT tablename, policyname, qual, with_check FROM pg_policies WHERE schemaname = :s"),
        {"s": S}).fetchall()
    for table, policy, using, check in rows:
        if "context_ok" in f"{using} {check}":
            continue  # done before (idempotent)
        bind.execute(sa.text(f"INSERT INTO {P}.policy_backup VALUES (:t, :p, :u, :c) "
                             "ON CONFLICT DO NOTHING"), {"t": table, "p": policy, "u": using, "c": check})
        clauses = []
        if using is not None:
            clauses.append(f"USING (({using}) AND {CHECK})")
        if check is not None:
            clauses.append(f"WITH CHECK (({check}) AND {CHECK})")
        op.execute(f'ALTER POLICY "{policy}" ON {S}."{table}" ' + " ".join(clauses))


# -- the access log -------------------------------------------------------------------------------------

def _audit_from_database() -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.audit_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.at := now();
            NEW.actor := coalesce(nullif(current_setting('karte.user', true), ''), session_user);
            NEW.level := replace(current_user::text, 'karte_', '');
            NEW.db_user := session_user;
            RETURN NEW;
        END $$""")
    op.execute(f"CREATE OR REPLACE TRIGGER audit_log_stamp BEFORE INSERT ON {S}.audit_log "
               f"FOR EACH ROW EXECUTE FUNCTION {S}.audit_stamp()")


# -- keys ----------------------------------------------------------------------------------------------

def _keyed_tables() -> dict[str, str]:
    """table -> key, for every table with a unique (municipality_code, key) index."""
    rows = op.get_bind().execute(sa.text(
        "SELECT c.relname, i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND x.indisunique AND c.relkind = 'r'"), {"s": S}).fetchall()
    out = {}
    for table, index in rows:
        prefix = f"ux_{table}_{COLUMN}_"
        if index.startswith(prefix):
            out[table] = index[len(prefix):]
    return out


def _numbered_tables() -> dict[str, tuple[str, str]]:
    """table -> (key, id prefix), for every record table (its ``<table>_ids`` trigger's arguments)."""
    rows = op.get_bind().execute(sa.text(
        "SELECT c.relname, t.tgargs FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s "
        "AND t.tgname = c.relname || '_ids' AND t.tgnargs = 2"), {"s": S}).fetchall()
    out = {}
    for table, args in rows:
        key, prefix = bytes(args).split(b"\x00")[:2]
        out[table] = (key.decode(), prefix.decode())
    return out


def _key_guards() -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.keep_key() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (to_jsonb(NEW) -> TG_ARGV[0] IS DISTINCT FROM to_jsonb(OLD) -> TG_ARGV[0]
                    OR NEW.{COLUMN} IS DISTINCT FROM OLD.{COLUMN})
                    AND current_user::text LIKE 'karte\\_%'
                    AND current_user::text NOT IN ('{STAFF}', '{PIPELINE}') THEN
                RAISE EXCEPTION 'karte: a row''s key and municipality cannot be changed at this level'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END $$""")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.number_member_rows() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            seq regclass := pg_get_serial_sequence(format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME),
                                                   TG_ARGV[0])::regclass;
            n text;
        BEGIN
            IF current_setting('role') = '{MEMBER}' THEN
                n := nextval(seq)::text;
                NEW := jsonb_populate_record(NEW, jsonb_build_object(
                    TG_ARGV[0], TG_ARGV[1] || CASE WHEN length(n) < 6 THEN lpad(n, 6, '0') ELSE n END));
            END IF;
            RETURN NEW;
        END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.number_member_rows() FROM PUBLIC")
    for table, key in _keyed_tables().items():
        op.execute(f"CREATE OR REPLACE TRIGGER {table}_key_kept BEFORE UPDATE ON {S}.{table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {S}.keep_key('{key}')")
    for table, (key, prefix) in _numbered_tables().items():
        op.execute(f"CREATE OR REPLACE TRIGGER {table}_member_ids BEFORE INSERT ON {S}.{table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {S}.number_member_rows('{key}', '{prefix}')")


def upgrade() -> None:
    for name in TABLES:
        _table(name)
        _indexes_and_triggers(name)
        _grants(name)
        _policies(name)
    op.execute(f"GRANT USAGE ON SEQUENCE {S}.row_version TO {PUBLIC}, {PREFECTURE}")
    # the login form (as the public) and aggregate-only accounts open these layers on their first
    # row; the function only enters an existing record table in the catalogue
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.open_record_layer(text, text, text[]) "
               f"TO {PUBLIC}, {PREFECTURE}")
    _private()
    _functions()
    _checked_policies()
    _audit_from_database()
    _key_guards()


def downgrade() -> None:
    bind = op.get_bind()
    for table, _ in _keyed_tables().items():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_key_kept ON {S}.{table}")
    for table in _numbered_tables():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_member_ids ON {S}.{table}")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.keep_key()")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.number_member_rows()")
    op.execute(f"DROP TRIGGER IF EXISTS audit_log_stamp ON {S}.audit_log")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.audit_stamp()")
    for name, (key, _, _) in TABLES.items():
        op.execute(f"DELETE FROM {S}.layer_catalog WHERE layer = '{name}'")
        op.execute(f"DROP TABLE IF EXISTS {S}.{name}")  # its sequence, triggers and policies with it
        op.execute(f"DROP SEQUENCE IF EXISTS {S}.{name}_{key}_seq")
    if sa.inspect(bind).has_table("policy_backup", schema=P):
        for table, policy, using, check in bind.execute(sa.text(
                f"SELECT tablename, policyname, qual, with_check FROM {P}.policy_backup")).fetchall():
            exists = bind.execute(sa.text("SELECT 1 FROM pg_policies WHERE schemaname = :s AND "
                                          "tablename = :t AND policyname = :p"),
                                  {"s": S, "t": table, "p": policy}).fetchone()
            if exists is None:
                continue
            clauses = ([f"USING ({using})"] if using is not None else []) + (
                [f"WITH CHECK ({check})"] if check is not None else [])
            op.execute(f'ALTER POLICY "{policy}" ON {S}."{table}" ' + " ".join(clauses))
    op.execute(f"REVOKE USAGE ON SCHEMA {S} FROM karte_app")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.context_ok(name)")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.seal_context()")
    op.execute(f"DROP SCHEMA IF EXISTS {P} CASCADE")
    op.execute(f"REVOKE USAGE ON SEQUENCE {S}.row_version FROM {PUBLIC}, {PREFECTURE}")
    op.execute(f"REVOKE EXECUTE ON FUNCTION {S}.open_record_layer(text, text, text[]) "
               f"FROM {PUBLIC}, {PREFECTURE}")
