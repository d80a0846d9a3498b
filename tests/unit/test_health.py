"""Readiness checks and the loop that waits on them, on a fake clock."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import cast

import httpx
import pytest

from hatchet_local.compose import Compose, ServiceState
from hatchet_local.errors import HealthTimeout, ServiceUnhealthy
from hatchet_local.health import READY, Check, http_check, service_check, tcp_check, wait_for
from tests.unit.fakes import FakeClock, answering, unreachable

WAITING = Check("waiting", "health starting")


def scripted(*results: Check) -> tuple[Callable[[], Check], list[Check]]:
    """A check answering `results` in turn (the last one forever), and the list of answers."""
    given: list[Check] = []

    def check() -> Check:
        result = results[min(len(given), len(results) - 1)]
        given.append(result)
        return result

    return check, given


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def wait(
    clock: FakeClock, check: Callable[[], Check], timeout: float, interval: float = 1.0
) -> float:
    return wait_for("postgres", check, timeout, interval=interval, clock=clock, sleep=clock.sleep)


# --- wait_for -------------------------------------------------------------------------------


def test_ready_at_once_does_not_sleep(clock: FakeClock) -> None:
    check, given = scripted(READY)
    assert wait(clock, check, 60) == 0
    assert given == [READY]
    assert clock.sleeps == []


def test_ready_after_some_polls(clock: FakeClock) -> None:
    check, given = scripted(WAITING, WAITING, WAITING, READY)
    assert wait(clock, check, 60, interval=2) == 6
    assert len(given) == 4
    assert clock.sleeps == [2, 2, 2]


def test_timeout_names_what_elapsed_timeout_and_last_status(clock: FakeClock) -> None:
    check, given = scripted(Check("waiting", "container created"), WAITING)
    started = time.perf_counter()
    with pytest.raises(HealthTimeout) as info:
        wait(clock, check, 120)
    assert time.perf_counter() - started < 0.5  # the fake clock makes two minutes instant
    assert info.value.message == (
        "postgres not ready after 120s (timeout 120s); last status: health starting"
    )
    assert info.value.exit_code == 6
    assert len(given) == 121  # once at 0s, then once a second up to and including 120s
    assert sum(clock.sleeps) == 120


def test_last_sleep_is_cut_to_the_time_left(clock: FakeClock) -> None:
    check, _ = scripted(WAITING)
    with pytest.raises(HealthTimeout) as info:
        wait(clock, check, 2.5)
    assert clock.sleeps == [1, 1, 0.5]
    assert "not ready after 2s (timeout 2s)" in info.value.message  # rounded for people


def test_failed_check_stops_at_once(clock: FakeClock) -> None:
    check, given = scripted(WAITING, WAITING, Check("failed", "container exited with code 1"))
    with pytest.raises(ServiceUnhealthy) as info:
        wait(clock, check, 600)
    assert type(info.value) is ServiceUnhealthy
    assert info.value.message == "postgres failed after 2s: container exited with code 1"
    assert len(given) == 3
    assert clock.sleeps == [1, 1]


def test_failure_on_the_first_check_beats_a_zero_timeout(clock: FakeClock) -> None:
    check, _ = scripted(Check("failed", "no container (was it removed?)"))
    with pytest.raises(ServiceUnhealthy) as info:
        wait(clock, check, 0)
    assert type(info.value) is ServiceUnhealthy


# --- service_check --------------------------------------------------------------------------


class FakeCompose:
    """Just enough of Compose for service_check: `state()` answers the states given."""

    def __init__(self, *states: ServiceState) -> None:
        self.states = list(states)
        self.asked: list[str] = []

    def state(self, service: str) -> ServiceState | None:
        self.asked.append(service)
        return next((s for s in self.states if s.service == service), None)


def check_of(*states: ServiceState) -> Check:
    fake = FakeCompose(ServiceState("migrate", "exited", "", 0), *states)
    result = service_check(cast(Compose, fake), "postgres")()
    assert fake.asked == ["postgres"]
    return result


@pytest.mark.parametrize(
    ("state", "health", "exit_code", "expected"),
    [
        ("running", "healthy", 0, READY),
        ("running", "", 0, Check("waiting", "no health status yet")),  # e.g. between restarts
        ("running", "starting", 0, Check("waiting", "health starting")),
        ("created", "", 0, Check("waiting", "container created")),
        ("running", "unhealthy", 0, Check("failed", "healthcheck reports unhealthy")),
        ("exited", "", 1, Check("failed", "container exited with code 1")),
        ("exited", "", 0, Check("failed", "container exited with code 0")),
        ("dead", "", 137, Check("failed", "container dead with code 137")),
        ("restarting", "", 3, Check("failed", "container keeps restarting (last exit 3)")),
    ],
)
def test_service_check_outcomes(state: str, health: str, exit_code: int, expected: Check) -> None:
    assert check_of(ServiceState("postgres", state, health, exit_code)) == expected


def test_a_service_without_healthcheck_is_ready_when_running() -> None:
    fake = FakeCompose(ServiceState("postgres", "running", "", 0))
    assert service_check(cast(Compose, fake), "postgres", healthcheck=False)() == READY


def test_service_check_of_an_absent_service() -> None:
    assert check_of(ServiceState("rabbitmq", "running", "healthy", 0)) == Check(
        "failed", "no container (was it removed?)"
    )


def test_service_check_asks_docker_every_time(clock: FakeClock) -> None:
    fake = FakeCompose(ServiceState("postgres", "running", "starting", 0))
    check = service_check(cast(Compose, fake), "postgres")
    with pytest.raises(HealthTimeout) as info:
        wait(clock, check, 3)
    assert fake.asked == ["postgres"] * 4
    assert info.value.message.endswith("last status: health starting")


# --- http_check -----------------------------------------------------------------------------

URL = "http://localhost:18080/api/ready"


@pytest.fixture
def requests() -> list[httpx.Request]:
    return []


def test_http_200_is_ready(requests: list[httpx.Request]) -> None:
    with answering(lambda _: httpx.Response(200, text="ok"), requests) as client:
        assert http_check(client, URL)() == READY
    assert [(r.method, str(r.url)) for r in requests] == [("GET", URL)]


def test_http_503_is_waiting(requests: list[httpx.Request]) -> None:
    with answering(lambda _: httpx.Response(503), requests) as client:
        assert http_check(client, URL)() == Check("waiting", f"GET {URL}: HTTP 503")


def test_http_connect_error_is_waiting(requests: list[httpx.Request]) -> None:
    with answering(unreachable(), requests) as client:
        assert http_check(client, URL)() == Check("waiting", f"GET {URL}: ConnectError")
    assert len(requests) == 1


def test_http_check_until_ready(requests: list[httpx.Request], clock: FakeClock) -> None:
    statuses = [502, 503, 200]

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(statuses.pop(0))

    with answering(answer, requests) as client:
        assert wait(clock, http_check(client, URL), 60) == 2
    assert len(requests) == 3


# --- tcp_check ------------------------------------------------------------------------------


def test_tcp_check_of_a_listening_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert tcp_check("127.0.0.1", port)() == READY


def test_tcp_check_of_a_closed_port_is_waiting() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        result = tcp_check("127.0.0.1", port)()
    assert result.outcome == "waiting"
    assert result.detail.startswith(f"connect 127.0.0.1:{port}: ")
