"""The tables of server-side sessions and the login throttle (issue 16).

Revision ID: 0010
Revises: 0009

Written with the change that adds these tables; until then this revision changes nothing.
Frozen once released: later changes go in new revisions.
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
