"""Storage and Temporal as the server sees them: reached at start, retried while down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import timedelta

from temporalio.envconfig import ClientConfigProfile

from api.errors import StorageUnavailableError, storage_unreachable_detail
from api.job_manager import JobManager, TemporalUnavailableError
from common.storage import StorageBackend
from common.temporal import DEFAULT_ADDRESS

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 2.0


def temporal_address() -> str:
    """Where the Temporal client connects, for messages (TEMPORAL_ADDRESS or the profile)."""
    try:
        config = ClientConfigProfile.load().to_client_connect_config()
    except Exception:
        return DEFAULT_ADDRESS
    return str(config.get("target_host") or DEFAULT_ADDRESS)


class Connections:
    """Whether storage is initialised and Temporal answers, re-checked in the background."""

    # A dependency down at start does not stop the server: it is retried every
    # `retry_interval` seconds, /health names it, and the endpoints that need it answer 503
    # until it is back.

    def __init__(
        self,
        storage: StorageBackend,
        job_manager: JobManager,
        *,
        retry_interval: float,
        storage_ready: bool = False,
    ) -> None:
        self._storage = storage
        self._job_manager = job_manager
        self._retry_interval = retry_interval
        self._storage_ready = storage_ready
        self.storage_error: str | None = None if storage_ready else "not connected yet"
        self.temporal_error: str | None = "not connected yet"
        self._temporal_probes = 0
        self._probe_lock = asyncio.Lock()
        self._storage_lock = asyncio.Lock()
        self._monitor: asyncio.Task[None] | None = None

    @property
    def monitor(self) -> asyncio.Task[None] | None:
        return self._monitor

    async def start(self) -> None:
        """Try each dependency once, then keep watching them in the background."""
        await self._connect_storage()
        await self._probe_temporal()
        self._monitor = asyncio.create_task(self._watch(), name="ruckus-connections")

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None

    # What requests use

    async def require_storage(self) -> None:
        if self._storage_ready:
            return
        if not await self._connect_storage():
            raise StorageUnavailableError(
                f"storage is unavailable: {self.storage_error}; the server keeps trying every "
                f"{self._retry_interval:g} s"
            )

    async def require_temporal(self) -> None:
        """503 unless Temporal answers a health probe now."""
        # The probe costs about a millisecond; a call to a Temporal that just went away would
        # spend the SDK's ~10 s of retries before failing.
        if not await self._probe_temporal():
            raise TemporalUnavailableError(
                f"Temporal is unavailable at {temporal_address()}: {self.temporal_error}"
            )

    async def require_temporal_not_known_down(self) -> None:
        """503 while Temporal is known to be down (re-probed first); no probe while it answers.

        For calls where a slow failure costs little and a probe would cost every job: an
        agent's notification (the job's timer-driven poll covers a lost one).
        """
        if self.temporal_error is not None:
            await self.require_temporal()

    def temporal_failed(self, reason: str) -> None:
        """A request found Temporal unreachable: fail fast until a probe finds it again."""
        if self.temporal_error is None:
            log.warning("Temporal became unavailable: %s", reason)
            self.temporal_error = reason

    async def check(self) -> tuple[str | None, str | None]:
        """Probe both now: (storage error, Temporal error), None meaning reachable."""
        storage_error = await self._check_storage()
        await self._probe_temporal(force=True)
        return storage_error, self.temporal_error

    # Storage

    async def _connect_storage(self) -> bool:
        async with self._storage_lock:
            if self._storage_ready:
                return True
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await self._storage.initialize()
            except Exception as err:
                reason = storage_unreachable_detail(err)
                if reason != self.storage_error:
                    log.warning(
                        "storage is unavailable (%s); retrying every %g s",
                        reason,
                        self._retry_interval,
                    )
                self.storage_error = reason
                return False
            self._storage_ready = True
            self.storage_error = None
            log.info("storage is ready")
            return True

    async def _check_storage(self) -> str | None:
        if not self._storage_ready:
            await self._connect_storage()
            return self.storage_error
        ok = await self._storage.health_check()
        self.storage_error = None if ok else "the database does not answer"
        return self.storage_error

    # Temporal

    async def _probe_temporal(self, *, force: bool = False) -> bool:
        """Connect if never connected, else ask Temporal for its health; True when it answers."""
        # Requests that queued behind a probe take its answer instead of probing again.
        seen = self._temporal_probes
        async with self._probe_lock:
            if self._temporal_probes != seen and not force:
                return self.temporal_error is None
            error = await self._temporal_problem()
            self._temporal_probes += 1
            if error is None and self.temporal_error is not None:
                log.info("Temporal is reachable at %s", temporal_address())
            elif error is not None and error != self.temporal_error:
                log.warning(
                    "Temporal is unavailable at %s (%s); retrying every %g s; job creation and "
                    "cancellation answer 503 until it is back",
                    temporal_address(),
                    error,
                    self._retry_interval,
                )
            self.temporal_error = error
            return error is None

    async def _temporal_problem(self) -> str | None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                # Connects the JobManager's client the first time; a no-op once it has one.
                await self._job_manager.start()
            serving = await self._job_manager.client.service_client.check_health(
                timeout=timedelta(seconds=PROBE_TIMEOUT_S)
            )
        except TimeoutError:
            return "no answer in time"
        except Exception as err:
            return _reason(err)
        return None if serving else "Temporal reports that it is not serving"

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._retry_interval)
            try:
                if not self._storage_ready:
                    await self._connect_storage()
                await self._probe_temporal(force=True)
            except Exception:
                log.exception("checking storage and Temporal failed")


def _reason(err: Exception) -> str:
    """The useful part of a connection error (the SDK wraps the OS error in transport text)."""
    text = str(err)
    found = re.search(r'message: "([^"]+)"', text)
    if found and "connect" in text.lower():
        return f"cannot connect ({found.group(1)})"
    return (f"{err.__class__.__name__}: {text}".splitlines() or [""])[0][:300]
