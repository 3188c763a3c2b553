"""The tables of the server's record; Alembic migrations create them, never `create_all`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from common.storage.types import JSONText, UTCDateTime

# Named constraints, so migrations and error messages can refer to them on both databases.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ONE_RUNNING_JOB_INDEX = "uq_jobs_one_running_per_agent"
RUNNING_PREDICATE = "job_set = 'running'"

# The set each status belongs to, as SQL: the schema refuses a row whose set contradicts it.
SET_MATCHES_STATUS = (
    "(status = 'queued' AND job_set = 'queued')"
    " OR (status IN ('assigned', 'running') AND job_set = 'running')"
    " OR (status = 'completed' AND job_set = 'completed')"
    " OR (status IN ('failed', 'cancelled', 'timeout') AND job_set = 'failed')"
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(128), primary_key=True),
    Column("agent_url", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    # The whole RegisteredAgentInfo; the `status` column above is authoritative for its status.
    Column("info", JSONText, nullable=False),
    Index(None, "status"),
    Index(None, "registered_at"),
)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("spec", JSONText, nullable=False),
    Index(None, "created_at"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(128), primary_key=True),
    # No foreign keys: a job outlives its agent's registration, and its finished history
    # outlives its experiment.
    Column("agent_id", String(128), nullable=False),
    Column("experiment_id", String(128), nullable=False),
    Column("created_time", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_timestamp", UTCDateTime, nullable=False),
    Column("status_message", Text, nullable=False),
    # The status's optional fields (stage, progress, error type, attempt); NULL for none.
    Column("status_details", JSONText, nullable=True),
    Column("job_set", String(16), nullable=False),
    # Drawn from `counters` each time a job enters the queued set; NULL outside it.
    Column("queue_position", BigInteger, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(SET_MATCHES_STATUS, name="set_matches_status"),
    Index(None, "agent_id", "job_set"),
    Index(None, "agent_id", "status"),
    Index(None, "experiment_id"),
    Index(None, "created_time", "job_id"),
    Index(None, "queue_position", unique=True),
    Index(
        ONE_RUNNING_JOB_INDEX,
        "agent_id",
        unique=True,
        sqlite_where=text(RUNNING_PREDICATE),
        postgresql_where=text(RUNNING_PREDICATE),
    ),
)

results = Table(
    "results",
    metadata,
    Column("job_id", String(128), primary_key=True),
    Column("experiment_id", String(128), nullable=False),
    Column("saved_at", UTCDateTime, nullable=False),
    Column("payload", JSONText, nullable=False),
    Index(None, "experiment_id"),
)

# One experiment on several agents; its jobs are rows of `jobs`, listed here in run order.
runs = Table(
    "runs",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("experiment_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_time", UTCDateTime, nullable=False),
    Column("ended_time", UTCDateTime, nullable=True),
    Column("repeats", Integer, nullable=False),
    Column("agents", JSONText, nullable=False),
    Column("selector", JSONText, nullable=True),
    Column("job_ids", JSONText, nullable=False),
    # The comparison as it stood when the run ended; NULL while it runs.
    Column("comparison", JSONText, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "created_time", "run_id"),
    Index(None, "experiment_id"),
)

# A job's log as its agent kept it, saved when the job ends so it outlives the agent.
job_logs = Table(
    "job_logs",
    metadata,
    Column("job_id", String(128), primary_key=True),
    Column("saved_at", UTCDateTime, nullable=False),
    Column("text", Text, nullable=False),
)

# When a job first took each status: its timeline (queued, assigned, running, its end).
job_steps = Table(
    "job_steps",
    metadata,
    Column("job_id", String(128), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
)

# Monotonic counters; a row lock on PostgreSQL orders queue positions by commit.
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

QUEUE_POSITION_COUNTER = "queue_position"

# What a client's Idempotency-Key claimed: the resource it made and the first answer.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(256), primary_key=True),
    Column("scope", String(32), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("resource_id", String(128), nullable=False),
    Column("response", JSONText, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "created_at"),
)

# Secrets the server makes for itself (the callback signing key), shared by every process.
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
