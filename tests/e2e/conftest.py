from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support import clients, leftovers
from tests.support.central import Central, build_images
from tests.support.stacks import E2E, RIG_IMAGES, Project, running_stack


@dataclass(frozen=True)
class SdkLane:
    """One hatchet-sdk to prove the stack with, in a venv of its own."""

    name: str  # "pinned" (the engine's own) or "newest" (PyPI's, resolved now)
    version: str
    python: str


@pytest.fixture(scope="session", autouse=True)
def one_session_at_a_time_clears() -> Iterator[None]:
    """A dead run's stacks restart with dockerd and starve this one: cleared first, unless
    another session is alive on this machine (tests/support/leftovers.py)."""
    with leftovers.session():
        yield


@pytest.fixture(scope="session", params=["pinned", "newest"])
def sdk_lane(request: pytest.FixtureRequest) -> SdkLane:
    """hatchet-sdk 1.37.2 (released with the pinned engine), then the newest release on
    PyPI that is not yanked: the round trip and both isolation tests run with each."""
    lane = str(request.param)
    version = clients.PINNED_SDK if lane == "pinned" else clients.newest_sdk_version()
    python = clients.sdk_python(version)
    assert clients.installed_sdk_version(python) == version
    return SdkLane(lane, version, str(python))


@pytest.fixture(scope="session")
def rig_images() -> dict[str, str]:
    """The rig's stand-in images. Missing images fail the run: they are never skipped."""
    check = subprocess.run(
        [sys.executable, str(E2E / "images" / "rig.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        pytest.fail(check.stdout + check.stderr, pytrace=False)
    return RIG_IMAGES


@pytest.fixture(scope="session")
def shared_stack(
    rig_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """One running default stack (RabbitMQ queue) for every test that does not test
    isolation; removed with its data at the end, and checked to leave nothing behind."""
    root = tmp_path_factory.mktemp("shared")
    yield from running_stack(Project(root / f"app-{uuid.uuid4().hex[:6]}", root / "state"))


# The central instance while it runs: it goes after the last test that needs it.
_LIVE_CENTRAL: list[Central] = []


@pytest.fixture(scope="session")
def central(
    rig_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Central]:
    """One central instance (tests/support/central.py) for the session: built from the
    rig's caches, started with plain `docker compose`, removed with its data after the last
    test that needs it (pytest_runtest_teardown below), or at the end."""
    instance = Central(tmp_path_factory.mktemp("central"), build_images())
    _LIVE_CENTRAL.append(instance)
    try:
        instance.start()
        yield instance
    finally:
        if instance in _LIVE_CENTRAL:
            _LIVE_CENTRAL.remove(instance)
            instance.destroy()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Idle, the central instance's five Hatchet processes and its Postgres take about a
    fifth of the rig's two cores: it is removed once no test left in the run needs it."""
    if not _LIVE_CENTRAL or "central" not in getattr(item, "fixturenames", ()):
        return
    later = item.session.items[item.session.items.index(item) + 1 :]
    if not any("central" in getattr(other, "fixturenames", ()) for other in later):
        _LIVE_CENTRAL.pop().destroy()
