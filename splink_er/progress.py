"""Progress of long work, in a terminal (rich) and in logs (the `splink_er` logger), and the time each stage took.

Steps report through a `Reporter` they are handed; none print. `RichReporter` draws status lines and progress
bars on stderr; the base `Reporter` is silent in the terminal (quiet=True, services, tests). Both log every
message to the `splink_er` logger, so a run under a job scheduler leaves a trace when logging is configured.
"""

from __future__ import annotations

import logging
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


def make_reporter(quiet: bool) -> Reporter:
    return Reporter() if quiet else RichReporter()


def show_splink_messages(show: bool) -> None:
    """Splink's own warnings (untrained levels, u sampling size) on stderr, or only its errors when quiet.
    Splink's logger is process-wide: the last job set up decides (Linkers are built with log_level=None so
    they leave it alone)."""
    from splink.internals.splink_logging import enable

    enable(logging.WARNING if show else logging.ERROR)


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
