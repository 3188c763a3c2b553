"""Each job's log: its task's lines, its process's stdout and stderr, and the agent's own notes.

Kept beside the job's record (`jobs/JOB.log`) and deleted with it; secrets are masked before a
byte is written. The file only grows, so a reader following it by offset never sees a byte it
read change. It is bounded (RUCKUS_AGENT_JOB_LOG_MAX_BYTES): past half the limit a marker is
written and later output is held in memory, of which the last half is appended when the job ends.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.redaction import MASK, mask_text

if TYPE_CHECKING:
    from agent.store import JobRecord

logger = logging.getLogger(__name__)

READ_BYTES = 64 * 1024  # of a process's output at a time
TAIL_CHARS = 4000
# Longest run of output without a newline held back to be masked whole; longer runs are passed
# on in pieces, keeping back enough for a secret that has not fully arrived.
LONG_LINE_CHARS = 64 * 1024
# At most this much of a log in one answer of GET /api/v1/jobs/{job_id}/logs.
STRETCH_BYTES = 256 * 1024
MARKER = (
    "\n[... this log reached {head} bytes, half of RUCKUS_AGENT_JOB_LOG_MAX_BYTES: later output "
    "is held back and only its last {tail} bytes follow here when the job ends ...]\n"
)
DROPPED = "[... {dropped} bytes of output dropped here ...]\n"


def agent_line(text: str) -> str:
    """A line the agent itself adds to a job's log, stamped like the task's own lines."""
    return f"{dt.datetime.now().strftime('%H:%M:%S')} agent: {text}\n"


class OutputMasker:
    """A process's output bytes as text with the secrets masked, whole lines at a time."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s for s in secrets if s]
        self._keep = max((len(s) for s in self._secrets), default=0)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> str:
        """The text ready to be written after `data` arrived (complete lines, masked)."""
        self._pending += self._decoder.decode(data)
        cut = self._pending.rfind("\n") + 1
        if cut == 0 and len(self._pending) > LONG_LINE_CHARS:
            # Whole secrets are masked first, so none is split by the cut; what is kept back
            # is long enough to hold the start of one still arriving.
            for secret in self._secrets:
                self._pending = self._pending.replace(secret, MASK)
            cut = max(0, len(self._pending) - self._keep)
        text, self._pending = self._pending[:cut], self._pending[cut:]
        return mask_text(text, self._secrets)

    def finish(self) -> str:
        """Whatever was held back, once the output has ended."""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        if text and not text.endswith("\n"):
            text += "\n"
        return mask_text(text, self._secrets)


class JobLogWriter:
    """Appends to one job's log file within its bound (see the module docstring)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self._head_limit = max_bytes // 2
        self._tail_limit = max_bytes - self._head_limit
        # Private like the job's record (agent.store): a log shows what the job did.
        self._file = os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
        self._size = self._file.tell()
        # A log continued by a later attempt of the job may be past its head already.
        self._overflowed = self._size >= self._head_limit
        self._tail = bytearray()
        self._dropped = 0

    def write(self, text: str) -> None:
        data = text.encode()
        if not self._overflowed:
            room = self._head_limit - self._size
            if len(data) <= room:
                self._append(data)
                return
            cut = _line_cut(data, room)
            marker = MARKER.format(head=self._head_limit, tail=self._tail_limit)
            self._append(data[:cut] + marker.encode())
            self._overflowed = True
            data = data[cut:]
        self._tail += data
        excess = len(self._tail) - self._tail_limit
        if excess > 0:
            del self._tail[:excess]
            self._dropped += excess

    def close(self) -> None:
        """Append what was held back (the tail of an overflowing log) and close the file."""
        if self._tail or self._dropped:
            tail = bytes(self._tail)
            start = _line_start(tail) if self._dropped else 0
            self._dropped += start
            note = DROPPED.format(dropped=self._dropped).encode() if self._dropped else b""
            self._append(note + tail[start:])
            self._tail.clear()
        self._file.close()

    def _append(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        self._size += len(data)


class RunningLog:
    """The log of the job that runs: the agent's notes and its process's output, masked. A disk
    that fails loses lines of the log, never the job."""

    def __init__(self, path: Path, max_bytes: int, secrets: Sequence[str]) -> None:
        self._writer = JobLogWriter(path, max_bytes)
        self._masker = OutputMasker(secrets)
        self._secrets = list(secrets)
        # The end of the output, for the result of a process that left no outcome.
        self.tail = ""

    def note(self, text: str) -> None:
        """A line of the agent's own."""
        self._write(agent_line(mask_text(text, self._secrets)))

    async def copy(self, output: asyncio.StreamReader) -> None:
        """The process's output, as it comes, until it ends."""
        try:
            while chunk := await output.read(READ_BYTES):
                self._output(self._masker.feed(chunk))
        finally:
            self._output(self._masker.finish())

    def close(self, last_note: str) -> None:
        self.note(last_note)
        with contextlib.suppress(OSError):
            self._writer.close()

    def _output(self, text: str) -> None:
        if text:
            self.tail = (self.tail + text)[-TAIL_CHARS:]
            self._write(text)

    def _write(self, text: str) -> None:
        try:
            self._writer.write(text)
        except OSError as exc:
            logger.error("could not write to the job log %s: %s", self._writer.path, exc)


def append(path: Path, max_bytes: int, text: str) -> None:
    """Add `text` (already masked) to the log of a job that is not running."""
    writer = JobLogWriter(path, max_bytes)
    try:
        writer.write(text)
    finally:
        writer.close()


def read(path: Path, offset: int, limit: int = STRETCH_BYTES) -> tuple[str, int, int]:
    """(text, next_offset, size) of the log from `offset`: at most `limit` bytes, cut at a
    character boundary, so that `next_offset` is `offset` plus the text's UTF-8 length."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(min(offset, size))
            data = handle.read(limit + 3)  # room to finish a character cut by the limit
    except FileNotFoundError:
        return "", offset, 0
    # At least one character, however small the limit.
    data = data[: _char_cut(data[:limit]) or _char_cut(data[:4])]
    return data.decode(errors="replace"), offset + len(data), size


def _char_cut(data: bytes) -> int:
    """The length of `data` without a UTF-8 character cut short at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the first byte of the last character
            length = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if length <= back else len(data) - back
    return len(data)


def _line_cut(data: bytes, room: int) -> int:
    """Where to cut `data` to fit `room` bytes: after its last newline there, else before it
    all (a write is whole lines but for output past LONG_LINE_CHARS)."""
    return data.rfind(b"\n", 0, room) + 1


def _line_start(tail: bytes) -> int:
    """Where the first whole line of a tail cut anywhere starts (0 when it has no newline)."""
    newline = tail.find(b"\n")
    if 0 <= newline < len(tail) - 1:
        return newline + 1
    start = 0
    while start < len(tail) and tail[start] & 0xC0 == 0x80:  # the rest of a character cut short
        start += 1
    return start


def accepted_line(record: JobRecord) -> str:
    """The log's first line: what the job runs, and which attempt it is."""
    spec = record.spec
    line = f"accepted: the {spec.task.type} task of experiment '{spec.id}' ({spec.name})"
    if record.attempt > 1:
        line += (
            f"; attempt {record.attempt}, sent again after attempt {record.attempt - 1} "
            "was lost when the agent stopped"
        )
    return line
