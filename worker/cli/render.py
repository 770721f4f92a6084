"""Text for people, with rich: aligned tables and a progress bar on a terminal. The JSON of
``--output json`` never goes through here."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from worker.cli.common import printable

__all__ = ["progress_bar", "table"]


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, empty: str) -> str:
    """``rows`` as aligned columns under a header (control characters escaped: values may
    come from receivers), or ``empty`` when there are none."""
    if not rows:
        return empty
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column.upper().replace("_", " "), overflow="fold")
    for row in rows:
        grid.add_row(*(printable(_cell(row.get(column))) for column in columns))
    width = max(100, shutil.get_terminal_size((160, 24)).columns)
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    console.print(grid)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in str(text).splitlines())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr while the block runs (gone when it ends), fed ``(done,
    total)``; None when not ``enabled`` (not a terminal, or nothing to do)."""
    if not enabled:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
