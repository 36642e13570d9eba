"""Workflows: runs, the step cache, schedules.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "orch_runs",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("run_dir", sa.Text(), nullable=False),
        sa.Column("schedule_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orch_runs")),
    )
    op.create_index("ix_orch_runs_owner_id", "orch_runs", ["owner", "id"])
    op.create_index("ix_orch_runs_state", "orch_runs", ["state"])
    op.create_table(
        "orch_step_cache",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(26), nullable=False),
        sa.Column("result_key", sa.String(255), nullable=True),
        sa.Column("result_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_orch_step_cache")),
    )
    op.create_table(
        "orch_schedules",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("workflow", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("last_fired_at", sa.Double(), nullable=True),
        sa.Column("last_run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orch_schedules")),
    )


def downgrade() -> None:
    op.drop_table("orch_schedules")
    op.drop_table("orch_step_cache")
    op.drop_index("ix_orch_runs_state", table_name="orch_runs")
    op.drop_index("ix_orch_runs_owner_id", table_name="orch_runs")
    op.drop_table("orch_runs")
