"""The tables of years: the karte's history per fiscal year, indicators and the plan table (issue 12).

Revision ID: 0005
Revises: 0004
Create Date: 2027-02-01

Seven record layers (``karte.domain.history.LAYERS``), none of them personal:

* ``history``: one row per district (and one for the whole municipality, ``district_code`` empty)
  per fiscal year: the karte's figures then, with their sources and reference dates. Written by
  the build, by imports and by the import of an earlier census table; city staff (and the
  pipeline) only.
* ``indicators`` (definitions), ``indicator_values`` (values and targets per fiscal year),
  ``welfare_plans``, ``plan_items``, ``plan_marks`` (the cells of the annual plan table) and
  ``plan_evaluations``: written by city staff and coordinators (the 「計画・指標」 page, ``karte plan
  import``), every row write in the access log (the store writes it in the same transaction).

Each table follows 0003/0004 (and ``karte.store.postgis_models._record_model``, which builds the
model from the registry): the registry's columns plus ``version`` / ``updated_at`` /
``updated_by`` / ``fid`` / ``extra``; ``municipality_code`` defaulting to the acting user's;
unique (``municipality_code``, key); an index on the municipality and on ``district_code``; the
row-version trigger; the id sequence and the statement trigger that moves it past inserted ids.

Grants: ``SELECT`` to every level (the figures are aggregates, shown to the public suppressed by
the services; the plan is public; the prefecture level and the public read every municipality's
aggregates); ``INSERT``/``UPDATE``/``DELETE`` to the writers (city staff, and coordinators on the
plan layers); the pipeline role is city staff. The store addresses rows by key within the acting
user's municipality and fills an appended row's municipality with the user's.

Row-level security (:data:`ROW_LEVEL_SECURITY`, **off in this revision**): forced, every level
reads every row, writers write their own municipality's rows only (``municipality_code =
karte.municipality``), coordinators insert only as themselves, the pipeline every municipality.
It is written below but not applied, because PostgreSQL refuses ``COPY FROM`` on a table under
row-level security ("COPY FROM not supported with row-level security") and
``karte.store.postgis._replace`` loads every table that is not personal with ``COPY``: with it
on, every build (which writes ``history``), every restore of a store holding these layers and the
demo's import into PostGIS would fail. This revision was released so; ``_replace`` now loads every
record layer through its ``INSERT … SELECT`` path and migration 0011 turns these policies on (with
0010's sealed-context check).

Idempotent: every step checks or replaces what it creates. The downgrade drops the tables (their
rows, sequences, triggers and policies with them).

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "karte"
COLUMN = "municipality_code"
STAFF, COORDINATOR, MEMBER, PUBLIC = (
    "karte_city_staff",
    "karte_coordinator",
    "karte_district_member",
    "karte_public",
)
PREFECTURE, PIPELINE = "karte_prefecture", "karte_pipeline"
EVERYONE = f"{STAFF}, {COORDINATOR}, {MEMBER}, {PUBLIC}, {PREFECTURE}"
OWN_MUNICIPALITY = f"{COLUMN} = nullif(current_setting('karte.municipality', true), '')"
AS_THEMSELVES = "updated_by = current_setting('karte.user', true)"
DEFAULT = "nullif(current_setting('karte.municipality', true), '')"

#: As karte.domain.history.LAYERS declares them: table -> (key, id prefix, writers, columns).
#: The municipality column is every layer table's own (added below with its default).
_T, _I, _F, _B = "text", "integer", "float", "boolean"
PLAN = (STAFF, COORDINATOR)
#: Apply the row-level security policies (see the module docstring: off until the store loads these
#: tables without COPY).
ROW_LEVEL_SECURITY = False
TABLES: dict[str, tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "history": (
        "history_id",
        "H",
        (STAFF,),
        (
            ("history_id", _T),
            ("district_code", _T),
            ("fiscal_year", _I),
            ("kind", _T),
            ("data_date", _T),
            ("census_year", _I),
            ("synthetic", _B),
            ("figures", _T),
            ("sources", _T),
            ("recorded_at", _T),
        ),
    ),
    "indicators": (
        "indicator_id",
        "I",
        PLAN,
        (
            ("indicator_id", _T),
            ("district_code", _T),
            ("key", _T),
            ("name", _T),
            ("unit", _T),
            ("scope", _T),
            ("source", _T),
            ("computed", _T),
            ("baseline_year", _I),
            ("plan", _T),
            ("program", _T),
            ("note", _T),
            ("position", _I),
        ),
    ),
    "indicator_values": (
        "value_id",
        "V",
        PLAN,
        (
            ("value_id", _T),
            ("district_code", _T),
            ("indicator_key", _T),
            ("fiscal_year", _I),
            ("kind", _T),
            ("value", _F),
            ("note", _T),
        ),
    ),
    "welfare_plans": (
        "plan_id",
        "W",
        PLAN,
        (
            ("plan_id", _T),
            ("district_code", _T),
            ("key", _T),
            ("name", _T),
            ("first_year", _I),
            ("last_year", _I),
            ("source", _T),
            ("note", _T),
            ("layout", _T),
        ),
    ),
    "plan_items": (
        "item_id",
        "A",
        PLAN,
        (
            ("item_id", _T),
            ("district_code", _T),
            ("plan_key", _T),
            ("position", _I),
            ("goal_no", _T),
            ("goal", _T),
            ("promotion_no", _T),
            ("promotion", _T),
            ("item_no", _T),
            ("item", _T),
            ("section", _T),
            ("merged_into", _T),
        ),
    ),
    "plan_marks": (
        "mark_id",
        "M",
        PLAN,
        (
            ("mark_id", _T),
            ("district_code", _T),
            ("plan_key", _T),
            ("item_id", _T),
            ("fiscal_year", _I),
            ("marks", _T),
        ),
    ),
    "plan_evaluations": (
        "evaluation_id",
        "E",
        PLAN,
        (
            ("evaluation_id", _T),
            ("district_code", _T),
            ("plan_key", _T),
            ("goal_no", _T),
            ("fiscal_year", _I),
            ("kind", _T),
            ("achievements", _T),
            ("issues", _T),
            ("evaluator", _T),
        ),
    ),
}
_SA = {_T: sa.Text, _I: sa.BigInteger, _F: sa.Float, _B: sa.Boolean}


def _table(table: str, columns: tuple[tuple[str, str], ...]) -> None:
    if sa.inspect(op.get_bind()).has_table(table, schema=S):
        return
    op.create_table(
        table,
        *[sa.Column(name, _SA[kind]()) for name, kind in columns],
        sa.Column(COLUMN, sa.Text, server_default=sa.text(DEFAULT)),
        sa.Column(
            "version",
            sa.BigInteger,
            nullable=False,
            server_default=sa.text(f"nextval('{S}.row_version'::regclass)"),
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_by", sa.Text),
        sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("extra", JSONB),
        schema=S,
    )


def _indexes_and_triggers(table: str, key: str, prefix: str) -> None:
    op.execute(
        f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{table}_{COLUMN}_{key} ON {S}.{table} ({COLUMN}, {key})"
    )
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_{COLUMN} ON {S}.{table} ({COLUMN})")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_district_code ON {S}.{table} (district_code)")
    op.execute(
        f"CREATE OR REPLACE TRIGGER {table}_version BEFORE UPDATE ON {S}.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION {S}.bump_version()"
    )
    seq = f"{table}_{key}_seq"
    op.execute(f"CREATE SEQUENCE IF NOT EXISTS {S}.{seq} OWNED BY {S}.{table}.{key}")
    op.execute(
        f"CREATE OR REPLACE TRIGGER {table}_ids AFTER INSERT ON {S}.{table} "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {S}.advance_record_id('{key}', '{prefix}')"
    )


def _policy(table: str, name: str, head: str, using: str | None, check: str | None) -> None:
    op.execute(f"DROP POLICY IF EXISTS {name} ON {S}.{table}")
    op.execute(
        f"CREATE POLICY {name} ON {S}.{table} {head}"
        + (f" USING ({using})" if using else "")
        + (f" WITH CHECK ({check})" if check else "")
    )


def _grants(table: str, key: str, writers: tuple[str, ...]) -> None:
    op.execute(f"REVOKE ALL ON {S}.{table} FROM PUBLIC")
    op.execute(f"GRANT SELECT ON {S}.{table} TO {EVERYONE}")
    op.execute(f"GRANT INSERT, UPDATE, DELETE ON {S}.{table} TO {', '.join(writers)}")
    seq = f"{S}.{table}_{key}_seq"
    op.execute(f"REVOKE ALL ON SEQUENCE {seq} FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SEQUENCE {seq} TO {', '.join(writers)}")


def _security(table: str, writers: tuple[str, ...]) -> None:
    op.execute(f"ALTER TABLE {S}.{table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.{table} FORCE ROW LEVEL SECURITY")
    # aggregates and a published plan: every level reads every municipality's rows
    _policy(table, "everyone_read", f"FOR SELECT TO {EVERYONE}", "true", None)
    _policy(table, "city_staff_write", f"TO {STAFF}", OWN_MUNICIPALITY, OWN_MUNICIPALITY)
    if COORDINATOR in writers:
        _policy(
            table,
            "coordinator_insert",
            f"FOR INSERT TO {COORDINATOR}",
            None,
            f"{OWN_MUNICIPALITY} AND {AS_THEMSELVES}",
        )
        _policy(table, "coordinator_edit", f"FOR UPDATE TO {COORDINATOR}", OWN_MUNICIPALITY, OWN_MUNICIPALITY)
        _policy(table, "coordinator_delete", f"FOR DELETE TO {COORDINATOR}", OWN_MUNICIPALITY, None)
    # the store's own trusted user (build, imports, restores): every municipality
    _policy(table, "pipeline_all", f"TO {PIPELINE}", "true", "true")


def upgrade() -> None:
    for table, (key, prefix, writers, columns) in TABLES.items():
        _table(table, columns)
        _indexes_and_triggers(table, key, prefix)
        _grants(table, key, writers)
        if ROW_LEVEL_SECURITY:
            _security(table, writers)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {S}.{table} CASCADE")
