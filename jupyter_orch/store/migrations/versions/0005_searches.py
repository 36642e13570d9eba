"""Hyperparameter searches: orch_searches.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "orch_searches",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("search_state", sa.JSON(), nullable=False),
        sa.Column("payload_key", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orch_searches")),
    )
    op.create_index("ix_orch_searches_owner_id", "orch_searches", ["owner", "id"])
    op.create_index("ix_orch_searches_state", "orch_searches", ["state"])


def downgrade() -> None:
    op.drop_index("ix_orch_searches_state", table_name="orch_searches")
    op.drop_index("ix_orch_searches_owner_id", table_name="orch_searches")
    op.drop_table("orch_searches")
