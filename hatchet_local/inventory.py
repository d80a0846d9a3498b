"""The stacks of this machine: list them (`ls`), remove one (`destroy`), remove the forgotten
and the expired (`prune`, and the reaping every `up` does first)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hatchet_local.context import Context
from hatchet_local.docker import DockerObject, remove_objects
from hatchet_local.errors import ConfigError, StackBusy, StackNotFound
from hatchet_local.stack import stack_lock
from hatchet_local.state import StackDir, StackRecord, all_records


@dataclass(frozen=True)
class StackRow:
    """One line of `ls`."""

    name: str
    state: str  # running, partial, stopped, or orphaned (objects without a record)
    ports: dict[str, int]
    directory: str  # the project directory that made it
    directory_exists: bool  # that directory, or another that uses the stack, exists
    created: str
    age_seconds: int
    hatchet_version: str
    tool_version: str
    directories: list[str] = field(default_factory=list)  # every one using it, maker's first
    spare: bool = False  # started ahead for the next new stack of its kind (spares.py)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def list_stacks(ctx: Context, now: datetime | None = None) -> list[StackRow]:
    """Every stack recorded on this host, and every labelled object no record claims."""
    now = now or datetime.now(UTC)
    objects = ctx.docker.stack_objects(ctx.state_root)
    records = list(all_records(ctx.state_root))
    rows = [_row(record, objects, now) for record in records]
    # Objects are labelled with their stack's Compose project (a spare's, for a stack that
    # took one over).
    known = {record.compose_project for record in records}
    for orphan in sorted({o.stack for o in objects if o.stack not in known}):
        rows.append(StackRow(orphan, "orphaned", {}, "", False, "", 0, "", ""))
    return rows


def _row(record: StackRecord, objects: list[DockerObject], now: datetime) -> StackRow:
    states = [o.state for o in objects
              if o.stack == record.compose_project and o.kind == "container"]  # fmt: skip
    if states and all(s == "running" for s in states):
        state = "running"
    elif any(s == "running" for s in states):
        state = "partial"
    else:
        state = "stopped"
    try:
        age = int((now - datetime.fromisoformat(record.created)).total_seconds())
    except ValueError:
        age = 0
    return StackRow(
        name=record.name,
        state=state,
        ports=dict(record.ports),
        directory=record.directory,
        # A stack shared by two projects is not forgotten while one of them is there.
        directory_exists=any(Path(d).is_dir() for d in record.directories),
        directories=record.directories,
        created=record.created,
        age_seconds=age,
        hatchet_version=record.hatchet_version,
        tool_version=record.tool_version,
        spare=record.spare,
    )


def destroy(ctx: Context, name: str, wait: float | None = None) -> list[DockerObject]:
    """Remove everything of stack `name`: containers, volumes, network and its state.
    Returns the Docker objects removed. `wait` bounds the wait for the stack's lock."""
    stack_dir = StackDir(ctx.state_root, name)
    # Asked before the lock too, so that a mistyped name or a stopped engine leaves no lock
    # file behind.
    project = _project_of(stack_dir)
    if not ctx.docker.stack_objects(ctx.state_root, project) and not stack_dir.path.exists():
        raise StackNotFound(f"no stack named {name} on this host; `hatchet-local ls` lists them")
    with stack_lock(ctx, name, wait):
        return destroy_locked(ctx, name)


def destroy_locked(ctx: Context, name: str) -> list[DockerObject]:
    """`destroy` for a caller that already holds the stack's lock."""
    stack_dir = StackDir(ctx.state_root, name)
    objects = ctx.docker.stack_objects(ctx.state_root, _project_of(stack_dir))
    remove_objects(ctx.runner, objects)
    shutil.rmtree(stack_dir.path, ignore_errors=True)
    return objects


def _project_of(stack_dir: StackDir) -> str:
    """The Compose project a stack's objects are labelled with (an orphan's: its name)."""
    try:
        record = stack_dir.load()
    except ConfigError:  # a broken record: its objects can still go by the stack's name
        record = None
    return record.compose_project if record is not None else stack_dir.name


def prune_candidates(
    ctx: Context, older_than: float | None, now: datetime | None = None, *, spares: bool = False
) -> list[StackRow]:
    """Stacks whose directory is gone, orphaned objects, (with `older_than` seconds) stopped
    stacks older than that, and (with `spares`) every spare."""
    return [
        row
        for row in list_stacks(ctx, now)
        if row.state == "orphaned"
        or (spares and row.spare)
        or not row.directory_exists
        or (older_than is not None and row.state == "stopped" and row.age_seconds > older_than)
    ]


def reap_expired(ctx: Context, now: datetime | None = None) -> list[str]:
    """Destroy the ephemeral stacks whose time is up (a killed CI job's stack, say), and
    objects labelled ephemeral and expired whose record is gone. A stack some live command
    still holds is left for the next time. Returns the names removed."""
    now = now or datetime.now(UTC)
    expired = {r.name for r in all_records(ctx.state_root) if _past(r.expires, now)}
    expired |= {o.stack for o in ctx.docker.stack_objects(ctx.state_root)
                if _past(o.expires, now)}  # fmt: skip
    reaped = []
    for name in sorted(expired):
        try:
            destroy(ctx, name, wait=0)
        except StackBusy:
            continue
        reaped.append(name)
    return reaped


def _past(when: str | None, now: datetime) -> bool:
    if not when:
        return False
    try:
        return datetime.fromisoformat(when) <= now
    except ValueError:
        return False
