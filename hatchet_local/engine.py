"""The Docker engine, through the docker CLI (so Docker contexts and DOCKER_HOST both work)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hatchet_local.errors import CommandFailed, DockerUnavailable
from hatchet_local.runner import Runner, require_ok, tail

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
        raise _unavailable(result.stderr)
    return result.stdout.strip()


def _unavailable(stderr: str) -> DockerUnavailable:
    where = os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT") or "default"
    return DockerUnavailable(f"no Docker engine answers ({where}): {HINT}", details=tail(stderr, 5))


def raise_if_unreachable(stderr: str) -> None:
    """DockerUnavailable when a failed docker or compose command says no engine answers."""
    if "Cannot connect to the Docker daemon" in stderr or "error during connect" in stderr:
        raise _unavailable(stderr)


def image_present(runner: Runner, ref: str) -> bool:
    return runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=60).ok


STACK_LABEL = "io.hatchet-local.stack"
STATE_LABEL = "io.hatchet-local.state"
EXPIRES_LABEL = "io.hatchet-local.expires"
_LISTS = {
    "container": ["docker", "ps", "--all"],
    "volume": ["docker", "volume", "ls"],
    "network": ["docker", "network", "ls"],
}
_REMOVE = {
    "container": ["docker", "rm", "--force", "--volumes"],
    "volume": ["docker", "volume", "rm", "--force"],
    "network": ["docker", "network", "rm"],
}


@dataclass(frozen=True)
class DockerObject:
    kind: str  # container, volume or network
    name: str
    stack: str
    state: str = ""  # containers only: running, exited, ...
    expires: str | None = None  # ephemeral stacks' expiry label


def stack_objects(runner: Runner, state: Path, stack: str | None = None) -> list[DockerObject]:
    """Every container, volume and network of the stacks recorded in state directory `state`
    (or of one of them). Stacks of other state directories on the same engine are not ours."""
    label = STACK_LABEL if stack is None else f"{STACK_LABEL}={stack}"
    filters = ["--filter", f"label={label}", "--filter", f"label={STATE_LABEL}={state}"]
    objects = []
    for kind, argv in _LISTS.items():
        result = runner.run([*argv, *filters, "--format", "{{json .}}"], timeout=60)
        if not result.ok:
            engine_version(runner)  # DockerUnavailable, with what to do, when none answers
        require_ok(result, f"listing docker {kind}s")
        for line in result.stdout.splitlines():
            row = json.loads(line)
            labels = dict(
                item.split("=", 1) for item in str(row.get("Labels", "")).split(",") if "=" in item
            )
            objects.append(
                DockerObject(
                    kind=kind,
                    name=str(row.get("Names") or row.get("Name")),
                    stack=labels.get(STACK_LABEL, ""),
                    state=str(row.get("State", "")) if kind == "container" else "",
                    expires=labels.get(EXPIRES_LABEL),
                )
            )
    return objects


def remove_objects(runner: Runner, objects: list[DockerObject]) -> None:
    """Remove containers first, then volumes and networks (which containers hold)."""
    for kind in ("container", "volume", "network"):
        names = [o.name for o in objects if o.kind == kind]
        if names:
            require_ok(
                runner.run([*_REMOVE[kind], *names], timeout=300),
                f"removing docker {kind}s {', '.join(names)}",
            )
