"""The job log's parts on known input: secrets masked however the output is cut, answers cut at
a character, and a bounded file that only grows."""

from __future__ import annotations

from pathlib import Path

from agent import job_log
from agent.job_log import JobLogWriter, OutputMasker

SECRET = "sk-live-0123456789abcdef"


def test_a_secret_is_masked_wherever_the_output_is_cut() -> None:
    output = f"key {SECRET} here\nagain:{SECRET}\n".encode()
    for cut in range(1, len(output)):
        masker = OutputMasker([SECRET])
        text = masker.feed(output[:cut]) + masker.feed(output[cut:]) + masker.finish()
        assert text == "key *** here\nagain:***\n", cut


def test_a_long_line_is_passed_on_in_pieces_without_a_piece_of_a_secret() -> None:
    masker = OutputMasker([SECRET])
    line = ("x" * 70_000 + SECRET) * 3
    pieces = [masker.feed(line[i : i + 1000].encode()) for i in range(0, len(line), 1000)]
    pieces.append(masker.finish())
    assert sum(1 for p in pieces if p) > 3  # not held back until the end
    assert "".join(pieces) == ("x" * 70_000 + "***") * 3 + "\n"


def test_a_character_cut_by_a_chunk_arrives_whole() -> None:
    masker = OutputMasker([])
    data = "é€😀\n".encode()
    assert "".join(masker.feed(data[i : i + 1]) for i in range(len(data))) == "é€😀\n"


def test_reading_cuts_at_a_character_and_the_next_offset_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    text = "a€b😀c\n" * 3
    path.write_bytes(text.encode())
    read, offset = "", 0
    while True:
        part, next_offset, size = job_log.read(path, offset, limit=3)
        assert next_offset - offset == len(part.encode())
        assert "\ufffd" not in part
        read += part
        if next_offset == offset:
            break
        offset = next_offset
    assert read == text and offset == size == len(text.encode())
    assert job_log.read(tmp_path / "none.log", 5) == ("", 5, 0)


def test_past_half_its_limit_a_log_writes_a_marker_and_keeps_the_tail_for_the_end(
    tmp_path: Path,
) -> None:
    path = tmp_path / "job.log"
    writer = JobLogWriter(path, max_bytes=4096)
    lines = [f"line {i:04d} ü\n" for i in range(1000)]
    sizes = []
    for line in lines:
        writer.write(line)
        sizes.append(path.stat().st_size)
    head = path.read_bytes()
    assert sizes == sorted(sizes) and len(head) < 2048 + 300  # nothing after the marker yet
    assert head.decode().startswith(lines[0]) and "this log reached 2048 bytes" in head.decode()
    writer.close()

    log = path.read_text()
    assert log.startswith(head.decode())  # what was read never changes
    assert log.endswith(lines[-1]) and "bytes of output dropped here" in log
    assert lines[500] not in log
    tail = log.rsplit("dropped here ...]\n", 1)[1]
    assert 2048 - len(lines[0].encode()) < len(tail.encode()) <= 2048
    assert tail.startswith("line ")  # whole lines


def test_a_later_attempt_continues_the_log(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    job_log.append(path, 4096, "attempt 1\n")
    job_log.append(path, 4096, "attempt 2\n")
    assert path.read_text() == "attempt 1\nattempt 2\n"
    assert path.stat().st_mode & 0o777 == 0o600
