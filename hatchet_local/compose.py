"""Docker Compose v2, driven through the Runner: argv building, state, starts, one-shot jobs,
logs."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hatchet_local import docker
from hatchet_local.docker_cli import CliEngine
from hatchet_local.errors import CommandFailed
from hatchet_local.redact import Redactor
from hatchet_local.runner import Result, Runner, child_env, tail
from hatchet_local.state import SECRET_NAMES


def compose_argv(
    base: Sequence[str], project: str, file: Path, env_file: Path, *args: str
) -> list[str]:
    """The full argv of one compose command: always this stack's project, file and env file."""
    return [
        *base,
        "--project-name",
        project,
        "--file",
        str(file),
        "--env-file",
        str(env_file),
        *args,
    ]


@dataclass(frozen=True)
class ServiceState:
    service: str
    state: str  # running, exited, restarting, created, paused, dead
    health: str  # healthy, starting, unhealthy, or "" without a healthcheck
    exit_code: int
    published: tuple[int, ...] = ()  # host ports this container holds
    started_at: str = ""  # RFC 3339 when an inspect gave it; "" from a listing


class Compose:
    """One stack's compose project: Compose v2 makes, changes and removes it, `docker
    start` starts the containers Compose made, and an Engine looks at it."""

    def __init__(
        self,
        runner: Runner,
        *,
        base: Sequence[str] | Callable[[], Sequence[str]],
        project: str,
        file: Path,
        env_file: Path,
        redact: Redactor,
        docker: docker.Engine | None = None,
    ) -> None:
        self.runner = runner
        # Finding Compose runs two processes: a command that only looks never pays it.
        self._base = base
        self.project = project
        self.file = file
        self.env_file = env_file
        self.redact = redact
        self.docker = docker or CliEngine(runner)

    @property
    def base(self) -> list[str]:
        return list(self._base() if callable(self._base) else self._base)

    def argv(self, *args: str) -> list[str]:
        return compose_argv(self.base, self.project, self.file, self.env_file, *args)

    def container_name(self, service: str) -> str:
        return f"{self.project}-{service}-1"

    def run(
        self,
        *args: str,
        timeout: float | None = None,
        check: bool = True,
        capture: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """`env` joins compose's environment (values that must stay out of argv)."""
        # Drop the secrets' names from our environment: compose prefers the shell's value to
        # the env file's, and a stray POSTGRES-like variable must not replace a stack's secret.
        environment = {**child_env(SECRET_NAMES), **(env or {})}
        result = self.runner.run(
            self.argv(*args), env=environment, timeout=timeout, capture=capture
        )
        # Even unchecked: a job or an exec cut off from Docker did not fail on its own.
        docker.check_reached(
            result, f"`docker compose {args[0]}` for stack {self.project}", self.runner
        )
        if check and not result.ok:
            raise CommandFailed(
                f"docker compose {args[0]} failed for stack {self.project} "
                f"(exit {result.returncode})",
                details=self.redact(tail(result.stderr or result.stdout)),
            )
        return result

    def ps(self) -> list[ServiceState]:
        """The project's service containers, as `compose ps --all` lists them (one Engine
        API request rather than a Compose process that loads the whole project)."""
        return [
            ServiceState(c.service, c.state, c.health, c.exit_code, c.published)
            for c in docker.project_containers(self.docker, self.project)
        ]

    def state(self, service: str) -> ServiceState | None:
        """One service's container, or None when it has none: one inspect by name, with the
        listing as the fallback for a container not named `<project>-<service>-1`."""
        found = self.docker.container(self.container_name(service))
        if found is None:
            return next((s for s in self.ps() if s.service == service), None)
        return ServiceState(service, found.state, found.health, found.exit_code,
                            started_at=found.started_at)  # fmt: skip

    def up(self, *services: str, no_deps: bool = False, timeout: float | None = None) -> None:
        # --remove-orphans: a service dropped from the file (RabbitMQ after switching to the
        # Postgres queue) loses its container; its volume stays.
        flags = ["--detach", "--remove-orphans"]
        if no_deps:
            flags.append("--no-deps")
        self.run("up", *flags, *services, timeout=timeout)

    def create(self, *services: str, timeout: float | None = 300) -> None:
        """Make the services' containers (and the network) as the file says, starting none;
        `start` then starts each when it is wanted. Only these: the engine's `depends_on`
        would make a container for each job too."""
        self.run("up", "--no-start", "--no-deps", "--remove-orphans", *services, timeout=timeout)

    def start(self, *services: str, timeout: float | None = 120) -> None:
        """Start containers `create` made, with one `docker start`: Compose's `up` would read
        the file and the project's state again first, about half a second each time."""
        names = [self.container_name(service) for service in services]
        result = self.runner.run(["docker", "start", *names], timeout=timeout)
        docker.require_ok(result, f"`docker start` for stack {self.project}", self.runner)

    def remove_leftover_runs(self, service: str) -> int:
        """Remove the containers of earlier one-shot runs of `service` that were never removed
        (Compose cut off from Docker mid-job cannot remove its own); returns how many."""
        ids = docker.oneoff_containers(self.docker, self.project, service)
        if ids:
            docker.remove_containers(self.runner, ids, f"removing leftover {service} containers")
        return len(ids)

    def exec(
        self,
        service: str,
        *command: str,
        timeout: float = 120,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """`command` in `service`'s running container, to completion: one `docker exec`
        (`docker compose exec` would load the whole project first, about 0.1 s of CPU each
        time). `env` is set in it by name only (`-e NAME`), so a secret among its values never
        shows in a command line. The caller judges the exit code; Docker out of reach is
        `DockerUnavailable`."""
        names = [flag for name in env or {} for flag in ("-e", name)]
        argv = ["docker", "exec", *names, self.container_name(service), *command]
        result = self.runner.run(
            argv, env={**child_env(SECRET_NAMES), **(env or {})}, timeout=timeout
        )
        docker.check_reached(result, f"`docker exec` for stack {self.project}", self.runner)
        return result

    def logs(self, service: str | None = None, lines: int | None = 30) -> str:
        """The last `lines` log lines (all with None), secrets masked."""
        args = ["logs", "--no-color", "--tail", "all" if lines is None else str(lines)]
        result = self.run(*args, *([service] if service else []), timeout=60, check=False)
        return self.redact(result.stdout + result.stderr)

    def down(self, volumes: bool = False) -> None:
        self.run("down", "--remove-orphans", *(["--volumes"] if volumes else []), timeout=300)


def parse_ps(out: str) -> list[ServiceState]:
    """`compose ps --format json` prints one object per line (v2.21+) or one array (older)."""
    text = out.strip()
    if not text:
        return []
    rows = json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
    return [
        ServiceState(
            service=str(row.get("Service", "")),
            state=str(row.get("State", "")),
            health=str(row.get("Health", "")),
            exit_code=int(row.get("ExitCode") or 0),
            published=tuple(
                int(p["PublishedPort"])
                for p in row.get("Publishers") or []
                if p.get("PublishedPort")
            ),
        )
        for row in rows
    ]
