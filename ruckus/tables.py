"""Tables and key-value blocks for people: ids and URLs are never cut, other columns give way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table

# A table's frame: "│ " before the first cell, " │ " between cells, " │" after the last.
FRAME = 1
PER_COLUMN = 3


@dataclass(frozen=True)
class Column:
    """One column; `whole` columns (ids, URLs) are never cut or wrapped."""

    header: str
    whole: bool = False
    # Narrower terminals drop the columns with the highest `drop` first (0: never dropped).
    drop: int = 0
    # A dropped column is better than one squeezed below this many characters.
    min_width: int = 10
    justify: JustifyMethod = "left"


def show_table(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    *,
    wide: bool = False,
    grouped: bool = False,
) -> None:
    """Print the rows; columns that do not fit the terminal are dropped unless `wide`.

    When the whole columns alone are wider than the terminal, each row becomes a block of
    `column: value` lines instead, so no id is cut and no line is wider than the terminal.
    `grouped`: rows that share their first value follow one another; a table shows that value
    once for the group and draws a line under each group.
    """
    cells = [[text(v) for v in row] for row in rows]
    kept = list(range(len(columns)))
    widths = [_longest(columns[i].header, [r[i] for r in cells]) for i in kept]
    if not wide:
        empty = {i for i in kept if not any(r[i] for r in cells)}
        kept = _fitting(columns, widths, console.width, empty)
    needed = _needed(columns, widths, kept)
    if needed > console.width and not wide:
        _show_records(console, title, columns, cells)
        return
    hidden = [columns[i].header for i in range(len(columns)) if i not in kept]
    table = Table(
        title=title,
        caption=f"not shown at this width: {', '.join(hidden)} (--wide shows them)"
        if hidden
        else None,
    )
    for i in kept:
        column = columns[i]
        if column.whole:
            table.add_column(
                column.header, min_width=widths[i], no_wrap=True, justify=column.justify
            )
        else:
            table.add_column(column.header, overflow="fold", justify=column.justify)
    for index, row in enumerate(cells):
        shown = [row[i] for i in kept]
        if grouped and index > 0 and row[0] == cells[index - 1][0] and kept[0] == 0:
            shown[0] = ""
        last = index == len(cells) - 1 or cells[index + 1][0] != row[0]
        table.add_row(*shown, end_section=grouped and last)
    # Wider than the terminal only with --wide: the terminal wraps the lines, no id is cut.
    target = console if needed <= console.width else _wider(console, needed)
    target.print(table)


def _show_records(
    console: Console, title: str, columns: Sequence[Column], cells: list[list[str]]
) -> None:
    console.print(f"[bold]{title}[/]")
    for row in cells:
        console.print()
        show_fields(console, [(c.header, v) for c, v in zip(columns, row, strict=True)])


def _needed(columns: Sequence[Column], widths: list[int], kept: list[int]) -> int:
    """The narrowest the table can be: whole columns at full width, others at their minimum."""
    return FRAME + sum(
        (widths[i] if columns[i].whole else min(widths[i], columns[i].min_width)) + PER_COLUMN
        for i in kept
    )


def _fitting(
    columns: Sequence[Column], widths: list[int], width: int, empty: set[int]
) -> list[int]:
    """The columns that fit `width`: droppable ones go, empty ones first, then by `drop`."""
    kept = list(range(len(columns)))
    for i in sorted(kept, key=lambda i: (i not in empty, -columns[i].drop)):
        if _needed(columns, widths, kept) <= width or columns[i].drop == 0:
            break
        kept.remove(i)
    return kept


def _longest(header: str, values: list[str]) -> int:
    return max([len(header), *(len(line) for v in values for line in v.splitlines() or [""])])


def _wider(console: Console, width: int) -> Console:
    return Console(width=width, file=console.file, force_terminal=console.is_terminal)


def show_fields(console: Console, pairs: Sequence[tuple[str, Any]]) -> None:
    """`key: value` lines, keys aligned; values are never wrapped by us (ids stay whole)."""
    pad = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        if value is None or value == "":
            continue
        console.print(
            f"{key + ':':<{pad + 1}} {text(value)}", soft_wrap=True, highlight=False, markup=False
        )


def text(value: Any) -> str:
    """A cell's text: times to the second, floats at a readable precision, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        utc = value.utcoffset() is not None and not value.utcoffset()
        return value.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if utc else "")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def when(value: str | None) -> str:
    """An ISO 8601 time from the API, to the second (UTC as the API gives it)."""
    if not value:
        return ""
    try:
        return text(datetime.fromisoformat(value))
    except ValueError:
        return value


def seconds(value: float | None) -> str:
    """A duration: 254.9 s, 2.35 s, 0.0412 s."""
    if value is None:
        return ""
    return f"{value:.1f} s" if value >= 100 else f"{value:.3g} s"


def show_result(console: Console, result: dict[str, Any], *, wide: bool = False) -> None:
    """A job's result: what ran where, how it ended (with its error), then its metrics."""
    show_fields(
        console,
        [
            ("job", result.get("job_id")),
            ("experiment", result.get("experiment_id")),
            ("agent", result.get("agent_id")),
            ("status", result.get("status")),
            ("started", when(result.get("started_at"))),
            ("completed", when(result.get("completed_at"))),
            ("duration", seconds(result.get("duration_seconds"))),
            ("error type", result.get("error_type")),
            ("error", result.get("error")),
        ],
    )
    metrics = _flatten(result.get("metrics") or {})
    if metrics:
        show_table(
            console,
            f"metrics of {result.get('job_id')}",
            [Column("metric", whole=True), Column("value", justify="right")],
            metrics,
            wide=wide,
        )


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if key == "repeats":  # per-run detail: `ruckus results show --json` has it
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, name + ".")
        elif not isinstance(value, list):
            rows.append((name, value))
    return rows
