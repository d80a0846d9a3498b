"""Progress lines on stderr (stdout stays for what a script reads), one per phase."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from hatchet_local.signals import check_stopped, interrupts_deferred, stopped


class Console:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.clock = clock
        self.timings: dict[str, float] = {}

    def line(self, text: str) -> None:
        if not self.quiet:
            self._write(text)

    def info(self, text: str) -> None:
        self.line(f"  {text}")

    def warn(self, text: str) -> None:
        self._write(f"warning: {text}")

    def _write(self, text: str) -> None:
        # One write per line (print makes two): a stop signal landing between them would
        # leave the command's message glued to a line without its end.
        self.stream.write(f"{text}\n")
        self.stream.flush()

    def phase(self, name: str) -> Phase:
        """`-> name` when it starts, `ok name (1.2s)` or `!! name (1.2s)` when it ends."""
        return Phase(self, name)


# Phases begun and not ended, oldest first. A stop signal can land where no `__exit__` runs
# (at its very first instruction): `end_begun_phases` ends those before the message.
_BEGUN: list[Phase] = []


def end_begun_phases() -> None:
    """Mark every phase still open aborted, innermost first. `main()` calls it before the
    command's one-line message, which so stays the last line."""
    while _BEGUN:
        _BEGUN[-1].end(aborted=True)


class Phase:
    """One phase's lines: `-> name` when the with statement enters it, then exactly one end
    line, printed before the exception leaves it (or, when a signal skipped `__exit__`,
    by `end_begun_phases`). A stop signal landing while a line is printed is held until the
    line is whole (`interrupts_deferred`). A generator-based context manager could not
    promise this: a signal landing in contextlib's `__enter__`, after the first line, skipped
    `__exit__`, and the end line came as Python shut down, after the command's message."""

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self.started = 0.0

    def __enter__(self) -> None:
        try:
            with interrupts_deferred():
                self.started = self.console.clock()
                self.console.line(f"-> {self.name}")
                _BEGUN.append(self)
        except BaseException:  # a signal held while the line was printed, delivered now
            self.end(aborted=True)
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            with interrupts_deferred():
                self.end(aborted=kind is not None or stopped())
        except BaseException:  # a signal that landed before the deferral began
            self.end(aborted=True)
            raise
        if kind is None:
            check_stopped()  # a stop signal whose exception something swallowed

    def end(self, *, aborted: bool) -> None:
        """Print the end line, once: `ok` with the time kept in `timings`, or `!!`."""
        if self not in _BEGUN:
            return
        _BEGUN.remove(self)
        elapsed = self.console.clock() - self.started
        if not aborted:
            self.console.timings[self.name] = elapsed
        self.console.line(f"{'!!' if aborted else 'ok'} {self.name} ({elapsed:.1f}s)")
