"""Workers shared with a group: orch_tokens.group_name.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("orch_tokens") as batch:
        batch.add_column(sa.Column("group_name", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orch_tokens") as batch:
        batch.drop_column("group_name")
