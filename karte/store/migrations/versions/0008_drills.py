"""The tables of individual evacuation plans, drills and disaster mode (issue 19).

Revision ID: 0008
Revises: 0007

Written with the change that adds these tables; until then this revision changes nothing.
Frozen once released: later changes go in new revisions.
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
