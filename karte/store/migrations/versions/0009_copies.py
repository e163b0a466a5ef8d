"""The tables of the hand-out ledger of register copies (issue 20).

Revision ID: 0009
Revises: 0008

Written with the change that adds these tables; until then this revision changes nothing.
Frozen once released: later changes go in new revisions.
"""

from __future__ import annotations

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
