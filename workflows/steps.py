"""How a workflow runs its steps: agent calls retried by the job's policy, and durable steps
repeated until they succeed. Workflow code: no I/O here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.errors import NON_RETRYABLE
    from common.settings import JobPolicy

A = TypeVar("A")
R = TypeVar("R")

# A step that must not be lost (storage, the queue): tries within one local activity, then a
# pause on a durable timer before the next activity.
DURABLE_STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=5), non_retryable_error_types=NON_RETRYABLE
    ),
}
DURABLE_STEP_PAUSE = timedelta(seconds=5)


class AgentCallFailed(Exception):
    """An agent call failed for good; the message names the call and the cause."""

    def __init__(self, message: str, kind: str | None) -> None:
        super().__init__(message)
        self.kind = kind


def agent_retry_policy(policy: JobPolicy) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=policy.agent_retry_initial_interval),
        maximum_interval=timedelta(seconds=policy.agent_retry_maximum_interval),
        maximum_attempts=policy.agent_retry_maximum_attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


async def call_agent(
    policy: JobPolicy,
    activity: Callable[[Any, A], Awaitable[R]],
    arg: A,
    *,
    per_try: float | None = None,
) -> R:
    """An agent call as a local activity retried by the job's policy; `per_try` bounds one try
    in seconds (one agent call's timeout unless given). Raises AgentCallFailed."""
    # The SDK's start-to-close of a local activity spans its in-worker retries, so it must fit
    # them all; otherwise the job would fail with a bare timeout instead of the last error.
    one_try = (per_try or policy.agent_call_timeout) + policy.agent_retry_maximum_interval
    budget = timedelta(seconds=policy.agent_retry_maximum_attempts * one_try + 5)
    try:
        return await workflow.execute_local_activity_method(
            activity,
            arg,
            start_to_close_timeout=budget,
            schedule_to_close_timeout=budget,
            retry_policy=agent_retry_policy(policy),
        )
    except (ActivityError, ApplicationError) as err:
        if is_cancelled_exception(err):
            raise asyncio.CancelledError from err
        failure = application_failure(err)
        if failure is None:
            name = getattr(activity, "__name__", "agent call")
            message = f"{name} failed: the agent did not answer in time ({err})"
            raise AgentCallFailed(message, None) from err
        raise AgentCallFailed(failure.message, failure.type) from err


async def until_done(what: str, step: Callable[[], Awaitable[R]]) -> R:
    """Repeat a step that must not be lost (storage, the queue) until it succeeds.

    A local activity's timeout spans its in-worker retries, so a long outage ends it; a durable
    pause and a new try keep the workflow going instead of failing it.
    """
    while True:
        try:
            return await step()
        except (ActivityError, ApplicationError) as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError from err
            failure = application_failure(err)
            if failure is not None and failure.non_retryable:
                raise
            reason = failure.message if failure is not None else str(err)
            workflow.logger.warning("%s failed, trying again: %s", what, reason)
            await workflow.sleep(DURABLE_STEP_PAUSE)


def application_failure(err: BaseException) -> ApplicationError | None:
    """The ApplicationError behind an activity failure (local ones may arrive unwrapped)."""
    while err is not None and not isinstance(err, ApplicationError):
        err = err.cause if isinstance(err, ActivityError) else None  # type: ignore[assignment]
    return err
