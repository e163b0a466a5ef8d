"""The yearly history moves the build stamp: ``history`` gets the snapshot stamp trigger.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

Every district and city page shows the last five fiscal years (``karte.services.history.trend``),
read from ``history``. Reading and decoding the whole table on every request cost about two
thirds of a public page. The rows change only by whole-layer writes (a build's yearly record, an
import of past censuses), so the build snapshot keeps them (``karte.domain.history``: the layer is
a snapshot layer) and every write to ``history`` must change the stamp, as 0003 does for the built
layers: a ``BEFORE … FOR EACH STATEMENT`` trigger calling ``karte.touch_snapshot_stamp()``.

Idempotent (``CREATE OR REPLACE TRIGGER``); the downgrade drops the trigger.

Frozen: later changes go in new revisions.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

S = "karte"
TABLE = "history"


def upgrade() -> None:
    op.execute(f"CREATE OR REPLACE TRIGGER snapshot_stamp BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
               f"ON {S}.{TABLE} FOR EACH STATEMENT EXECUTE FUNCTION {S}.touch_snapshot_stamp()")


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS snapshot_stamp ON {S}.{TABLE}")
