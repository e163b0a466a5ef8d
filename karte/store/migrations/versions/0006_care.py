"""The tables of households of concern and safety-net meetings (issue 13).

Revision ID: 0006
Revises: 0005

Written with the change that adds these tables; until then this revision changes nothing.
Frozen once released: later changes go in new revisions.
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
