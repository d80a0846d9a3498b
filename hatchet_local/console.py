"""Progress lines on stderr (stdout stays for what a script reads), one per phase."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from hatchet_local.signals import check_stopped


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
            print(text, file=self.stream, flush=True)

    def info(self, text: str) -> None:
        self.line(f"  {text}")

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=self.stream, flush=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """`-> name` when it starts, `ok name (1.2s)` or `!! name (1.2s)` when it ends."""
        started = self.clock()
        try:
            # Inside the try: a Ctrl-C landing just after this line still ends the phase.
            self.line(f"-> {name}")
            yield
            check_stopped()  # a stop signal whose exception something swallowed
        except BaseException:
            self.line(f"!! {name} ({self.clock() - started:.1f}s)")
            raise
        elapsed = self.clock() - started
        self.timings[name] = elapsed
        self.line(f"ok {name} ({elapsed:.1f}s)")
