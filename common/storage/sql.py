"""The StorageBackend on SQLAlchemy 2 async: a SQLite file by default, PostgreSQL at scale.

One module past 400 lines on purpose: it is one class whose methods share its transaction and
locking rules (`_read`, `_write`, `_put_job`); split by area it would scatter those rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, Select, and_, delete, exists, func, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.comparison import Comparison
from common.models import (
    TERMINAL_JOB_STATUSES,
    AgentStatusEnum,
    ExperimentSpec,
    JobInfo,
    JobStatus,
    JobStatusEnum,
    JobStep,
    RegisteredAgentInfo,
    utcnow,
)
from common.runs import RunRecord, RunStatus
from common.settings import StorageSettings
from common.storage.base import (
    AlreadyExistsError,
    ConflictError,
    IdempotencyClaim,
    JobSet,
    NotFoundError,
    StorageBackend,
    StorageError,
    job_set_for,
)
from common.storage.engine import READ_OPTION, WRITE_OPTION, create_engine
from common.storage.migrate import upgrade_schema
from common.storage.schema import (
    ONE_RUNNING_JOB_INDEX,
    QUEUE_POSITION_COUNTER,
    agents,
    counters,
    experiments,
    idempotency_keys,
    job_logs,
    job_steps,
    jobs,
    runs,
    server_secrets,
)
from common.storage.schema import results as results_table

HEALTH_CHECK_TIMEOUT_S = 5.0
IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)
_UNFINISHED_SETS = (JobSet.QUEUED.value, JobSet.RUNNING.value)
_TERMINAL = sorted(status.value for status in TERMINAL_JOB_STATUSES)


class SQLStorageBackend(StorageBackend):
    """Agents, experiments, jobs and results in one SQL database.

    The four per-agent job sets are one `jobs` table: a job's set follows from its status
    (`job_set_for`), so every stored job is in exactly one set, and the schema checks both
    that and "at most one running job per agent". Every writer honours the same two rules as
    `record_job_status`: a job in a terminal state keeps it, and repeating a write changes
    nothing. `remove_queued_job` deletes the job's row (a stored job is always in some set);
    `record_job_status` moves a job and keeps its history; results are never touched.
    """

    def __init__(self, settings: StorageSettings | None = None) -> None:
        self._settings = settings or StorageSettings()
        self._engine = create_engine(self._settings)
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"storage runs on SQLite or PostgreSQL, not {self.dialect}")
        self._writer = self._engine.execution_options(**{WRITE_OPTION: True})
        # Every read is one statement: on SQLite it needs no transaction around it, which saves
        # two round trips to the driver's thread per read (a third of a read's cost).
        self._reader = (
            self._engine.execution_options(**{READ_OPTION: True})
            if self.dialect == "sqlite"
            else self._engine
        )
        # SQLite admits one writer at a time: queue this process's writers here instead of
        # letting them wait on the file lock (other processes still wait on busy_timeout).
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    # Lifecycle

    async def initialize(self) -> None:
        async with self._lock():
            await upgrade_schema(self._engine)

    async def close(self) -> None:
        await self._engine.dispose()

    async def health_check(self) -> bool:
        try:
            async with asyncio.timeout(HEALTH_CHECK_TIMEOUT_S), self._engine.connect() as conn:
                return (await conn.execute(select(1))).scalar_one() == 1
        except Exception:
            return False

    # Agents

    async def register_agent(self, agent: RegisteredAgentInfo) -> None:
        async with self._write(duplicate=f"agent {agent.agent_id} is already registered") as conn:
            await conn.execute(
                agents.insert().values(
                    agent_id=agent.agent_id,
                    agent_url=agent.agent_url,
                    status=agent.status.value,
                    registered_at=agent.registered_at,
                    info=agent.model_dump(mode="json"),
                )
            )

    async def get_agent(self, agent_id: str) -> RegisteredAgentInfo:
        async with self._read() as conn:
            row = (await conn.execute(_agents_query().where(agents.c.agent_id == agent_id))).first()
        if row is None:
            raise NotFoundError(f"agent {agent_id} is not registered")
        return _agent(row)

    async def list_agents(self) -> list[RegisteredAgentInfo]:
        async with self._read() as conn:
            rows = (await conn.execute(_agents_query())).all()
        return [_agent(row) for row in rows]

    async def update_agent(self, agent: RegisteredAgentInfo) -> None:
        async with self._write() as conn:
            registered_at = (
                await conn.execute(
                    select(agents.c.registered_at)
                    .where(agents.c.agent_id == agent.agent_id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if registered_at is None:
                raise NotFoundError(f"agent {agent.agent_id} is not registered")
            kept = agent.model_copy(update={"registered_at": registered_at})
            await conn.execute(
                update(agents)
                .where(agents.c.agent_id == agent.agent_id)
                .values(
                    agent_url=kept.agent_url,
                    status=kept.status.value,
                    info=kept.model_dump(mode="json"),
                )
            )

    async def update_agent_status(self, agent_id: str, status: AgentStatusEnum) -> None:
        async with self._write() as conn:
            done = await conn.execute(
                update(agents).where(agents.c.agent_id == agent_id).values(status=status.value)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"agent {agent_id} is not registered")

    async def set_agent_notifies(self, agent_id: str, notifies: bool) -> None:
        async with self._write() as conn:
            info = (
                await conn.execute(
                    select(agents.c.info).where(agents.c.agent_id == agent_id).with_for_update()
                )
            ).scalar_one_or_none()
            if info is None or info.get("notifies") is notifies:
                return
            await conn.execute(
                update(agents)
                .where(agents.c.agent_id == agent_id)
                .values(info={**info, "notifies": notifies})
            )

    async def remove_agent(self, agent_id: str) -> None:
        async with self._write() as conn:
            done = await conn.execute(delete(agents).where(agents.c.agent_id == agent_id))
            if done.rowcount == 0:
                raise NotFoundError(f"agent {agent_id} is not registered")

    # Experiments

    async def create_experiment(self, spec: ExperimentSpec) -> ExperimentSpec:
        document = spec.model_dump(mode="json")
        async with self._write(duplicate=f"experiment {spec.id} exists already") as conn:
            await conn.execute(
                experiments.insert().values(
                    experiment_id=spec.id,
                    name=spec.name,
                    created_at=spec.created_at,
                    spec=document,
                )
            )
        return ExperimentSpec.model_validate(document)

    async def get_experiment(self, experiment_id: str) -> ExperimentSpec:
        query = select(experiments.c.spec).where(experiments.c.experiment_id == experiment_id)
        async with self._read() as conn:
            document = (await conn.execute(query)).scalar_one_or_none()
        if document is None:
            raise NotFoundError(f"experiment {experiment_id} does not exist")
        return ExperimentSpec.model_validate(document)

    async def list_experiments(self) -> list[ExperimentSpec]:
        query = select(experiments.c.spec).order_by(
            experiments.c.created_at, experiments.c.experiment_id
        )
        async with self._read() as conn:
            documents = (await conn.execute(query)).scalars().all()
        return [ExperimentSpec.model_validate(document) for document in documents]

    async def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment without unfinished jobs; its finished jobs and results stay."""
        async with self._write() as conn:
            locked = await conn.execute(
                select(experiments.c.experiment_id)
                .where(experiments.c.experiment_id == experiment_id)
                .with_for_update()
            )
            if locked.first() is None:
                raise NotFoundError(f"experiment {experiment_id} does not exist")
            unfinished = (
                await conn.execute(
                    select(func.count())
                    .select_from(jobs)
                    .where(
                        jobs.c.experiment_id == experiment_id,
                        jobs.c.job_set.in_(_UNFINISHED_SETS),
                    )
                )
            ).scalar_one()
            if unfinished:
                raise ConflictError(
                    f"experiment {experiment_id} has {unfinished} queued or running job(s); "
                    "cancel them or wait for them to finish before deleting it"
                )
            await conn.execute(
                delete(experiments).where(experiments.c.experiment_id == experiment_id)
            )

    # Jobs: the seed's per-agent sets

    async def get_running_job(self, agent_id: str) -> JobInfo | None:
        found = await self._jobs_in(agent_id, JobSet.RUNNING)
        return found[0] if found else None

    async def get_queued_jobs(self, agent_id: str) -> list[JobInfo]:
        return await self._jobs_in(agent_id, JobSet.QUEUED)

    async def remove_queued_job(self, agent_id: str, job_id: str) -> None:
        """Delete the queued job (see the class docstring); NotFoundError if it is not queued."""
        async with self._write() as conn:
            done = await conn.execute(
                delete(jobs).where(
                    jobs.c.job_id == job_id,
                    jobs.c.agent_id == agent_id,
                    jobs.c.job_set == JobSet.QUEUED.value,
                )
            )
            if done.rowcount == 0:
                raise NotFoundError(f"job {job_id} is not queued for agent {agent_id}")
            await conn.execute(delete(job_steps).where(job_steps.c.job_id == job_id))

    async def get_completed_jobs(self, agent_id: str) -> list[JobInfo]:
        return await self._jobs_in(agent_id, JobSet.COMPLETED)

    async def get_failed_jobs(self, agent_id: str) -> list[JobInfo]:
        return await self._jobs_in(agent_id, JobSet.FAILED)

    # Jobs: what the orchestration and the API need

    async def create_job(self, job: JobInfo) -> JobInfo:
        duplicate = f"job {job.job_id} exists already"
        async with self._write(duplicate=duplicate) as conn:
            # The id first: a taken id must read as such even when the agent is busy too.
            if await self._locked_job(conn, job.job_id) is not None:
                raise AlreadyExistsError(duplicate)
            await self._refuse_second_running(conn, job.agent_id, job.job_id, job.status.status)
            await conn.execute(jobs.insert().values(**await self._new_job_values(conn, job)))
            await self._record_step(conn, job.job_id, job.status)
        return job

    async def record_job_status(self, job_id: str, status: JobStatus) -> JobInfo:
        async with self._write() as conn:
            return await self._put_job(conn, job_id, status)

    async def record_job_end(
        self,
        job_id: str,
        status: JobStatus,
        results: dict[str, Any] | None,
        log: str | None = None,
    ) -> JobInfo:
        if results is not None and results.get("job_id") != job_id:
            raise ValueError(f"results for job {job_id} must name it as their `job_id`")
        async with self._write() as conn:
            # One transaction: the status first, as it finds the job and its experiment.
            stored = await self._put_job(conn, job_id, status)
            if results is not None:
                await conn.execute(self._results_upsert(stored.experiment_id, results))
            if log is not None:
                values = {"job_id": job_id, "saved_at": utcnow(), "text": log}
                await conn.execute(
                    self._insert(job_logs)
                    .values(**values)
                    .on_conflict_do_update(index_elements=[job_logs.c.job_id], set_=values)
                )
        return stored

    async def get_job_steps(self, job_id: str) -> list[JobStep]:
        query = (
            select(job_steps.c.status, job_steps.c.at)
            .where(job_steps.c.job_id == job_id)
            .order_by(job_steps.c.at, job_steps.c.status)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [JobStep(status=JobStatusEnum(row.status), at=row.at) for row in rows]

    async def get_job_log(self, job_id: str) -> str:
        query = select(job_logs.c.text).where(job_logs.c.job_id == job_id)
        async with self._read() as conn:
            found = (await conn.execute(query)).scalar_one_or_none()
        if found is None:
            raise NotFoundError(f"job {job_id} has no saved log")
        return str(found)

    async def enqueue_job(self, job: JobInfo, signal: Callable[[], Awaitable[None]]) -> JobInfo:
        async with self._write() as conn:
            row = await self._locked_job(conn, job.job_id)
            if row is None:
                # The position's counter row stays locked until commit: the signal goes out
                # while no other job can take the next position.
                values = await self._new_job_values(conn, job)
                await conn.execute(jobs.insert().values(**values))
                await self._record_step(conn, job.job_id, job.status)
                stored = job
            else:
                stored = _job(row)
                if (stored.agent_id, stored.experiment_id) != (job.agent_id, job.experiment_id):
                    raise ConflictError(f"job id {job.job_id} belongs to another job")
            if not stored.status.status.is_terminal:
                await signal()
        return stored

    async def abandon_job(self, job: JobInfo, message: str) -> JobInfo:
        failed = JobStatus(status=JobStatusEnum.FAILED, message=message, timestamp=utcnow())
        async with self._write() as conn:
            row = await self._locked_job(conn, job.job_id)
            if row is None:
                abandoned = job.model_copy(update={"status": failed})
                await conn.execute(
                    jobs.insert().values(**await self._new_job_values(conn, abandoned))
                )
                await self._record_step(conn, job.job_id, failed)
                return abandoned
            if row.status != JobStatusEnum.QUEUED.value:
                return _job(row)
            return await self._put_job(conn, job.job_id, failed)

    async def unfinished_job_counts(self) -> dict[str, int]:
        query = (
            select(jobs.c.agent_id, func.count())
            .where(jobs.c.job_set.in_(_UNFINISHED_SETS))
            .group_by(jobs.c.agent_id)
        )
        async with self._read() as conn:
            return {agent_id: int(n) for agent_id, n in (await conn.execute(query)).all()}

    async def get_job(self, job_id: str) -> JobInfo:
        async with self._read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.job_id == job_id))).first()
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        return _job(row)

    async def list_jobs(
        self,
        *,
        agent_id: str | None = None,
        experiment_id: str | None = None,
        status: JobStatusEnum | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Newest first (created_time, then job id, descending); ValueError on negative paging."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        query = select(jobs)
        if agent_id is not None:
            query = query.where(jobs.c.agent_id == agent_id)
        if experiment_id is not None:
            query = query.where(jobs.c.experiment_id == experiment_id)
        if status is not None:
            query = query.where(jobs.c.status == JobStatusEnum(status).value)
        query = query.order_by(jobs.c.created_time.desc(), jobs.c.job_id.desc())
        async with self._read() as conn:
            rows = (await conn.execute(query.limit(limit).offset(offset))).all()
        return [_job(row) for row in rows]

    # Results

    async def save_experiment_results(self, experiment_id: str, results: dict[str, Any]) -> None:
        async with self._write() as conn:
            await conn.execute(self._results_upsert(experiment_id, results))

    def _results_upsert(self, experiment_id: str, results: dict[str, Any]) -> Any:
        """Insert or replace the results of the job `results` names."""
        job_id = results.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError("results need a `job_id` string to be stored under")
        statement = self._insert(results_table).values(
            job_id=job_id, experiment_id=experiment_id, saved_at=utcnow(), payload=results
        )
        statement = statement.on_conflict_do_update(
            index_elements=[results_table.c.job_id],
            set_={
                "experiment_id": statement.excluded.experiment_id,
                "saved_at": statement.excluded.saved_at,
                "payload": statement.excluded.payload,
            },
        )
        return statement

    async def get_job_results(self, job_id: str) -> dict[str, Any]:
        query = select(results_table.c.payload).where(results_table.c.job_id == job_id)
        async with self._read() as conn:
            payload = (await conn.execute(query)).scalar_one_or_none()
        if payload is None:
            raise NotFoundError(f"no results are stored for job {job_id}")
        return payload

    async def list_results(self, experiment_id: str | None = None) -> list[dict[str, Any]]:
        """In the order they were last saved."""
        query = select(results_table.c.payload)
        if experiment_id is not None:
            query = query.where(results_table.c.experiment_id == experiment_id)
        query = query.order_by(results_table.c.saved_at, results_table.c.job_id)
        async with self._read() as conn:
            return list((await conn.execute(query)).scalars().all())

    # Submissions and the server's own secrets

    async def claim_idempotency_key(self, claim: IdempotencyClaim) -> IdempotencyClaim:
        now = utcnow()
        async with self._write() as conn:
            await conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.created_at < now - IDEMPOTENCY_KEY_LIFETIME
                )
            )
            values = claim.model_dump(exclude={"created_at"}) | {"created_at": now}
            await conn.execute(
                self._insert(idempotency_keys)
                .values(**values)
                .on_conflict_do_nothing(index_elements=[idempotency_keys.c.key])
            )
            row = (
                await conn.execute(
                    select(idempotency_keys).where(idempotency_keys.c.key == claim.key)
                )
            ).one()
        return IdempotencyClaim.model_validate(row._mapping)

    async def complete_idempotency_key(self, key: str, response: dict[str, Any]) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key == key, idempotency_keys.c.response.is_(None))
                .values(response=response)
            )

    async def forget_idempotency_key(self, key: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.key == key, idempotency_keys.c.response.is_(None)
                )
            )

    async def server_secret(self, name: str, make: Callable[[], str]) -> str:
        query = select(server_secrets.c.value).where(server_secrets.c.name == name)
        async with self._read() as conn:
            found = (await conn.execute(query)).scalar_one_or_none()
        if found is not None:
            return str(found)
        async with self._write() as conn:
            await conn.execute(
                self._insert(server_secrets)
                .values(name=name, value=make(), created_at=utcnow())
                .on_conflict_do_nothing(index_elements=[server_secrets.c.name])
            )
            return str((await conn.execute(query)).scalar_one())

    # Runs

    async def create_run(self, run: RunRecord) -> RunRecord:
        async with self._write(duplicate=f"run {run.run_id} exists already") as conn:
            await conn.execute(runs.insert().values(**_run_values(run), updated_at=utcnow()))
        return run

    async def get_run(self, run_id: str) -> RunRecord:
        async with self._read() as conn:
            row = (await conn.execute(_runs_query().where(runs.c.run_id == run_id))).first()
        if row is None:
            raise NotFoundError(f"run {run_id} does not exist")
        return _run(row)

    async def list_runs(
        self,
        *,
        experiment_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Newest first (created_time, then run id, descending); ValueError on negative paging."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        query = _runs_query()
        if experiment_id is not None:
            query = query.where(runs.c.experiment_id == experiment_id)
        if status is not None:
            query = query.where(runs.c.status == RunStatus(status).value)
        query = query.order_by(runs.c.created_time.desc(), runs.c.run_id.desc())
        async with self._read() as conn:
            rows = (await conn.execute(query.limit(limit).offset(offset))).all()
        return [_run(row) for row in rows]

    async def record_run_jobs(self, run_id: str, job_ids: list[str]) -> RunRecord:
        async with self._write() as conn:
            current = await self._locked_run(conn, run_id)
            if current.job_ids == job_ids:
                return current
            if current.status.ended:
                raise ConflictError(f"run {run_id} has ended ({current.status.value})")
            await conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(job_ids=list(job_ids), updated_at=utcnow())
            )
        return current.model_copy(update={"job_ids": list(job_ids)})

    async def get_run_jobs(self, run_id: str) -> list[JobInfo]:
        run = await self.get_run(run_id)
        if not run.job_ids:
            return []
        async with self._read() as conn:
            rows = (await conn.execute(select(jobs).where(jobs.c.job_id.in_(run.job_ids)))).all()
        found = {row.job_id: _job(row) for row in rows}
        return [found[job_id] for job_id in run.job_ids if job_id in found]

    async def record_run_end(
        self, run_id: str, status: RunStatus, comparison: Comparison
    ) -> RunRecord:
        if not RunStatus(status).ended:
            raise ValueError(f"a run ends completed or cancelled, not {status}")
        async with self._write() as conn:
            current = await self._locked_run(conn, run_id)
            if current.status.ended:
                return current
            ended = utcnow()
            await conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    status=status.value,
                    ended_time=ended,
                    comparison=comparison.model_dump(mode="json"),
                    updated_at=ended,
                )
            )
        return current.model_copy(update={"status": status, "ended_time": ended})

    async def get_run_comparison(self, run_id: str) -> Comparison | None:
        query = select(runs.c.comparison).where(runs.c.run_id == run_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise NotFoundError(f"run {run_id} does not exist")
        return None if row.comparison is None else Comparison.model_validate(row.comparison)

    async def _locked_run(self, conn: AsyncConnection, run_id: str) -> RunRecord:
        query = _runs_query().where(runs.c.run_id == run_id).with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFoundError(f"run {run_id} does not exist")
        return _run(row)

    # Transactions

    def _lock(self) -> Any:
        return self._write_lock if self._write_lock is not None else nullcontext()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self, *, duplicate: str | None = None) -> AsyncIterator[AsyncConnection]:
        """One write transaction; a constraint the database enforces becomes a typed error."""
        try:
            async with self._lock(), self._writer.begin() as conn:
                yield conn
        except IntegrityError as err:
            raise _typed_error(err, duplicate) from err

    def _insert(self, table: Any) -> Any:
        """INSERT with the dialect's ON CONFLICT clauses (the same API on both databases)."""
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)

    # Jobs: the one place a job's status and set change

    async def _put_job(self, conn: AsyncConnection, job_id: str, status: JobStatus) -> JobInfo:
        """Record `status` for the job and move it to that status's set.

        Row-locks the job, so concurrent writers of one job take turns on PostgreSQL.
        """
        moved = await self._move_job(conn, job_id, status)
        if moved is not None:
            await self._record_step(conn, job_id, status)
            return moved
        row = await self._locked_job(conn, job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        current = _job(row)
        if current.status.status.is_terminal or current.status == status:
            return current
        target = job_set_for(status.status)
        await self._refuse_second_running(conn, current.agent_id, job_id, status.status)
        values: dict[str, Any] = {
            **_status_columns(status),
            "job_set": target.value,
            "updated_at": utcnow(),
        }
        if target is not JobSet.QUEUED:
            values["queue_position"] = None
        elif row.job_set != JobSet.QUEUED.value:
            values["queue_position"] = await self._next_queue_position(conn)
        await conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(**values))
        await self._record_step(conn, job_id, status)
        return current.model_copy(update={"status": status})

    async def _record_step(self, conn: AsyncConnection, job_id: str, status: JobStatus) -> None:
        """The first time the job took this status; a later write of it (progress) keeps it."""
        values = {"job_id": job_id, "status": status.status.value, "at": status.timestamp}
        await conn.execute(self._insert(job_steps).values(**values).on_conflict_do_nothing())

    async def _move_job(
        self, conn: AsyncConnection, job_id: str, status: JobStatus
    ) -> JobInfo | None:
        """The usual write in one statement: an unfinished job takes a new status outside the
        queue. None in every other case (unknown, finished, unchanged, queued again, its agent
        running another job), which the full path then decides and explains.
        """
        target = job_set_for(status.status)
        if target is JobSet.QUEUED:  # needs a new queue position
            return None
        columns = _status_columns(status)
        unchanged = and_(
            jobs.c.status == status.status.value,
            jobs.c.status_message == status.message,
            jobs.c.status_timestamp == status.timestamp,
            jobs.c.status_details.is_not_distinct_from(columns["status_details"]),
        )
        conditions = [jobs.c.job_id == job_id, jobs.c.status.not_in(_TERMINAL), not_(unchanged)]
        if target is JobSet.RUNNING:
            other = jobs.alias("other")
            conditions.append(
                ~exists().where(
                    other.c.agent_id == jobs.c.agent_id,
                    other.c.job_set == JobSet.RUNNING.value,
                    other.c.job_id != job_id,
                )
            )
        statement = (
            update(jobs)
            .where(*conditions)
            .values(
                **columns,
                job_set=target.value,
                queue_position=None,
                updated_at=utcnow(),
            )
            .returning(*jobs.c)
        )
        row = (await conn.execute(statement)).first()
        return None if row is None else _job(row)

    async def _locked_job(self, conn: AsyncConnection, job_id: str) -> Row[Any] | None:
        query = select(jobs).where(jobs.c.job_id == job_id).with_for_update()
        return (await conn.execute(query)).first()

    async def _new_job_values(self, conn: AsyncConnection, job: JobInfo) -> dict[str, Any]:
        target = job_set_for(job.status.status)
        queued = target is JobSet.QUEUED
        return {
            "job_id": job.job_id,
            "agent_id": job.agent_id,
            "experiment_id": job.experiment_id,
            "created_time": job.created_time,
            **_status_columns(job.status),
            "job_set": target.value,
            "queue_position": await self._next_queue_position(conn) if queued else None,
            "updated_at": utcnow(),
        }

    async def _refuse_second_running(
        self, conn: AsyncConnection, agent_id: str, job_id: str, status: JobStatusEnum
    ) -> None:
        """A readable ConflictError; the unique index still decides races between processes."""
        if job_set_for(status) is not JobSet.RUNNING:
            return
        other = (
            await conn.execute(
                select(jobs.c.job_id).where(
                    jobs.c.agent_id == agent_id,
                    jobs.c.job_set == JobSet.RUNNING.value,
                    jobs.c.job_id != job_id,
                )
            )
        ).scalar_one_or_none()
        if other is not None:
            raise ConflictError(
                f"agent {agent_id} is already running job {other}; job {job_id} cannot run too"
            )

    async def _next_queue_position(self, conn: AsyncConnection) -> int:
        """The next queue position.

        The counter row stays locked until commit, so positions follow commit order: a reader
        never sees a position appear ahead of one it has already seen.
        """
        statement = self._insert(counters).values(name=QUEUE_POSITION_COUNTER, value=1)
        statement = statement.on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
        ).returning(counters.c.value)
        return int((await conn.execute(statement)).scalar_one())

    async def _jobs_in(self, agent_id: str, job_set: JobSet) -> list[JobInfo]:
        """One agent's jobs in one set: the queue in FIFO order, the others oldest first."""
        query = select(jobs).where(jobs.c.agent_id == agent_id, jobs.c.job_set == job_set.value)
        if job_set is JobSet.QUEUED:
            query = query.order_by(jobs.c.queue_position)
        else:
            query = query.order_by(jobs.c.created_time, jobs.c.job_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_job(row) for row in rows]


class SQLiteStorageBackend(SQLStorageBackend):
    """The embedded default: one SQLite file under the data directory."""

    def __init__(self, settings: StorageSettings | None = None) -> None:
        super().__init__(settings)
        if self.dialect != "sqlite":
            raise ValueError(f"not a SQLite URL: {self._engine.url}")


class PostgreSQLStorageBackend(SQLStorageBackend):
    """PostgreSQL through asyncpg, shared by any number of server and worker processes."""

    def __init__(self, settings: StorageSettings | None = None) -> None:
        super().__init__(settings)
        if self.dialect != "postgresql":
            raise ValueError(f"not a PostgreSQL URL: {self._engine.url}")


def _agents_query() -> Select[Any]:
    return select(agents.c.info, agents.c.status).order_by(
        agents.c.registered_at, agents.c.agent_id
    )


def _agent(row: Row[Any]) -> RegisteredAgentInfo:
    return RegisteredAgentInfo.model_validate({**row.info, "status": row.status})


def _job(row: Row[Any]) -> JobInfo:
    return JobInfo(
        job_id=row.job_id,
        experiment_id=row.experiment_id,
        agent_id=row.agent_id,
        created_time=row.created_time,
        status=JobStatus(
            status=JobStatusEnum(row.status),
            timestamp=row.status_timestamp,
            message=row.status_message,
            **(row.status_details or {}),
        ),
    )


def _runs_query() -> Select[Any]:
    """Every column of a run but its comparison, which only get_run_comparison reads."""
    return select(*(column for column in runs.c if column.name != "comparison"))


def _run_values(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "status": run.status.value,
        "created_time": run.created_time,
        "ended_time": run.ended_time,
        "repeats": run.repeats,
        "agents": list(run.agents),
        "selector": None if run.selector is None else run.selector.model_dump(mode="json"),
        "job_ids": list(run.job_ids),
    }


def _run(row: Row[Any]) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        experiment_id=row.experiment_id,
        agents=row.agents,
        repeats=row.repeats,
        selector=row.selector,
        created_time=row.created_time,
        ended_time=row.ended_time,
        status=RunStatus(row.status),
        job_ids=row.job_ids,
    )


# A status's optional fields (stage, progress, ...), kept together: NULL when it has none.
_STATUS_CORE = {"status", "timestamp", "message"}


def _status_columns(status: JobStatus) -> dict[str, Any]:
    details = status.model_dump(mode="json", exclude=_STATUS_CORE, exclude_none=True)
    return {
        "status": status.status.value,
        "status_timestamp": status.timestamp,
        "status_message": status.message,
        "status_details": details or None,
    }


def _typed_error(err: IntegrityError, duplicate: str | None) -> StorageError:
    detail = str(err.orig)
    if ONE_RUNNING_JOB_INDEX in detail or "jobs.agent_id" in detail:
        return ConflictError("the agent already has a running job")
    if "duplicate key" in detail or "UNIQUE constraint failed" in detail:
        return AlreadyExistsError(duplicate or f"already exists: {detail}")
    return StorageError(detail)


__all__ = [
    "PostgreSQLStorageBackend",
    "SQLStorageBackend",
    "SQLiteStorageBackend",
]
