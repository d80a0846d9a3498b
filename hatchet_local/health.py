"""Readiness checks with three outcomes, and one loop that waits on any of them.

A check says `ready`, `waiting` (ask again) or `failed` (stop now: waiting longer will not
help). Clock and sleep are parameters, so a timeout test runs in milliseconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hatchet_local.errors import HealthTimeout, ServiceUnhealthy
from hatchet_local.plainhttp import is_transport_error

if TYPE_CHECKING:  # imported where used: `status` and `ls` need neither
    import httpx

    from hatchet_local.compose import Compose, ServiceState


@dataclass(frozen=True)
class Check:
    outcome: Literal["ready", "waiting", "failed"]
    detail: str


READY = Check("ready", "ready")


def wait_for(
    what: str,
    check: Callable[[], Check],
    timeout: float,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Ask `check` until it is ready; return the seconds it took.

    Raises ServiceUnhealthy when the check fails and HealthTimeout when time runs out;
    both messages name what was awaited, the time waited and the last status.
    """
    started = clock()
    while True:
        result = check()
        elapsed = clock() - started
        if result.outcome == "ready":
            return elapsed
        if result.outcome == "failed":
            raise ServiceUnhealthy(f"{what} failed after {elapsed:.0f}s: {result.detail}")
        if elapsed >= timeout:
            raise HealthTimeout(
                f"{what} not ready after {elapsed:.0f}s (timeout {timeout:.0f}s); "
                f"last status: {result.detail}"
            )
        sleep(min(interval, max(timeout - elapsed, 0.0)))


def service_check(
    compose: Compose,
    service: str,
    *,
    healthcheck: bool = True,
    probe: Callable[[ServiceState], bool] | None = None,
) -> Callable[[], Check]:
    """A compose service: healthy, still starting, or gone wrong. For a service with a
    healthcheck only `healthy` is ready: a crash-looping container can show `running` with no
    health yet between two restarts. `probe` asks the service itself while its healthcheck
    has not said yet (an engine without `start_interval` checks only every few seconds); it
    is given the running container's state this check has just read.
    Without `healthcheck`, a running container that is not unhealthy is ready (the caller
    then asks the service itself)."""

    def check() -> Check:
        state = compose.state(service)
        if state is None:
            return Check("failed", "no container (was it removed?)")
        if state.state in ("exited", "dead"):
            return Check("failed", f"container {state.state} with code {state.exit_code}")
        if state.state == "restarting":
            return Check("failed", f"container keeps restarting (last exit {state.exit_code})")
        if state.state != "running":
            return Check("waiting", f"container {state.state}")
        if state.health == "healthy" or (not healthcheck and state.health != "unhealthy"):
            return READY  # without `healthcheck`, running is enough: the caller asks more
        if state.health == "" and probe is None:
            return Check("waiting", "no health status yet")
        if state.health == "unhealthy":
            return Check("failed", "healthcheck reports unhealthy")
        if probe is not None and probe(state):
            return READY
        return Check("waiting", f"health {state.health or 'not reported yet'}")

    return check


def log_probe(compose: Compose, service: str, line: str) -> Callable[[ServiceState], bool]:
    """True once the running container has printed `line` since it last started: one
    Engine API request, where a probe inside the container would start a process."""

    def probe(state: ServiceState) -> bool:
        if not state.started_at:  # a listing's state: no start time to read the log from
            return False
        return line in compose.docker.logs(compose.container_name(service), state.started_at)

    return probe


def http_check(client: httpx.Client, url: str) -> Callable[[], Check]:
    def check() -> Check:
        try:
            response = client.get(url, timeout=5)
        except Exception as exc:
            if not is_transport_error(exc):
                raise
            return Check("waiting", f"GET {url}: {type(exc).__name__}")
        if response.status_code == 200:
            return READY
        return Check("waiting", f"GET {url}: HTTP {response.status_code}")

    return check


def tcp_check(host: str, port: int) -> Callable[[], Check]:
    def check() -> Check:
        try:
            with socket.create_connection((host, port), timeout=2):
                return READY
        except OSError as exc:
            return Check("waiting", f"connect {host}:{port}: {exc.strerror or exc}")

    return check
