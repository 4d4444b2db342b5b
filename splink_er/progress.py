"""Progress of long work, in a terminal (rich) and in logs (the `splink_er` logger), and the time each stage took.

Steps report through a `Reporter` they are handed; none print. `RichReporter` draws status lines and progress
bars on stderr in a terminal; `LineReporter` writes plain, time-stamped lines instead when stderr is a file or
a pipe (a scheduler's log, CI), where a spinner shows nothing and a bar would leave nothing behind; the base
`Reporter` is silent (quiet=True, services, tests). All log every message to the `splink_er` logger, so a run
leaves a trace wherever logging is configured.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("splink_er")
log.addHandler(logging.NullHandler())  # a library logs; the application decides where it goes


class Reporter:
    """Silent in the terminal; logs to the `splink_er` logger."""

    quiet = True

    def info(self, message: str) -> None:
        _log(logging.INFO, message)

    def warn(self, message: str) -> None:
        _log(logging.WARNING, message)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        _log(logging.INFO, message)
        yield

    def table(self, title: str, columns: list[str], rows: list[list]) -> None:
        """A small table (a handful of rows): drawn in a terminal, one line per row in logs."""
        _log(logging.INFO, title)
        for row in rows:
            _log(logging.INFO, "  " + " | ".join(f"{c}: {v}" for c, v in zip(columns, row)))

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
        """A progress bar; yields `advance(n=1, total=None)` (total for work whose size is learned on the way)."""
        log.info("%s (%s)", description, total if total is not None else "?")
        yield lambda n=1, total=None: None


class RichReporter(Reporter):
    """Status lines and transient progress bars on stderr, as rich draws them."""

    quiet = False

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    def info(self, message: str) -> None:
        super().info(message)
        self.console.print(message)

    def warn(self, message: str) -> None:
        super().warn(message)
        self.console.print(f"[yellow]warning[/]: {message}")

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        _log(logging.INFO, message)
        with self.console.status(message):
            yield

    def table(self, title: str, columns: list[str], rows: list[list]) -> None:
        from rich.table import Table

        super().table(title, columns, rows)
        t = Table(*columns, title=title, title_justify="left", show_edge=False)
        for row in rows:
            t.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
        self.console.print(t)

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        log.info("%s (%s)", description, total if total is not None else "?")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)

            def advance(n: int = 1, total: int | None = None) -> None:
                if total is not None:
                    bar.update(task, completed=n, total=total)
                else:
                    bar.advance(task, n)

            yield advance


class LineReporter(Reporter):
    """Plain lines on stderr, each with the time: a stage when it starts and ends, progress every quarter of
    the work (or every `every_seconds`), never wrapped or redrawn."""

    quiet = False

    def __init__(self, stream=None, every_seconds: float = 30.0) -> None:
        self.stream = stream or sys.stderr
        self.every_seconds = every_seconds

    def _line(self, text: str) -> None:
        from rich.text import Text

        print(f"{time.strftime('%H:%M:%S')} {Text.from_markup(text).plain}", file=self.stream, flush=True)

    def info(self, message: str) -> None:
        super().info(message)
        self._line(message)

    def warn(self, message: str) -> None:
        super().warn(message)
        self._line(f"warning: {message}")

    def table(self, title: str, columns: list[str], rows: list[list]) -> None:
        super().table(title, columns, rows)
        cells = [columns] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(columns) - 1)]  # the last column runs on
        self._line(title)
        for r in cells:
            self._line("  " + "  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]))

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        _log(logging.INFO, message)
        self._line(f"{message} ...")
        t0 = time.perf_counter()
        yield
        self._line(f"{message}: done in {time.perf_counter() - t0:.1f}s")

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
        log.info("%s (%s)", description, total if total is not None else "?")
        state = {"done": 0, "total": total, "said_at": time.perf_counter(), "said_share": 0.0}
        self._line(f"{description}: 0/{total if total is not None else '?'}")

        def advance(n: int = 1, total: int | None = None) -> None:
            if total is not None:
                state["done"], state["total"] = n, total
            else:
                state["done"] += n
            share = state["done"] / state["total"] if state["total"] else 0.0
            now = time.perf_counter()
            if share >= state["said_share"] + 0.25 or now - state["said_at"] >= self.every_seconds:
                state["said_at"], state["said_share"] = now, share
                self._line(f"{description}: {state['done']:,}/{state['total'] or '?'}")

        t0 = time.perf_counter()
        yield advance
        self._line(f"{description}: {state['done']:,} done in {time.perf_counter() - t0:.1f}s")


def make_reporter(quiet: bool) -> Reporter:
    """Silent when quiet; rich bars in a terminal; plain time-stamped lines when stderr is a file or pipe."""
    if quiet:
        return Reporter()
    return RichReporter() if sys.stderr.isatty() else LineReporter()


def _log(level: int, message: str) -> None:
    """A rich-markup message as plain text in the log; not rendered at all when nobody listens."""
    if log.isEnabledFor(level):
        from rich.text import Text

        log.log(level, Text.from_markup(message).plain)


class Stopwatch:
    """Seconds per named stage, summed over repeats (a job scores several times)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 3)

    def total(self) -> float:
        return round(time.time() - self.started, 3)
