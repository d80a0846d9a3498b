"""The Docker engine, through the docker CLI (so Docker contexts and DOCKER_HOST both work)."""

from __future__ import annotations

import os

from hatchet_local.errors import CommandFailed, DockerUnavailable
from hatchet_local.runner import Runner, tail

HINT = (
    "start Docker (Docker Desktop, OrbStack, Colima, or `sudo systemctl start docker`), "
    "or point DOCKER_HOST / `docker context use` at a running engine"
)


def engine_version(runner: Runner) -> str:
    """The engine's version; DockerUnavailable with what to do when none answers."""
    try:
        result = runner.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=30)
    except CommandFailed as exc:
        raise DockerUnavailable(f"the docker CLI is missing: install Docker; {HINT}") from exc
    if not result.ok or not result.stdout.strip():
        where = os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT") or "default"
        raise DockerUnavailable(
            f"no Docker engine answers ({where}): {HINT}",
            details=tail(result.stderr, 5),
        )
    return result.stdout.strip()


def image_present(runner: Runner, ref: str) -> bool:
    return runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=60).ok
