"""A port is taken when something listens on it or Docker publishes it, not when connections
that have ended linger (issue #16: after `down` with a worker connected, the next `up`
refused the stack's own gRPC port for up to a minute)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hatchet_local.ports import port_is_free, ports_taken
from tests.unit.fakes import FakeRunner, container_listing

TIME_WAIT = "06"  # TCP state in /proc/net/tcp


def states_of(port: int) -> set[str]:
    """The TCP states of this host's IPv4 sockets whose local port is `port`."""
    states = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            states.add(fields[3])
    return states


@pytest.fixture
def lingering_port() -> int:
    """A port whose server closed a client's connection first and then stopped listening:
    what a stack's gRPC port looks like right after `down` with a worker connected. Only a
    TIME_WAIT socket is left on it. The server sets SO_REUSEADDR as Docker's port proxy (a Go
    listener) does; the kernel lets a port be bound over TIME_WAIT only when both did."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server ends first: its side goes to TIME_WAIT
        assert client.recv(1) == b""
        client.close()
    deadline = time.monotonic() + 10
    while states_of(port) != {TIME_WAIT}:
        assert time.monotonic() < deadline, f"no lone TIME_WAIT on {port}: {states_of(port)}"
        time.sleep(0.01)
    return port


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_a_port_with_only_time_wait_connections_is_free(lingering_port: int) -> None:
    # The kernel does refuse a plain bind there: the situation the old check tripped on.
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", lingering_port))
    assert port_is_free(lingering_port)
    runner = FakeRunner()
    runner.on("docker", "ps", "--format", stdout="")
    assert ports_taken([lingering_port], runner) == {}


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
        yield int(server.getsockname()[1])


def test_a_port_something_listens_on_is_taken_on_every_address(listening: int) -> None:
    assert not port_is_free(listening)
    assert not port_is_free(listening, "0.0.0.0")


def test_a_bound_socket_that_does_not_listen_takes_the_port_too() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        assert not port_is_free(int(bound.getsockname()[1]))


def test_a_port_docker_publishes_with_nothing_listening_is_taken() -> None:
    """Docker with the userland proxy off publishes through the firewall only."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    runner = FakeRunner()
    runner.on("docker", "ps", "--format",
              stdout=container_listing(("other-db", f"127.0.0.1:{port}->5432/tcp")))  # fmt: skip
    assert ports_taken([port], runner) == {
        port: "container other-db publishes it; stop it with `docker stop other-db`"
    }
    # One `docker ps` answers for every port asked about.
    assert len(runner.calls) == 1
