"""Row-level security on the tables of years (0005), and no layer with its own table in ``extra_layers``.

Revision ID: 0011
Revises: 0010
Create Date: 2027-03-01

**The tables of years** (``history``, ``indicators``, ``indicator_values``, ``welfare_plans``,
``plan_items``, ``plan_marks``, ``plan_evaluations``; none personal) get the row-level security
that 0005 wrote but left off (``ROW_LEVEL_SECURITY = False`` there, because the store loaded
them with ``COPY``, which PostgreSQL refuses under row-level security; ``karte.store.postgis``
now loads every record layer through ``INSERT … SELECT``). Forced, with these policies, each
ending with 0010's ``AND (SELECT karte.context_ok(CURRENT_USER))`` (who acts is sealed):

* ``everyone_read`` (``SELECT``, every level): every row (aggregates and a published plan; the
  prefecture level and the public read every municipality's, as before);
* ``city_staff_write``: city staff write the rows of their own municipality only (until now a
  whole-layer write by city staff of one municipality replaced every municipality's history);
* on the plan layers (``indicators`` … ``plan_evaluations``) coordinators insert rows of their
  municipality as themselves (``updated_by``) and edit and delete their municipality's rows;
* ``pipeline_all``: the store's trusted user (build, imports, restores), every municipality.

The grants stay 0005's (``SELECT`` to every level, writes to the writers).

**``extra_layers`` takes no layer that has a table of its own.** The generic table has no
row-level security; 0002, 0006, 0007 and 0008 each kept their names out of it with a check
constraint listing them, and 0009 (``copies``, ``copy_events``) and 0010 (``web_sessions``,
``login_attempts``) added none, so a personal layer could land there unprotected. A
``BEFORE INSERT OR UPDATE`` trigger now refuses (SQLSTATE 23514, ``check_violation``, as the
constraints) any row whose layer names a table of the ``karte`` schema, whichever revision made
that table, this one's successors included. The constraints stay (they cost nothing).

**0010 once more, first.** Revision 0010 was released as an empty placeholder before it was
written, so a database upgraded then is marked 0010 without its sessions, login attempts, sealed
context and key guards (a public account's login failed there: ``permission denied`` on the
sessions). 0010's upgrade is idempotent, so this revision runs it again before its own steps: on a
database that has it, nothing changes.

Idempotent: every step checks or replaces what it creates. The downgrade drops the trigger and
its function, the policies, and turns row-level security off on the seven tables again (what
0010 made stays: its own downgrade removes it).

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

S = "karte"
COLUMN = "municipality_code"
STAFF, COORDINATOR, MEMBER, PUBLIC = ("karte_city_staff", "karte_coordinator", "karte_district_member",
                                      "karte_public")
PREFECTURE, PIPELINE = "karte_prefecture", "karte_pipeline"
EVERYONE = f"{STAFF}, {COORDINATOR}, {MEMBER}, {PUBLIC}, {PREFECTURE}"
OWN_MUNICIPALITY = f"{COLUMN} = nullif(current_setting('karte.municipality', true), '')"
AS_THEMSELVES = "updated_by = current_setting('karte.user', true)"
#: 0010: every policy ends with this (evaluated once per statement).
CHECK = "(SELECT karte.context_ok(CURRENT_USER))"

#: 0005's tables, and whether coordinators write them (the plan layers).
TABLES = {"history": False, "indicators": True, "indicator_values": True, "welfare_plans": True,
          "plan_items": True, "plan_marks": True, "plan_evaluations": True}
POLICY_NAMES = ("everyone_read", "city_staff_write", "coordinator_insert", "coordinator_edit",
                "coordinator_delete", "pipeline_all")


def _checked(clause: str | None) -> str | None:
    return None if clause is None else f"({clause}) AND {CHECK}"


def _policy(table: str, name: str, head: str, using: str | None, check: str | None) -> None:
    using, check = _checked(using), _checked(check)
    op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{table}")
    op.execute(f"CREATE POLICY {name} ON {S}.{table} {head}"
               + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


def _security(table: str, coordinators: bool) -> None:
    op.execute(f"ALTER TABLE {S}.{table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{table} FORCE ROW LEVEL SECURITY")
    _policy(table, "everyone_read", f"FOR SELECT TO {EVERYONE}", "true", None)
    _policy(table, "city_staff_write", f"TO {STAFF}", OWN_MUNICIPALITY, OWN_MUNICIPALITY)
    if coordinators:
        _policy(table, "coordinator_insert", f"FOR INSERT TO {COORDINATOR}", None,
                f"{OWN_MUNICIPALITY} AND {AS_THEMSELVES}")
        _policy(table, "coordinator_edit", f"FOR UPDATE TO {COORDINATOR}", OWN_MUNICIPALITY, OWN_MUNICIPALITY)
        _policy(table, "coordinator_delete", f"FOR DELETE TO {COORDINATOR}", OWN_MUNICIPALITY, None)
    _policy(table, "pipeline_all", f"TO {PIPELINE}", "true", "true")


def _generic_table_guard() -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.refuse_modelled_layer() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = TG_TABLE_SCHEMA AND c.relname = NEW.layer
                       AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) THEN
                RAISE EXCEPTION 'karte: layer % has a table of its own and cannot be kept in extra_layers',
                    NEW.layer USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$""")
    op.execute(f"CREATE OR REPLACE TRIGGER extra_layers_not_modelled BEFORE INSERT OR UPDATE OF layer "
               f"ON {S}.extra_layers FOR EACH ROW EXECUTE FUNCTION {S}.refuse_modelled_layer()")


def upgrade() -> None:
    # 0010 again (idempotent): a database marked 0010 by the empty placeholder gets it now
    importlib.import_module("karte.store.migrations.versions.0010_sessions").upgrade()
    for table, coordinators in TABLES.items():
        _security(table, coordinators)
    _generic_table_guard()


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS extra_layers_not_modelled ON {S}.extra_layers")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.refuse_modelled_layer()")
    for table in TABLES:
        for name in POLICY_NAMES:
            op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{table}")
        op.execute(f"ALTER TABLE {S}.{table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {S}.{table} DISABLE ROW LEVEL SECURITY")
