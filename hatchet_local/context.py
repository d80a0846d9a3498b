"""What the commands need from the outside world, in one object built in one place.

Everything slow or external is a field: the runner of docker and compose commands, what
reads the Docker engine, the HTTP client, the clock and sleep of every wait, the TCP probe
of the gRPC port. Tests build a Context of fakes; the CLI calls `Context.default()`, whose
HTTP client is made on first use (httpx and its CA bundle cost more than a `status` should).
"""

from __future__ import annotations

import getpass
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hatchet_local.compose_discovery import find_compose
from hatchet_local.console import Console
from hatchet_local.docker import Engine
from hatchet_local.docker_cli import CliEngine
from hatchet_local.health import Check, tcp_check
from hatchet_local.plainhttp import plain_get
from hatchet_local.redact import Redactor
from hatchet_local.runner import Runner, SubprocessRunner
from hatchet_local.state import state_root

if TYPE_CHECKING:
    import httpx

COMPOSE_FOUND = "compose.json"  # in the state directory: which Compose v2 to run


class _LazyHttp:
    """An httpx.Client made at its first use. A plain GET of an http:// URL (the stack's
    own API: `/api/ready`, the token check of a warm `up`) goes over a socket instead."""

    _client: Any = None

    def get(self, url: str, *, headers: dict[str, str] | None = None,
            timeout: float = 10, **other: Any) -> Any:  # fmt: skip
        if url.startswith("http://") and not other:
            return plain_get(url, headers, timeout)
        return self.__getattr__("get")(url, headers=headers, timeout=timeout, **other)

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            import httpx  # noqa: PLC0415

            self._client = httpx.Client()
        return getattr(self._client, name)


def make_http(verify: bool | str) -> httpx.Client:
    """An HTTP client for one server: verify its certificate against the system's CAs
    (True), a CA bundle (a path), or not at all (False, only when the user said --insecure)."""
    import ssl  # noqa: PLC0415  # only a command talking to such a server pays for these

    import httpx  # noqa: PLC0415

    if isinstance(verify, str):
        return httpx.Client(verify=ssl.create_default_context(cafile=verify))
    return httpx.Client(verify=verify)


def prompt_password(prompt: str) -> str | None:
    """Ask on the terminal (nothing echoed); None without one."""
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(prompt)


def read_stdin() -> str:
    """The first line of standard input (`--password-stdin`)."""
    return sys.stdin.readline().rstrip("\r\n")


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
    interval: float = 0.1  # between readiness polls; each poll is one Engine API request
    lock_wait: float = 900.0
    redact: Redactor = field(default_factory=Redactor)
    # What reads the Docker engine; the docker CLI over `runner` unless given.
    docker: Engine = None  # type: ignore[assignment]
    # A server hatchet-local did not start: its own HTTP client (TLS settings), and the
    # admin's password when no session is kept.
    make_http: Callable[[bool | str], httpx.Client] = make_http
    prompt_password: Callable[[str], str | None] = prompt_password
    read_stdin: Callable[[], str] = read_stdin
    # Compose v2's argv prefix, found on first use (finding it runs a few subprocesses) and
    # remembered in the state directory while the candidates stay the same.
    _compose_base: list[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.docker is None:
            self.docker = CliEngine(self.runner)

    @classmethod
    def default(cls, *, quiet: bool = False) -> Context:
        """The real world: subprocesses, the Engine API, the network, this machine's state
        directory."""
        from hatchet_local.docker_api import engine_for  # noqa: PLC0415

        runner = SubprocessRunner()
        return cls(
            runner=runner,
            console=Console(quiet=quiet),
            http=cast("httpx.Client", _LazyHttp()),
            state_root=state_root(),
            docker=engine_for(runner),
        )

    def compose_base(self) -> list[str]:
        if self._compose_base is None:
            self._compose_base = find_compose(self.runner, self.state_root / COMPOSE_FOUND)
        return self._compose_base
