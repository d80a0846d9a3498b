"""The docker CLI as an `Engine`: what only looks, asked of `docker` processes.

Used where the Engine API is not reachable by plain HTTP from here (an ssh:// host, a TLS
endpoint, a context this process cannot read): the docker CLI then resolves the engine
itself, so `status` always looks at the engine that `up` starts stacks on.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from hatchet_local.docker import (
    COMPOSE_SERVICE,
    EXPIRES_LABEL,
    STACK_LABEL,
    Container,
    ContainerState,
    DockerObject,
    EngineFacts,
    Image,
    check_reached,
    engine_version,
    exit_code_of,
    expand_ports,
    file_in_archive,
    health_of,
    require_ok,
    stack_filters,
)
from hatchet_local.runner import Runner

_LISTS = {
    "container": ["docker", "ps", "--all"],
    "volume": ["docker", "volume", "ls"],
    "network": ["docker", "network", "ls"],
}
# One JSON object per object, each label read by its key: the CLI's `.Labels` joins every
# label with commas, which a directory name may contain.
LISTING_FORMAT = {
    kind: "{" + ",".join([
        f'"name":{{{{json .{"Names" if kind == "container" else "Name"}}}}}',
        f'"stack":{{{{json (.Label "{STACK_LABEL}")}}}}',
        f'"expires":{{{{json (.Label "{EXPIRES_LABEL}")}}}}',
        *(['"state":{{json .State}}'] if kind == "container" else []),
    ]) + "}"
    for kind in _LISTS
}  # fmt: skip
CONTAINER_FORMAT = (
    '{"id":{{json .ID}},"name":{{json .Names}},'
    f'"service":{{{{json (.Label "{COMPOSE_SERVICE}")}}}},'
    '"state":{{json .State}},"status":{{json .Status}},"ports":{{json .Ports}}}'
)


class CliEngine:
    """An `Engine` that asks the docker CLI."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def where(self) -> str:
        result = self.runner.run(["docker", "context", "show"], timeout=30)
        name = result.stdout.strip() if result.ok else ""
        host = os.environ.get("DOCKER_HOST")
        return host or (f"context {name}" if name else "default")

    def version(self) -> str:
        return engine_version(self.runner)

    def api_version(self) -> str:
        argv = ["docker", "version", "--format", "{{.Server.APIVersion}}"]
        return self.runner.run(argv, timeout=30).stdout.strip()

    def facts(self) -> EngineFacts:
        """Memory and clock from one `docker info`."""
        argv = ["docker", "info", "--format", "{{.MemTotal}} {{.SystemTime}}"]
        memory, _, clock = self.runner.run(argv, timeout=30).stdout.strip().partition(" ")
        return EngineFacts(memory, clock)

    def image_present(self, ref: str) -> bool:
        argv = ["docker", "image", "inspect", "--format", "{{.Id}}", ref]
        result = self.runner.run(argv, timeout=60)
        check_reached(result, f"looking for image {ref}")  # not "missing" for that
        return result.ok

    def image_label(self, ref: str, label: str) -> str | None:
        argv = ["docker", "image", "inspect", "--format",
                f'{{{{index .Config.Labels "{label}"}}}}', ref]  # fmt: skip
        result = self.runner.run(argv, timeout=60)
        check_reached(result, f"looking for image {ref}")
        return result.stdout.strip() if result.ok else None

    def image(self, ref: str) -> Image | None:
        argv = ["docker", "image", "inspect", "--format", "{{json .Id}} {{json .Config.Env}}", ref]
        result = self.runner.run(argv, timeout=60)
        check_reached(result, f"looking for image {ref}")
        if not result.ok:
            return None
        image_id, _, env = result.stdout.strip().partition(" ")
        return Image(json.loads(image_id), tuple(json.loads(env or "null") or ()))

    def volume_exists(self, name: str) -> bool:
        result = self.runner.run(["docker", "volume", "inspect", "--format", "{{.Name}}", name],
                                 timeout=60)  # fmt: skip
        check_reached(result, f"looking for volume {name}")
        return result.ok

    def stack_objects(self, state: Path, stack: str | None = None) -> list[DockerObject]:
        filters = [word for label in stack_filters(state, stack)
                   for word in ("--filter", f"label={label}")]  # fmt: skip
        objects = []
        for kind, argv in _LISTS.items():
            result = self.runner.run([*argv, *filters, "--format", LISTING_FORMAT[kind]],
                                     timeout=60)  # fmt: skip
            if not result.ok:
                self.version()  # DockerUnavailable, with what to do, when none answers
            require_ok(result, f"listing docker {kind}s")
            for line in result.stdout.splitlines():
                row = json.loads(line)
                objects.append(
                    DockerObject(
                        kind=kind,
                        name=str(row["name"]),
                        stack=str(row.get("stack") or ""),
                        state=str(row.get("state") or ""),
                        expires=row.get("expires") or None,
                    )
                )
        return objects

    def containers(self, labels: Sequence[str], *, all: bool = True) -> list[Container]:
        argv = ["docker", "ps", *(["--all"] if all else [])]
        argv += [f"--filter=label={label}" for label in labels]
        result = self.runner.run([*argv, "--format", CONTAINER_FORMAT], timeout=60)
        require_ok(result, "listing docker containers", self.runner)
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return [
            Container(
                name=str(row.get("name", "")),
                service=str(row.get("service") or ""),
                state=str(row.get("state", "")),
                health=health_of(str(row.get("status", ""))),
                exit_code=exit_code_of(str(row.get("status", ""))),
                published=expand_ports(str(row.get("ports") or "")),
                id=str(row.get("id", "")),
            )
            for row in rows
        ]

    def container(self, name: str) -> ContainerState | None:
        argv = ["docker", "inspect", "--type", "container", "--format", "{{json .State}}", name]
        result = self.runner.run(argv, timeout=30)
        if not result.ok:
            check_reached(result, f"looking at container {name}")
            return None
        raw = json.loads(result.stdout)
        return state_from(raw) if isinstance(raw, dict) else None

    def logs(self, name: str, since: str) -> str:
        argv = ["docker", "logs", "--since", since, "--tail", "300", name]
        return self.runner.run(argv, timeout=30).output

    def file(self, name: str, path: str) -> bytes | None:
        archive = io.BytesIO()
        result = self.runner.stream(["docker", "cp", f"{name}:{path}", "-"], sink=archive,
                                    timeout=30)  # fmt: skip
        if not result.ok:
            check_reached(result, f"reading {path} in {name}")
            return None
        return file_in_archive(archive.getvalue())


def state_from(raw: dict[str, object]) -> ContainerState:
    """A ContainerState from an inspect's `State` object (the CLI's and the API's alike)."""
    health = raw.get("Health")
    return ContainerState(
        state=str(raw.get("Status", "")),
        health=str(health.get("Status", "")) if isinstance(health, dict) else "",
        exit_code=int(str(raw.get("ExitCode") or 0)),
        started_at=str(raw.get("StartedAt") or ""),
    )


def docker_config_dir(environ: Mapping[str, str]) -> Path:
    """The docker CLI's config folder: $DOCKER_CONFIG, else ~/.docker."""
    configured = environ.get("DOCKER_CONFIG")
    return Path(configured or Path(environ.get("HOME", "~")) / ".docker").expanduser()
