"""Initial schema: tasks, attempts, workers, tokens, blobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "orch_tasks",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("depends", sa.JSON(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("gpus", sa.JSON(), nullable=False),
        sa.Column("payload_key", sa.String(length=255), nullable=True),
        sa.Column("payload_size", sa.BigInteger(), nullable=False),
        sa.Column("result_key", sa.String(length=255), nullable=True),
        sa.Column("result_size", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=64), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("retry_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orch_tasks")),
    )
    op.create_index(op.f("ix_orch_tasks_seq"), "orch_tasks", ["seq"], unique=True)
    op.create_index("ix_orch_tasks_owner_seq", "orch_tasks", ["owner", "seq"], unique=False)
    op.create_index("ix_orch_tasks_state", "orch_tasks", ["state"], unique=False)

    op.create_table(
        "orch_attempts",
        sa.Column("task_id", sa.String(length=26), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("gpus", sa.JSON(), nullable=False),
        sa.Column("scheduled_at", sa.Double(), nullable=True),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["orch_tasks.id"],
            name=op.f("fk_orch_attempts_task_id_orch_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "number", name=op.f("pk_orch_attempts")),
    )

    op.create_table(
        "orch_workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("connected_at", sa.Double(), nullable=True),
        sa.Column("last_seen", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orch_workers")),
    )

    op.create_table(
        "orch_tokens",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orch_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_orch_tokens_secret_hash")),
    )

    op.create_table(
        "orch_blobs",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.String(length=26), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_orch_blobs")),
    )
    op.create_index(op.f("ix_orch_blobs_task_id"), "orch_blobs", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_orch_blobs_task_id"), table_name="orch_blobs")
    op.drop_table("orch_blobs")
    op.drop_table("orch_tokens")
    op.drop_table("orch_workers")
    op.drop_table("orch_attempts")
    op.drop_index("ix_orch_tasks_state", table_name="orch_tasks")
    op.drop_index("ix_orch_tasks_owner_seq", table_name="orch_tasks")
    op.drop_index(op.f("ix_orch_tasks_seq"), table_name="orch_tasks")
    op.drop_table("orch_tasks")
