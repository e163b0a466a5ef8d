"""The tables of years: the karte's history per fiscal year, indicators and the plan table (issue 12).

Revision ID: 0005
Revises: 0004

Written with the change that adds these tables; until then this revision changes nothing.
Frozen once released: later changes go in new revisions.
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
