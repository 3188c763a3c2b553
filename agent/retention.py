"""Deletes the job records past their retention (count and age), now and then regularly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import MutableMapping
from datetime import timedelta

from agent.store import JobRecord, JobStore
from common.models import utcnow
from common.settings import AgentSettings

logger = logging.getLogger(__name__)


class Retention:
    """The sweep of one agent's records; `cached` loses what the store deleted."""

    def __init__(
        self, settings: AgentSettings, store: JobStore, cached: MutableMapping[str, JobRecord]
    ) -> None:
        self.settings = settings
        self.store = store
        self.cached = cached
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._regularly())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _regularly(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:  # a failed sweep is tried again at the next interval
                logger.exception("could not delete job records past their retention")
            await asyncio.sleep(self.settings.retention_check_interval)

    async def prune(self) -> int:
        """Delete the ended records past retention; returns how many."""
        cutoff = utcnow() - timedelta(days=self.settings.retention_days)
        keep = self.settings.retention_max_records
        removed = await asyncio.to_thread(self.store.prune, keep, cutoff)
        for job_id in removed:
            self.cached.pop(job_id, None)
        if removed:
            logger.info("deleted %d job records past their retention", len(removed))
        return len(removed)
