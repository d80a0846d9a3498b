"""What the commands need from the outside world, in one object built in one place.

Everything slow or external is a field: the runner of docker and compose commands, the HTTP
client, the clock and sleep of every wait, the TCP probe of the gRPC port. Tests build a
Context of fakes; the CLI calls `Context.default()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hatchet_local.compose import find_compose
from hatchet_local.console import Console
from hatchet_local.health import Check, tcp_check
from hatchet_local.redact import Redactor
from hatchet_local.runner import Runner, SubprocessRunner
from hatchet_local.state import state_root


@dataclass
class Context:
    runner: Runner
    console: Console
    http: httpx.Client
    state_root: Path
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # A readiness check that connects to host:port (the gRPC port, from the host).
    tcp_check: Callable[[str, int], Callable[[], Check]] = tcp_check
    interval: float = 0.25  # between readiness polls; each poll is one `docker inspect`
    lock_wait: float = 900.0
    redact: Redactor = field(default_factory=Redactor)
    # Compose v2's argv prefix, found on first use: finding it runs a few subprocesses.
    _compose_base: list[str] | None = field(default=None, init=False, repr=False)

    @classmethod
    def default(cls, *, quiet: bool = False) -> Context:
        """The real world: subprocesses, the network, this machine's state directory."""
        return cls(
            runner=SubprocessRunner(),
            console=Console(quiet=quiet),
            http=httpx.Client(),
            state_root=state_root(),
        )

    def compose_base(self) -> list[str]:
        if self._compose_base is None:
            self._compose_base = find_compose(self.runner)
        return self._compose_base
