"""The Docker engine, through the docker CLI (so Docker contexts and DOCKER_HOST both work):
whether one answers, its version and facts, images, and the containers, volumes and networks
a stack owns, found by their labels.

"engine" elsewhere in hatchet-local means the Hatchet engine; here everything is Docker's.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hatchet_local import __version__
from hatchet_local.errors import CommandFailed, DockerUnavailable, ImageMissing
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


def engine_facts(runner: Runner) -> EngineFacts:
    """Memory and clock from one `docker info`."""
    argv = ["docker", "info", "--format", "{{.MemTotal}} {{.SystemTime}}"]
    memory, _, clock = runner.run(argv, timeout=30).stdout.strip().partition(" ")
    return EngineFacts(memory, clock)


def api_version(runner: Runner) -> str:
    argv = ["docker", "version", "--format", "{{.Server.APIVersion}}"]
    return runner.run(argv, timeout=30).stdout.strip()


def context_name(runner: Runner) -> str:
    result = runner.run(["docker", "context", "show"], timeout=30)
    return f"context {result.stdout.strip()}" if result.ok and result.stdout.strip() else "default"


# --- images --------------------------------------------------------------------------------


def image_present(runner: Runner, ref: str) -> bool:
    result = runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=60)
    check_reached(result, f"looking for image {ref}")  # not "missing" for that
    return result.ok


def save_images(runner: Runner, refs: list[str], path: Path) -> None:
    missing = [ref for ref in refs if not image_present(runner, ref)]
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


def stack_objects(runner: Runner, state: Path, stack: str | None = None) -> list[DockerObject]:
    """Every container, volume and network of the stacks recorded in state directory `state`
    (or of one of them). Stacks of other state directories on the same engine are not ours."""
    label = STACK_LABEL if stack is None else f"{STACK_LABEL}={stack}"
    filters = ["--filter", f"label={label}", "--filter", f"label={STATE_LABEL}={state}"]
    objects = []
    for kind, argv in _LISTS.items():
        result = runner.run([*argv, *filters, "--format", LISTING_FORMAT[kind]], timeout=60)
        if not result.ok:
            engine_version(runner)  # DockerUnavailable, with what to do, when none answers
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


def container_state(runner: Runner, name: str) -> dict[str, object] | None:
    """The `State` of container `name` (one `docker inspect`, tens of ms); None when the
    inspect failed (no such container, or no engine: the caller asks Compose, which says)."""
    argv = ["docker", "inspect", "--type", "container", "--format", "{{json .State}}", name]
    result = runner.run(argv, timeout=30)
    if not result.ok:
        return None
    state = json.loads(result.stdout)
    return state if isinstance(state, dict) else None


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


def oneoff_containers(runner: Runner, project: str, service: str) -> list[str]:
    """Ids of the containers that one-shot runs of `service` in compose project `project`
    left (a run cut off from Docker cannot remove its own)."""
    labels = {"project": project, "oneoff": "True", "service": service}
    filters = [f"--filter=label=com.docker.compose.{k}={v}" for k, v in labels.items()]
    found = runner.run(["docker", "ps", "--all", "--quiet", *filters], timeout=60)
    check_reached(found, f"looking for leftover {service} containers")
    return found.stdout.split() if found.ok else []


def remove_containers(runner: Runner, ids: list[str], what: str) -> None:
    check_reached(runner.run(["docker", "rm", "--force", *ids], timeout=120), what)


def published_ports(runner: Runner) -> dict[int, str]:
    """Every host port a running container publishes, alone or in a range
    (`0.0.0.0:8000-8010->8000-8010/tcp`), with the container's name; {} when Docker cannot
    say."""
    try:
        result = runner.run(["docker", "ps", "--format", "{{.Names}}\t{{.Ports}}"], timeout=30)
    except CommandFailed:
        return {}
    ports: dict[int, str] = {}
    for line in result.stdout.splitlines():
        name, _, published = line.partition("\t")
        for first, last in re.findall(r":(\d+)(?:-(\d+))?->", published):
            ports.update(dict.fromkeys(range(int(first), int(last or first) + 1), name))
    return ports


def container_publishing(runner: Runner, port: int) -> str | None:
    """The name of a running container that publishes host port `port`; None when none does
    or Docker cannot say."""
    return published_ports(runner).get(port)
