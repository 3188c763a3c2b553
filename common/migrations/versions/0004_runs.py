"""Runs: one experiment on several agents, and the comparison each stored when it ended.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("experiment_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        timestamp("created_time"),
        timestamp("ended_time", nullable=True),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("agents", sa.Text(), nullable=False),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("job_ids", sa.Text(), nullable=False),
        sa.Column("comparison", sa.Text(), nullable=True),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_created_time_run_id", "runs", ["created_time", "run_id"])
    op.create_index("ix_runs_experiment_id", "runs", ["experiment_id"])


def downgrade() -> None:
    op.drop_table("runs")
