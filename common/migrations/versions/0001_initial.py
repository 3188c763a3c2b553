"""Agents, experiments, jobs (the four per-agent sets), results and counters.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = sa.text("job_set = 'running'")
SET_MATCHES_STATUS = (
    "(status = 'queued' AND job_set = 'queued')"
    " OR (status IN ('assigned', 'running') AND job_set = 'running')"
    " OR (status = 'completed' AND job_set = 'completed')"
    " OR (status IN ('failed', 'cancelled', 'timeout') AND job_set = 'failed')"
)


def timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("agent_url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        timestamp("registered_at"),
        sa.Column("info", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agents"),
    )
    op.create_index("ix_agents_status", "agents", ["status"])
    op.create_index("ix_agents_registered_at", "agents", ["registered_at"])

    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        timestamp("created_at"),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_experiments"),
    )
    op.create_index("ix_experiments_created_at", "experiments", ["created_at"])

    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("experiment_id", sa.String(128), nullable=False),
        timestamp("created_time"),
        sa.Column("status", sa.String(16), nullable=False),
        timestamp("status_timestamp"),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("job_set", sa.String(16), nullable=False),
        sa.Column("queue_position", sa.BigInteger(), nullable=True),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("job_id", name="pk_jobs"),
        sa.CheckConstraint(SET_MATCHES_STATUS, name="ck_jobs_set_matches_status"),
    )
    op.create_index("ix_jobs_agent_id_job_set", "jobs", ["agent_id", "job_set"])
    op.create_index("ix_jobs_agent_id_status", "jobs", ["agent_id", "status"])
    op.create_index("ix_jobs_experiment_id", "jobs", ["experiment_id"])
    op.create_index("ix_jobs_created_time_job_id", "jobs", ["created_time", "job_id"])
    op.create_index("ix_jobs_queue_position", "jobs", ["queue_position"], unique=True)
    # An agent never has two running jobs, whatever the code above the database does.
    op.create_index(
        "uq_jobs_one_running_per_agent",
        "jobs",
        ["agent_id"],
        unique=True,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )

    op.create_table(
        "results",
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("experiment_id", sa.String(128), nullable=False),
        timestamp("saved_at"),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_results"),
    )
    op.create_index("ix_results_experiment_id", "results", ["experiment_id"])

    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )


def downgrade() -> None:
    for table in ("counters", "results", "jobs", "experiments", "agents"):
        op.drop_table(table)
