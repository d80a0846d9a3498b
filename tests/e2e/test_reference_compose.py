"""The reference stacks are valid for Compose v2 itself, with the example env file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hatchet_local.state import SECRET_NAMES
from tests.support.stacks import compose_command

pytestmark = pytest.mark.docker

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


@pytest.mark.parametrize("name", ["hatchet-local.yaml", "hatchet-local-postgres-queue.yaml"])
def test_compose_accepts_the_reference_stack(name: str) -> None:
    check = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE / name), "--env-file", str(COMPOSE / "example.env"),
         "config", "--quiet"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_compose_refuses_the_reference_stack_without_secrets() -> None:
    bare_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home())}
    check = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE / "hatchet-local.yaml"), "config", "--quiet"],
        capture_output=True, text=True, check=False, env=bare_env,
    )  # fmt: skip
    assert check.returncode != 0
    # Compose names the first missing variable it meets, in no fixed order.
    assert "is missing a value" in check.stderr
    assert any(name in check.stderr for name in SECRET_NAMES)
