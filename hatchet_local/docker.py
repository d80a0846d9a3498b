"""The Docker engine: whether one answers, its version and facts, images, and the
containers, volumes and networks a stack owns, found by their labels.

What only looks goes through an `Engine`: `docker_api.ApiEngine` asks the Engine API over
its socket (no process spawned), `CliEngine` here asks the docker CLI, for endpoints plain
HTTP cannot reach (ssh://, TLS) and for tests over a scripted runner. Changes (removing
objects, saving images) always go through the docker CLI.

"engine" elsewhere in hatchet-local means the Hatchet engine; here everything is Docker's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from hatchet_local import __version__
from hatchet_local.errors import CommandFailed, DockerUnavailable, HatchetLocalError, ImageMissing
from hatchet_local.runner import Result, Runner, tail

HINT = (
    "start Docker (Docker Desktop, OrbStack, Colima, or `sudo systemctl start docker`), "
    "or point DOCKER_HOST / `docker context use` at a running engine"
)
VERSION_ARGV = ("docker", "version", "--format", "{{.Server.Version}}")

# What the docker CLI and Compose print when no engine answers at all ...
_UNREACHABLE = ("Cannot connect to the Docker daemon", "error during connect")
# ... and what they may print when the engine stops answering in the middle of a command.
# A job's own output can say the same about its own connections, so these only count when
# the engine then fails to answer `docker version` as well.
_CUT_OFF = ("unexpected EOF", "connection reset by peer", "broken pipe", "use of closed network")


# --- is there an engine? -------------------------------------------------------------------


def where() -> str:
    """Where the docker CLI looks for its engine, in the user's words."""
    return os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT") or "default"


def unavailable(during: str | None = None, output: str = "") -> DockerUnavailable:
    """The one message for "no Docker engine answers", before a command or in the middle."""
    if during is None:
        return DockerUnavailable(f"no Docker engine answers ({where()}): {HINT}",
                                 details=tail(output, 5))  # fmt: skip
    return DockerUnavailable(
        f"no Docker engine answers ({where()}) during {during}: check that it runs "
        f"(`docker info`), then run the same command again",
        details=tail(output, 3),
    )


def unreachable(result: Result, runner: Runner | None = None) -> bool:
    """True when a failed docker or compose command failed because no engine answered.
    With `runner`, an ambiguous failure is settled by asking the engine."""
    if result.ok:
        return False
    if any(sign in result.output for sign in _UNREACHABLE):
        return True
    if runner is None or not any(sign in result.output for sign in _CUT_OFF):
        return False
    return not runner.run(VERSION_ARGV, timeout=30).ok


def check_reached(result: Result, during: str, runner: Runner | None = None) -> None:
    """DockerUnavailable when `result` failed because the engine did not answer: said
    plainly rather than as a failed job, a missing image or a rejected token."""
    if unreachable(result, runner):
        raise unavailable(during, result.output)


def require_ok(result: Result, what: str, runner: Runner | None = None) -> Result:
    """`result`, or CommandFailed naming `what`, the exit code and the last lines it printed
    (DockerUnavailable when the docker CLI could not reach its engine)."""
    check_reached(result, what, runner)
    if not result.ok:
        raise CommandFailed(
            f"{what} failed (exit {result.returncode})", details=tail(result.output, 10)
        )
    return result


def engine_version(runner: Runner) -> str:
    """The engine's version; DockerUnavailable with what to do when none answers."""
    try:
        result = runner.run(VERSION_ARGV, timeout=30)
    except CommandFailed as exc:
        raise DockerUnavailable(f"the docker CLI is missing: install Docker; {HINT}") from exc
    if not result.ok or not result.stdout.strip():
        raise unavailable(output=result.stderr)
    return result.stdout.strip()


@dataclass(frozen=True)
class EngineFacts:
    memory: str  # bytes, as the engine prints them
    clock: str  # the engine's time, RFC 3339


# --- images --------------------------------------------------------------------------------


def save_images(runner: Runner, engine: Engine, refs: list[str], path: Path) -> None:
    missing = [ref for ref in refs if not engine.image_present(ref)]
    if missing:
        raise ImageMissing(f"image {missing[0]} is not on this machine; pull it first")
    argv = ["docker", "save", "--output", str(path), *refs]
    require_ok(runner.run(argv, timeout=3600), f"docker save into {path}")


def load_images(runner: Runner, path: Path) -> list[str]:
    """docker's `Loaded image: ...` lines."""
    argv = ["docker", "load", "--input", str(path)]
    result = require_ok(runner.run(argv, timeout=3600), f"docker load from {path}")
    return [line for line in result.stdout.splitlines() if line.startswith("Loaded")]


# --- labels and the objects of stacks ------------------------------------------------------

LABEL_PREFIX = "io.hatchet-local"
STACK_LABEL = f"{LABEL_PREFIX}.stack"
DIRECTORY_LABEL = f"{LABEL_PREFIX}.directory"
CREATED_LABEL = f"{LABEL_PREFIX}.created"
VERSION_LABEL = f"{LABEL_PREFIX}.version"
STATE_LABEL = f"{LABEL_PREFIX}.state"
EXPIRES_LABEL = f"{LABEL_PREFIX}.expires"


def stack_labels(
    stack: str, directory: str, created: str, state: str = "", expires: str | None = None
) -> dict[str, str]:
    """Labels on every container, volume and network a stack owns. `state` names the state
    directory that records the stack: what `ls` and `prune` may call theirs."""
    labels = {
        STACK_LABEL: stack,
        DIRECTORY_LABEL: directory,
        CREATED_LABEL: created,
        VERSION_LABEL: __version__,
    }
    if state:
        labels[STATE_LABEL] = state
    if expires:
        labels[EXPIRES_LABEL] = expires
    return labels


@dataclass(frozen=True)
class DockerObject:
    kind: str  # container, volume or network
    name: str
    stack: str
    state: str = ""  # containers only: running, exited, ...
    expires: str | None = None  # ephemeral stacks' expiry label


_REMOVE = {
    "container": ["docker", "rm", "--force", "--volumes"],
    "volume": ["docker", "volume", "rm", "--force"],
    "network": ["docker", "network", "rm"],
}


def stack_filters(state: Path, stack: str | None = None) -> list[str]:
    """The labels of the objects of the stacks of state directory `state` (or of one)."""
    return [STACK_LABEL if stack is None else f"{STACK_LABEL}={stack}", f"{STATE_LABEL}={state}"]


def remove_objects(runner: Runner, objects: list[DockerObject]) -> None:
    """Remove containers first, then volumes and networks (which containers hold)."""
    for kind in ("container", "volume", "network"):
        names = [o.name for o in objects if o.kind == kind]
        if names:
            require_ok(
                runner.run([*_REMOVE[kind], *names], timeout=300),
                f"removing docker {kind}s {', '.join(names)}",
            )


def remove_volume(runner: Runner, name: str, what: str) -> None:
    require_ok(runner.run([*_REMOVE["volume"], name], timeout=60), what)


# --- containers ----------------------------------------------------------------------------

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"


@dataclass(frozen=True)
class Container:
    """One container as a listing shows it."""

    name: str
    service: str  # its compose service, "" when it has none
    state: str  # running, exited, restarting, created, paused, dead
    health: str  # healthy, starting, unhealthy, or "" without a healthcheck
    exit_code: int
    published: tuple[int, ...] = ()  # host ports it holds
    id: str = ""


@dataclass(frozen=True)
class Image:
    id: str  # sha256:..., what a tag points at now
    env: tuple[str, ...] = ()  # its configured environment, NAME=value


@dataclass(frozen=True)
class ContainerState:
    """One container as `inspect` shows it."""

    state: str
    health: str
    exit_code: int
    started_at: str  # RFC 3339, UTC; "0001-01-01T00:00:00Z" when it never ran


def health_of(status: str) -> str:
    """The health in a listing's status text: `Up 3 seconds (health: starting)`."""
    match = re.search(r"\((?:health: )?(healthy|unhealthy|starting)\)", status)
    return match.group(1) if match else ""


def exit_code_of(status: str) -> int:
    """The exit code in a listing's status text: `Exited (1) 2 seconds ago`."""
    match = re.match(r"Exited \((-?\d+)\)", status)
    return int(match.group(1)) if match else 0


def expand_ports(published: str) -> tuple[int, ...]:
    """Host ports in the CLI's `Ports` text (`0.0.0.0:8000-8002->8000-8002/tcp, ...`)."""
    ports: list[int] = []
    for first, last in re.findall(r":(\d+)(?:-(\d+))?->", published):
        ports.extend(range(int(first), int(last or first) + 1))
    return tuple(dict.fromkeys(ports))


class Engine(Protocol):
    """What hatchet-local reads from the Docker engine; nothing here changes anything."""

    def where(self) -> str:
        """Where the engine is, in the user's words (for messages)."""
        ...

    def version(self) -> str:
        """The engine's version; DockerUnavailable with what to do when none answers."""
        ...

    def api_version(self) -> str: ...

    def facts(self) -> EngineFacts: ...

    def image_present(self, ref: str) -> bool: ...

    def image_label(self, ref: str, label: str) -> str | None:
        """The value of `label` on image `ref` ("" when unset); None when it is not here."""
        ...

    def image(self, ref: str) -> Image | None:
        """The image `ref` names on this engine; None when there is none."""
        ...

    def volume_exists(self, name: str) -> bool: ...

    def stack_objects(self, state: Path, stack: str | None = None) -> list[DockerObject]:
        """The containers, volumes and networks of the stacks of state directory `state`."""
        ...

    def containers(self, labels: Sequence[str], *, all: bool = True) -> list[Container]:
        """Containers carrying every label of `labels` (`key=value` or `key`)."""
        ...

    def container(self, name: str) -> ContainerState | None:
        """One container's state; None when there is no such container."""
        ...

    def logs(self, name: str, since: str) -> str:
        """The last lines a container printed since `since` (RFC 3339), stdout and stderr."""
        ...

    def file(self, name: str, path: str) -> bytes | None:
        """The bytes of the regular file `path` in container `name` (its volumes included);
        None when there is no such container or file."""
        ...


def file_in_archive(archive: bytes) -> bytes | None:
    """The one regular file of a tar the engine made of a path (`docker cp NAME:PATH -`);
    None when the tar holds none or is not a tar."""
    import io  # noqa: PLC0415  # only a readiness probe pays for tarfile
    import tarfile  # noqa: PLC0415

    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            member = next((m for m in tar if m.isfile()), None)
            found = tar.extractfile(member) if member is not None else None
            return found.read() if found is not None else None
    except tarfile.TarError:
        return None


def unix_time(moment: str) -> str:
    """Docker's RFC 3339 time (nanoseconds, Z) as the seconds.nanoseconds its API takes."""
    whole, _, fraction = moment.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp())
    return f"{seconds}.{(fraction + '000000000')[:9]}"


def api_at_least(version: str, wanted: str) -> bool:
    """True when Engine API `version` (e.g. 1.41) is `wanted` or newer."""
    try:
        have = tuple(int(part) for part in version.split("."))
    except ValueError:
        return False
    return have >= tuple(int(part) for part in wanted.split("."))


def project_containers(engine: Engine, project: str) -> list[Container]:
    """A compose project's service containers (not its one-off job runs), as `compose ps`."""
    return engine.containers([f"{COMPOSE_PROJECT}={project}", f"{COMPOSE_ONEOFF}=False"])


def free_space(runner: Runner, container: str, path: str) -> tuple[int, int] | None:
    """(bytes free, bytes in all) of the file system holding `path` in running container
    `container` (POSIX `df -P -k` in it); None when it cannot say."""
    argv = ["docker", "exec", container, "df", "-P", "-k", path]
    result = runner.run(argv, timeout=30)
    lines = result.stdout.splitlines() if result.ok else []
    fields = lines[-1].split() if len(lines) > 1 else []
    if len(fields) < 4 or not (fields[1].isdigit() and fields[3].isdigit()):
        return None
    return int(fields[3]) * 1024, int(fields[1]) * 1024


def oneoff_containers(engine: Engine, project: str, service: str) -> list[str]:
    """Ids of the containers that one-shot runs of `service` in compose project `project`
    left (a run cut off from Docker cannot remove its own)."""
    labels = [
        f"{COMPOSE_PROJECT}={project}", f"{COMPOSE_ONEOFF}=True", f"{COMPOSE_SERVICE}={service}"
    ]  # fmt: skip
    return [c.id or c.name for c in engine.containers(labels)]


def remove_containers(runner: Runner, ids: list[str], what: str) -> None:
    check_reached(runner.run(["docker", "rm", "--force", *ids], timeout=120), what)


def published_ports(engine: Engine) -> dict[int, str]:
    """Every host port a running container publishes, alone or in a range, with the
    container's name; {} when Docker cannot say."""
    try:
        running = engine.containers([], all=False)
    except HatchetLocalError:
        return {}
    return {port: c.name for c in reversed(running) for port in c.published}


def container_publishing(engine: Engine, port: int) -> str | None:
    """The name of a running container that publishes host port `port`; None when none
    does or Docker cannot say."""
    return published_ports(engine).get(port)
