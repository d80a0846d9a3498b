"""A cut-short run's stacks are cleared before the next run; nothing else is."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import leftovers
from tests.support.stacks import NOTHING, RIG_IMAGES, labelled

pytestmark = pytest.mark.docker


def make_project(name: str, labels: dict[str, str]) -> None:
    """A Compose-like project made with plain docker: a volume, a network, a container."""
    flags = [f"--label={k}={v}" for k, v in {"com.docker.compose.project": name, **labels}.items()]
    run = ["docker", "create", "--network", f"{name}_default", "-v", f"{name}_data:/data"]
    for argv in (
        ["docker", "volume", "create", *flags, f"{name}_data"],
        ["docker", "network", "create", *flags, f"{name}_default"],
        [*run, *flags, RIG_IMAGES["postgres"], "true"],
    ):
        subprocess.run(argv, capture_output=True, check=True)


def test_a_dead_runs_stacks_are_cleared_and_a_users_are_kept(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    root = tmp_path / "pytest-of-someone"
    dead, central, users = f"dead-{tag}", f"hl-central-{tag}", f"mine-{tag}"
    make_project(dead, {"io.hatchet-local.state": f"{root}/pytest-7/test_x0/state"})
    make_project(central, {"io.hatchet-local.test": "central"})
    make_project(users, {"io.hatchet-local.state": f"{tmp_path}/home/.local/state"})
    try:
        found = leftovers.leftover_projects(root)
        assert {dead, central} <= found
        assert users not in found
        leftovers.clear({dead, central})
        assert labelled(f"com.docker.compose.project={dead}") == NOTHING
        assert labelled(f"com.docker.compose.project={central}") == NOTHING
        kept = labelled(f"com.docker.compose.project={users}")
        assert all(len(kept[kind]) == 1 for kind in NOTHING), kept
    finally:
        leftovers.clear({dead, central, users})
    assert labelled(f"com.docker.compose.project={users}") == NOTHING
