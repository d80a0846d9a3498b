"""Many stacks on one host: list them, reset one, destroy one, prune the forgotten."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from hatchet_local.config import Config
from hatchet_local.engine import DockerObject, stack_objects
from hatchet_local.errors import ConfigError
from hatchet_local.runner import Runner, require_ok
from hatchet_local.stack import ENGINE, Context, Stack, destroy, load_stack, stack_lock
from hatchet_local.start import UpResult, start_locked
from hatchet_local.state import StackRecord, all_records

MAX_DURATION = 3650 * 86400

__all__ = ["StackRow", "destroy", "list_stacks", "parse_duration", "prune_candidates", "reset"]


@dataclass(frozen=True)
class StackRow:
    """One line of `ls`."""

    name: str
    state: str  # running, partial, stopped, or orphaned (objects without a record)
    ports: dict[str, int]
    directory: str
    directory_exists: bool
    created: str
    age_seconds: int
    hatchet_version: str
    tool_version: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def list_stacks(ctx: Context, now: datetime | None = None) -> list[StackRow]:
    """Every stack recorded on this host, and every labelled object no record claims."""
    now = now or datetime.now(UTC)
    objects = stack_objects(ctx.runner, ctx.state_root)
    rows = [_row(record, objects, now) for record in all_records(ctx.state_root)]
    known = {row.name for row in rows}
    for orphan in sorted({o.stack for o in objects if o.stack not in known}):
        rows.append(StackRow(orphan, "orphaned", {}, "", False, "", 0, "", ""))
    return rows


def _row(record: StackRecord, objects: list[DockerObject], now: datetime) -> StackRow:
    states = [o.state for o in objects if o.stack == record.name and o.kind == "container"]
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
        directory_exists=Path(record.directory).is_dir(),
        created=record.created,
        age_seconds=age,
        hatchet_version=record.hatchet_version,
        tool_version=record.tool_version,
    )


def reset(config: Config, ctx: Context, *, tenant: str | None = None) -> UpResult:
    """Back to a fresh stack: the database, the engine's config (its JWT keys) and the token
    go together, so no old token can outlive them; then the stack is bootstrapped anew."""
    if tenant is not None:
        raise ConfigError(
            f"reset --tenant {tenant}: Hatchet has no way to delete one tenant's data; reset "
            f"the whole stack (`hatchet-local reset`), or give each developer a namespace"
        )
    load_stack(config, ctx, create=False)  # no such stack: say so before taking its lock
    with stack_lock(ctx, config.stack):
        stack = load_stack(config, ctx, create=False)
        with ctx.console.phase("wipe data"):
            if not _wipe_in_place(stack, ctx.runner):
                stack.compose.down(volumes=True)
            stack.dir.forget_token()
        return start_locked(config, ctx)


def _wipe_in_place(stack: Stack, runner: Runner) -> bool:
    """Wipe the data while Postgres and RabbitMQ keep running, which saves their restart:
    drop and re-create the database, re-create RabbitMQ's vhost, remove the engine and its
    config volume. False (nothing done) when those services are not both up."""
    states = {s.service: s.state for s in stack.compose.ps()}
    if any(states.get(service) != "running" for service in stack.services()):
        return False
    compose = stack.compose
    compose.run("rm", "--stop", "--force", ENGINE, timeout=120)
    require_ok(compose.exec(
        "postgres", "psql", "-v", "ON_ERROR_STOP=1", "-U", "hatchet", "-d", "postgres",
        "-c", "DROP DATABASE IF EXISTS hatchet WITH (FORCE)", "-c", "CREATE DATABASE hatchet",
    ), "dropping the database")  # fmt: skip
    if "rabbitmq" in stack.services():
        for command in (["delete_vhost", "/"], ["add_vhost", "/"],
                        ["set_permissions", "-p", "/", "hatchet", ".*", ".*", ".*"]):  # fmt: skip
            require_ok(compose.exec("rabbitmq", "rabbitmqctl", *command), "resetting RabbitMQ")
    config_volume = f"{stack.record.name}_hatchet_config"
    require_ok(runner.run(["docker", "volume", "rm", "--force", config_volume], timeout=60),
             "removing the engine's config volume")  # fmt: skip
    return True


def prune_candidates(ctx: Context, older_than: float | None) -> list[StackRow]:
    """Stacks whose directory is gone, orphaned objects, and (with `older_than` seconds)
    stopped stacks older than that."""
    return [
        row
        for row in list_stacks(ctx)
        if row.state == "orphaned"
        or not row.directory_exists
        or (older_than is not None and row.state == "stopped" and row.age_seconds > older_than)
    ]


def parse_duration(text: str, option: str) -> float:
    """`90s`, `30m`, `12h`, `7d` -> seconds, at most ten years (later dates overflow)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit in units and number.isascii() and number.isdigit():
        seconds = int(number) * units[unit]
        if 0 < seconds <= MAX_DURATION:
            return float(seconds)
    raise ConfigError(
        f"{option}: expected a duration like 90s, 30m, 12h or 7d (up to 3650d), got {text!r}"
    )
