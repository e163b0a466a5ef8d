"""The tables of 地域福祉サポーター, help requests, activities and the points ledger (issue 14).

Revision ID: 0007
Revises: 0006

Written with the change that adds these tables; until then this revision changes nothing.
Frozen once released: later changes go in new revisions.
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
