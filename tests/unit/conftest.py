"""Fixtures shared by the unit tests: a world of fake Docker + Hatchet behind a Context, and the
command line over such a world or over none."""

from __future__ import annotations

import io
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import settings

from hatchet_local.console import Console
from hatchet_local.context import Context
from hatchet_local.health import READY, Check
from tests.unit.fakes import FakeClock, FakeHatchet, FakeRunner
from tests.unit.harness import Cli, World

# No deadline: a property test is checked for what it asserts, never for how fast it ran (the
# machine may be busy).
settings.register_profile("hatchet-local", deadline=None)
settings.load_profile("hatchet-local")


@pytest.fixture(autouse=True, scope="session")
def _stop_signals_at_python_defaults() -> None:
    """The signal tests exercise hatchet-local's handlers as a foreground command has them.
    A shell starts a background job (`pytest &`, `nohup`) with SIGINT, and with nohup
    SIGHUP, ignored, which hatchet-local rightly leaves ignored: Python's defaults here."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A project directory and a Context over a fake Docker + Hatchet, a fake clock and a gRPC
    probe that answers ready (recording what it was asked)."""
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    probes: list[tuple[str, int]] = []

    def fake_tcp_check(host: str, port: int) -> Callable[[], Check]:
        def check() -> Check:
            probes.append((host, port))
            return READY

        return check

    project = tmp_path / "project"
    project.mkdir()
    runner = FakeRunner()
    hatchet = FakeHatchet(runner)
    clock = FakeClock()
    with httpx.Client(transport=hatchet.transport) as http:
        ctx = Context(
            runner=runner,
            console=Console(io.StringIO()),
            http=http,
            state_root=tmp_path / "state",
            clock=clock,
            sleep=clock.sleep,
            tcp_check=fake_tcp_check,
            interval=1.0,
        )
        yield World(project, runner, hatchet, clock, ctx, probes)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def no_context() -> Iterator[tuple[Cli, list[str]]]:
    """The CLI, failing the test if a command builds a context (i.e. would reach Docker)."""
    built: list[str] = []

    def refuse(*, quiet: bool = False) -> Context:
        built.append("context")
        raise AssertionError("the command must not reach Docker")

    yield Cli(refuse), built


@pytest.fixture
def fake_world(state_dir: Path) -> Iterator[tuple[FakeRunner, FakeHatchet, Cli]]:
    """The CLI over a fake Docker and Hatchet; the gRPC probe succeeds."""
    runner = FakeRunner()
    hatchet = FakeHatchet(runner)
    clock = FakeClock()
    with httpx.Client(transport=hatchet.transport) as http:

        def context(*, quiet: bool = False) -> Context:
            return Context(
                runner=runner,
                console=Console(io.StringIO(), quiet=quiet),
                http=http,
                state_root=state_dir,
                clock=clock,
                sleep=clock.sleep,
                tcp_check=lambda host, port: lambda: READY,
            )

        yield runner, hatchet, Cli(context)
