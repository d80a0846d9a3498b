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

from hatchet_local.docker import COMPOSE_PROJECT, LABEL_PREFIX, STATE_LABEL
from tests.support.stacks import labelled

LOCK = Path(tempfile.gettempdir()) / "hatchet-local-tests.lock"
TEST_LABEL = f"{LABEL_PREFIX}.test"  # tests/central/compose.yaml, tests/e2e/rig-compose.yaml


def pytest_root() -> Path:
    """Where pytest puts every session's temporary directories (`pytest-of-USER`)."""
    return Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"


def _docker(*args: str) -> list[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def leftover_projects(root: Path) -> set[str]:
    """The Compose projects the tests made: labelled as a test's, or kept under `root`."""
    fields = "\t".join(
        f'{{{{.Label "{label}"}}}}' for label in (COMPOSE_PROJECT, TEST_LABEL, STATE_LABEL)
    )
    having = ("--filter", f"label={COMPOSE_PROJECT}", "--format", fields)
    rows = _docker("container", "ls", "-a", *having) + _docker("volume", "ls", *having)
    under = f"{root}/"
    return {
        project
        for project, test, state in (row.split("\t") for row in rows)
        if test or state.startswith(under)
    }


def clear(projects: set[str]) -> None:
    """Remove each project's containers, volumes and networks."""
    for project in sorted(projects):
        found = labelled(f"{COMPOSE_PROJECT}={project}")
        if found["containers"]:
            _docker("container", "rm", "--force", "--volumes", *found["containers"])
        if found["volumes"]:
            _docker("volume", "rm", "--force", *found["volumes"])
        if found["networks"]:
            _docker("network", "rm", *found["networks"])


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
