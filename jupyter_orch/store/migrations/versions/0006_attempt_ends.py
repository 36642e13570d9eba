"""The GPU timeline reads the attempts of a window of time: an index on their end.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

"""

from __future__ import annotations

from typing import Sequence, Union

from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_orch_attempts_ended_at", "orch_attempts", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_orch_attempts_ended_at", table_name="orch_attempts")
