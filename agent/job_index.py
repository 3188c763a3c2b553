"""A SQLite index beside the job records: what start-up, /status and retention need to know
without reading every record (which jobs are unfinished, the newest results, the oldest ones).

The records (one JSON file per job) stay the truth; the index is rebuilt from them when it is
missing or unreadable.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from common.models import AvailableResult

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    ended_at TEXT,
    result_type TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_by_end ON jobs (ended_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
"""

# One row of the index: job id, when it ended (None while unfinished), its result type.
Row = tuple[str, datetime | None, str | None]


def stamp(moment: datetime) -> str:
    """A fixed-width UTC text (always `+00:00`, always microseconds): text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


class JobIndex:
    """The index file; every method is safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> bool:
        """Open (or create) the index; True when it is complete, False when it must be built."""
        try:
            self._connect()
            return self._get_meta("complete") == "1"
        except sqlite3.DatabaseError as exc:
            logger.warning("the job index %s is unreadable (%s); rebuilding it", self.path, exc)
            self.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._connect()
            return False

    def mark_complete(self) -> None:
        with self._cursor() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def begin(self, job_id: str) -> None:
        """Note a job before its record is first written (it ends up unfinished or updated)."""
        with self._cursor() as db:
            db.execute("INSERT OR IGNORE INTO jobs VALUES (?, NULL, NULL)", (job_id,))

    def put(self, rows: Iterable[Row]) -> None:
        with self._cursor() as db:
            db.executemany(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)",
                ((job_id, stamp(end) if end else None, kind) for job_id, end, kind in rows),
            )

    def remove(self, job_ids: Iterable[str]) -> None:
        with self._cursor() as db:
            db.executemany("DELETE FROM jobs WHERE job_id = ?", ((j,) for j in job_ids))

    def unfinished(self) -> list[str]:
        with self._cursor() as db:
            return [r[0] for r in db.execute("SELECT job_id FROM jobs WHERE ended_at IS NULL")]

    def newest_results(self, limit: int) -> list[AvailableResult]:
        with self._cursor() as db:
            rows = db.execute(
                "SELECT job_id, ended_at, result_type FROM jobs WHERE result_type IS NOT NULL "
                "ORDER BY ended_at DESC, job_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            AvailableResult(job_id=job_id, completed_at=_moment(ended), result_type=kind)
            for job_id, ended, kind in rows
        ]

    def expired(self, keep: int, ended_before: datetime, limit: int) -> list[str]:
        """Ended jobs past retention: beyond the newest `keep`, or ended before the cutoff."""
        with self._cursor() as db:
            rows = db.execute(
                "SELECT job_id FROM jobs WHERE ended_at IS NOT NULL AND ended_at < ? "
                "UNION SELECT job_id FROM ("
                "  SELECT job_id FROM jobs WHERE ended_at IS NOT NULL "
                "  ORDER BY ended_at DESC, job_id DESC LIMIT -1 OFFSET ?) "
                "LIMIT ?",
                (stamp(ended_before), keep, limit),
            )
            return [r[0] for r in rows]

    def count(self) -> int:
        with self._cursor() as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])

    def _connect(self) -> None:
        with self._lock:
            db = sqlite3.connect(self.path, check_same_thread=False)
            try:
                # The index can always be rebuilt from the records: no fsync per write.
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(SCHEMA)
            except sqlite3.DatabaseError:
                db.close()
                raise
            self._db = db

    def _get_meta(self, key: str) -> str | None:
        with self._cursor() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise sqlite3.ProgrammingError("the job index is not open")
            with self._db:  # one transaction
                yield self._db
