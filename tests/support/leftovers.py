"""What a test run that was cut short left in Docker, and clearing it before the next run.

A run stopped mid-way (a CI timeout, a machine stopped or snapshotted) leaves its stacks
behind, and their restart policy brings them back whenever dockerd starts: on a 2-core
machine a handful of engines in restart loops starve the next run. Only what the tests
made is touched: Compose projects with a container or volume labelled
`io.hatchet-local.test` (the central server, the rig's own stack) or whose hatchet-local
state lives under pytest's temporary root. A user's own stacks are never matched.

Two runs on one machine would clear each other's stacks, so every e2e session holds a
shared lock on `LOCK` for its whole life, and clears only when it can first take the
lock alone: then no other session is alive, and what matches is a dead run's.
"""

from __future__ import annotations

import fcntl
import getpass
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = Path(tempfile.gettempdir()) / "hatchet-local-tests.lock"
TEST_LABEL = "io.hatchet-local.test"
STATE_LABEL = "io.hatchet-local.state"
PROJECT_LABEL = "com.docker.compose.project"


def pytest_root() -> Path:
    """Where pytest puts every session's temporary directories (`pytest-of-USER`)."""
    return Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"


def _docker(*args: str) -> list[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def _labels(kind: str, fmt: str) -> list[tuple[str, str, str]]:
    """(project, test label, state label) of every container or volume with a project."""
    rows = _docker(kind, "ls", *(["-a"] if kind == "container" else []),
                   "--filter", f"label={PROJECT_LABEL}", "--format", fmt)  # fmt: skip
    return [tuple(row.split("\t")) for row in rows]  # type: ignore[misc]


def leftover_projects(root: Path) -> set[str]:
    """The Compose projects the tests made: labelled as a test's, or kept under `root`."""
    fields = "\t".join(
        f'{{{{.Label "{label}"}}}}' for label in (PROJECT_LABEL, TEST_LABEL, STATE_LABEL)
    )
    found = _labels("container", fields) + _labels("volume", fields)
    under = f"{root}/"
    return {project for project, test, state in found if test or state.startswith(under)}


def clear(projects: set[str]) -> None:
    """Remove each project's containers, volumes and networks."""
    for project in sorted(projects):
        label = f"label={PROJECT_LABEL}={project}"
        if containers := _docker("container", "ls", "-aq", "--filter", label):
            _docker("container", "rm", "--force", "--volumes", *containers)
        if volumes := _docker("volume", "ls", "-q", "--filter", label):
            _docker("volume", "rm", "--force", *volumes)
        if networks := _docker("network", "ls", "-q", "--filter", label):
            _docker("network", "rm", *networks)


@contextmanager
def session() -> Iterator[None]:
    """Hold the shared lock for a test session. A session that can take the lock alone
    first (no other session is alive) clears a dead run's leftovers before it shares it."""
    with LOCK.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            clear(leftover_projects(pytest_root()))
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield
