"""A stack as it stands: its record, secrets and rendered compose file with a Compose bound
to it, the locks that keep one command at a time on it, and the two commands that need
nothing more (`render`, `down`)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hatchet_local import __version__
from hatchet_local.compose import Compose
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import ENGINE_SERVICE, backing_services
from hatchet_local.docker import api_at_least, stack_labels
from hatchet_local.errors import (
    CommandFailed,
    ConfigError,
    DockerUnavailable,
    StackNotFound,
    VersionConflict,
)
from hatchet_local.fsutil import atomic_write, read_text
from hatchet_local.image_build import local_builds
from hatchet_local.locks import file_lock
from hatchet_local.ports import PORT_KEYS, resolve_ports
from hatchet_local.render import StackSpec, render_key, render_stack
from hatchet_local.state import StackDir, StackRecord, digest, now_iso


@dataclass(frozen=True)
class Stack:
    """A stack as it stands on disk, with a Compose bound to it."""

    dir: StackDir
    record: StackRecord
    spec: StackSpec
    compose: Compose
    secrets: dict[str, str]
    # True when the rendered file differs from what the last complete `up` started.
    changed: bool = False

    def services(self) -> tuple[str, ...]:
        """The long-running services besides the engine, as the stack was last set up."""
        return backing_services(self.record.message_queue)


def load_stack(config: Config, ctx: Context, *, create: bool, ttl: float | None = None) -> Stack:
    """The stack's record, secrets and rendered compose file; made on first use if `create`."""
    stack_dir = StackDir(ctx.state_root, config.stack)
    record = stack_dir.load()
    if record is None:
        if not create:
            raise StackNotFound(
                f"no stack named {config.stack} here; start one with `hatchet-local up`"
            )
        record = new_record(config, ttl)
    if create:
        check_version(record, config.hatchet_version)
        with registry_lock(ctx):
            record = dataclasses.replace(
                _as_configured(config, record), ports=resolve_ports(config, record, ctx.state_root)
            )
            stack_dir.save(record)
    secrets = stack_dir.secrets()
    ctx.redact.add(*secrets.values())
    require_ports(stack_dir, record)
    spec = stack_spec(config, record, ctx)
    changed = False
    if create:
        rendered = _rendered(stack_dir, spec)
        # Compared with what the last complete `up` started, not with the file on disk: an
        # `up` interrupted after writing the file must not hide its change from the next one.
        changed = stack_dir.applied() != digest(rendered)
    return Stack(stack_dir, record, spec, stack_compose(ctx, stack_dir, record), secrets, changed)


def stack_compose(ctx: Context, stack_dir: StackDir, record: StackRecord) -> Compose:
    """A Compose bound to the stack's project, file and secrets."""
    return Compose(
        ctx.runner,
        docker=ctx.docker,
        base=ctx.compose_base,
        project=record.compose_project,
        file=stack_dir.compose_file,
        env_file=stack_dir.secrets_file,
        redact=ctx.redact,
    )


def _rendered(stack_dir: StackDir, spec: StackSpec) -> str:
    """The stack's compose file for `spec`, rendered only when its inputs or the file
    changed (jinja2 and a render cost more than a whole warm `up` should)."""
    key = render_key(spec)
    on_disk = read_text(stack_dir.compose_file)
    if on_disk is not None and stack_dir.rendered() == f"{key} {digest(on_disk)}":
        return on_disk
    rendered = render_stack(spec)
    if on_disk != rendered:
        atomic_write(stack_dir.compose_file, rendered)
    stack_dir.mark_rendered(f"{key} {digest(rendered)}")
    return rendered


def _as_configured(config: Config, record: StackRecord) -> StackRecord:
    """The record with what this `up` asks of the stack: its queue, how it is served, and
    this directory among those using it."""
    here = str(config.project_dir)
    joined = record.joined if here in record.directories else [*record.joined, here]
    return dataclasses.replace(
        record,
        message_queue=config.message_queue,
        advertise=config.advertise,
        expose=config.expose,
        joined=joined,
    )


def sharing(record: StackRecord, here: Path) -> str | None:
    """How the stack is shared, as seen from project directory `here`: None when no other
    directory uses it. Said by `up`, and asked before deleting the data of a shared stack."""
    others = record.others(here)
    if not others:
        return None
    if record.directory == str(here):
        return f"stack {record.name} is shared: {', '.join(others)} use it too"
    also = [d for d in others if d != record.directory]
    return f"stack {record.name} was made in {record.directory}" + (
        f" and is used by {', '.join(also)}" if also else ""
    )


def shared_from_elsewhere(state_root: Path, name: str, here: Path) -> str | None:
    """`sharing` of stack `name` when `here` is not the directory that made it (a destructive
    command must then name the other directories and ask); None otherwise."""
    record = StackDir(state_root, name).load()
    if record is None or record.directory == str(here):
        return None
    return sharing(record, here)


def require_ports(stack_dir: StackDir, record: StackRecord) -> None:
    missing = [key for key in PORT_KEYS if key not in record.ports]
    if missing:
        raise ConfigError(
            f"{stack_dir.record_file}: no {' or '.join(missing)} port recorded; "
            f"run `hatchet-local up` to pick one"
        )


def new_record(config: Config, ttl: float | None = None) -> StackRecord:
    return StackRecord(
        name=config.stack,
        directory=str(config.project_dir),
        created=now_iso(),
        tool_version=__version__,
        hatchet_version=config.hatchet_version,
        message_queue=config.message_queue,
        expires=expiry(ttl) if ttl else None,
    )


def expiry(ttl: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=ttl)).replace(microsecond=0).isoformat()


def stack_lock(ctx: Context, name: str, wait: float | None = None) -> AbstractContextManager[None]:
    """One command at a time on a stack: a second one waits, then says who holds it."""
    return file_lock(
        StackDir(ctx.state_root, name).lock_file, f"stack {name}",
        wait=ctx.lock_wait if wait is None else wait, notify=ctx.console.info,
    )  # fmt: skip


def registry_lock(ctx: Context) -> AbstractContextManager[None]:
    path = ctx.state_root / "locks" / "ports.lock"
    return file_lock(path, "the port registry", wait=60, notify=ctx.console.info)


def check_version(record: StackRecord, wanted: str) -> None:
    """Moving a stack's data forward is a migration; moving it back is refused (a
    pre-release of a version comes before the version itself)."""
    have, want = version_key(record.hatchet_version), version_key(wanted)
    if have and want and want < have:
        raise VersionConflict(
            f"stack {record.name} holds data of Hatchet {record.hatchet_version}, which "
            f"{wanted} cannot read: keep hatchet_version: {record.hatchet_version}, or start "
            f"afresh with `hatchet-local reset` (deletes the stack's data)"
        )


_RELEASE = re.compile(r"v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?")


def version_key(version: str) -> tuple[object, ...] | None:
    """A sort key of a release tag by semantic versioning's order; None for `latest`."""
    match = _RELEASE.fullmatch(version)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    # A release sorts after its pre-releases; numeric identifiers before alphanumeric ones.
    pre_key = (1,) if pre is None else (0, *(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
    ))  # fmt: skip
    return (int(major), int(minor), int(patch), pre_key)


def stack_spec(
    config: Config, record: StackRecord, ctx: Context, builds: Mapping[str, str] | None = None
) -> StackSpec:
    """What the template needs for this stack, as its record stands. An image left to its
    default is the one `images build` made here for this version, when there is one."""
    if builds is None:
        builds = local_builds(ctx.docker, config)
    keys = (*backing_services("rabbitmq"), ENGINE_SERVICE)
    return StackSpec(
        stack=record.compose_project,
        images={key: builds.get(key) or config.image(key) for key in keys},
        local_builds=frozenset(builds),
        message_queue=config.message_queue,
        dashboard=config.dashboard,
        dashboard_port=record.ports["dashboard"],
        grpc_port=record.ports["grpc"],
        pull_policy=config.pull_policy,
        # Tokens carry the advertised host; ports bind to loopback unless other machines
        # are to reach the stack.
        host=record.advertise or "localhost",
        bind_address="0.0.0.0" if record.advertise or record.expose else "127.0.0.1",
        labels=_labels(record, ctx.state_root),
        start_interval=_start_interval(ctx),
    )


def _labels(record: StackRecord, state_root: Path) -> dict[str, str]:
    """The labels of the stack's Docker objects. A stack with a project of its own (a spare,
    or a stack that took one over) is labelled with what it was started with, not with a
    directory: labels cannot change, and one that did would make Compose re-create it."""
    directory = "" if record.project else record.directory
    return stack_labels(record.compose_project, directory, record.created, str(state_root),
                        record.expires)  # fmt: skip


START_INTERVAL_API = "1.44"


def _start_interval(ctx: Context) -> bool:
    """Whether the engine takes healthchecks' `start_interval` (no engine: render without)."""
    try:
        return api_at_least(ctx.docker.api_version(), START_INTERVAL_API)
    except (DockerUnavailable, CommandFailed):
        return False


def preview(config: Config, ctx: Context) -> str:
    """The compose file `up` would use, without writing state or starting anything."""
    record = StackDir(ctx.state_root, config.stack).load() or new_record(config)
    record = _as_configured(config, record)
    record = dataclasses.replace(record, ports=resolve_ports(config, record, ctx.state_root))
    try:
        builds = local_builds(ctx.docker, config)
    except DockerUnavailable:  # no engine to ask: the images a registry would serve
        builds = {}
    return render_stack(stack_spec(config, record, ctx, builds))


def down(config: Config, ctx: Context, *, volumes: bool) -> bool:
    """Stop and remove the stack's containers (and its data with `volumes`).
    Returns False when there was no stack to take down."""
    stack_dir = StackDir(ctx.state_root, config.stack)
    if not stack_dir.exists() or not stack_dir.compose_file.is_file():
        return False
    with stack_lock(ctx, config.stack):
        stack = load_stack(config, ctx, create=False)
        with ctx.console.phase("remove containers and data" if volumes else "remove containers"):
            stack.compose.down(volumes=volumes)
            if volumes:
                stack_dir.forget_data()  # it lived in the database just removed
    return True
