"""Spares: stacks started ahead of time, each with its own secrets, keys and token, that the
next `up` of a new stack of the same kind takes over instead of starting one.

Starting a stack takes seconds even from a base (RabbitMQ's boot alone takes four); taking
over a running spare takes a move of its state directory. A spare is a stack like any other
(`ls` shows it, `destroy` removes it) whose record says `spare`. Docker labels cannot change,
so a stack keeps the Compose project and labels its spare was started with (the record's
`project`). A spare is taken over only when the stack file the new stack would be given is
the very one the spare runs: same images, queue, dashboard, ports left to hatchet-local, and
no other machine to serve. Making one is in spare_start.py (`make_spare`).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from hatchet_local.config import ENV_CONFIG, ENV_PREFIX, ENV_STATE_DIR, Config, env_var
from hatchet_local.context import Context
from hatchet_local.errors import StackBusy
from hatchet_local.fsutil import ensure_private_dir, read_text
from hatchet_local.locks import file_lock
from hatchet_local.phases import running_and_healthy
from hatchet_local.ports import PORT_KEYS
from hatchet_local.render import render_key
from hatchet_local.stack import (
    Stack,
    new_record,
    registry_lock,
    stack_compose,
    stack_lock,
    stack_spec,
)
from hatchet_local.state import StackDir, StackRecord, all_records, digest

PREFIX = "spare-"


def spare_config(config: Config) -> Config:
    """The configuration of a new spare of `config`'s kind: its own name, and nothing of the
    project's tenants or namespace (those are the taker's)."""
    name = f"{PREFIX}{secrets.token_hex(4)}"
    return dataclasses.replace(config, stack=name, tenants={}, namespace=None)


def register(config: Config, ctx: Context) -> None:
    """Record the new spare `config.stack` before it is started: its own project, marked
    spare. It is not taken over before its start is complete (`fits` asks)."""
    record = new_record(config)
    StackDir(ctx.state_root, config.stack).save(
        dataclasses.replace(record, project=config.stack, spare=True)
    )


def why_not(config: Config) -> str | None:
    """Why no spare can serve `config`'s stack (None when one can): what makes the stack
    unlike any spare."""
    if config.server.url:
        return "the project uses a Hatchet server hatchet-local did not start"
    if any(getattr(config.ports, key) for key in PORT_KEYS):
        return "the project pins its ports; a spare has ports of its own"
    if config.advertise or config.expose:
        return "the stack serves other machines"
    return None


def spares(ctx: Context) -> Iterator[StackRecord]:
    """The spares recorded here, oldest first."""
    yield from sorted((r for r in all_records(ctx.state_root) if r.spare), key=lambda r: r.created)


def fits(config: Config, record: StackRecord, ctx: Context) -> bool:
    """Spare `record` is complete, runs, and would be given `config`'s stack file: the
    render inputs of the stack it would become are the ones it was started with. (Whether
    any spare can serve `config` is `why_not`, which the callers ask first.)"""
    stack_dir = StackDir(ctx.state_root, record.name)
    if record.hatchet_version != config.hatchet_version or not complete(stack_dir):
        return False
    spec = stack_spec(config, taken_over(record, config), ctx)
    # Complete: the digest of the file it runs is the one applied.
    if stack_dir.rendered() != f"{render_key(spec)} {stack_dir.applied()}":
        return False
    compose = stack_compose(ctx, stack_dir, record)
    return running_and_healthy(Stack(stack_dir, record, spec, compose, {}), compose.ps())


def complete(stack_dir: StackDir) -> bool:
    """The spare's start went to its end: the stack file it runs was applied, its token kept."""
    on_disk = read_text(stack_dir.compose_file)
    return (on_disk is not None and stack_dir.applied() == digest(on_disk)
            and stack_dir.token_file.is_file())  # fmt: skip


def taken_over(record: StackRecord, config: Config) -> StackRecord:
    """Spare `record` as `config`'s stack: its name and directory, no longer a spare."""
    return dataclasses.replace(record, name=config.stack, directory=str(config.project_dir),
                               joined=[], spare=False)  # fmt: skip


def take_over(config: Config, ctx: Context) -> StackRecord | None:
    """Make the first spare that fits `config`'s stack that stack, when the stack is new;
    returns the spare's record as it was (None when none was taken). The caller holds the
    new stack's lock; each spare is tried under its own, so two `up`s never take one."""
    target = StackDir(ctx.state_root, config.stack)
    if target.exists() or why_not(config) is not None:
        return None
    for record in spares(ctx):
        try:
            with stack_lock(ctx, record.name, wait=0):
                if not fits(config, record, ctx):
                    continue
                with registry_lock(ctx):  # its ports change owner's name
                    try:
                        StackDir(ctx.state_root, record.name).path.rename(target.path)
                    except OSError:  # the new stack's folder is there, with files in it
                        return None
                    target.save(taken_over(record, config))
                return record
        except StackBusy:  # another command is taking it, or still starting it
            continue
    return None


def pool_lock(ctx: Context) -> AbstractContextManager[None]:
    """One `spare` at a time counts and starts spares, so that two never both start the
    one that was missing (`up` takes spares over under their own locks, not this one)."""
    path = ctx.state_root / "locks" / "spares.lock"
    return file_lock(path, "the spares", wait=ctx.lock_wait, notify=ctx.console.info)


def refill_log(ctx: Context) -> Path:
    return ctx.state_root / "logs" / "spares.log"


def last_refill_failure(ctx: Context) -> str | None:
    """The error the last background `spare` ended with, if it failed (its log's `error:`
    line), so that the next `up` says so instead of the failure going unseen."""
    lines = (read_text(refill_log(ctx)) or "").splitlines()
    return next((line.removeprefix("error: ") for line in lines if line.startswith("error: ")),
                None)  # fmt: skip


def refill_in_background(config: Config, ctx: Context) -> Path:
    """Start `hatchet-local spare --count N` (N = `spares:`) for `config`'s kind, detached:
    it goes on after this `up` returns, its output in the log returned. The kind travels as
    HATCHET_LOCAL_* variables, which win over the project's file as the flags of this `up`
    did; the secrets of the stack never travel (the spare makes its own)."""
    kind = {
        "hatchet_version": config.hatchet_version, "profile": config.profile,
        "message_queue": config.message_queue, "dashboard": str(config.dashboard).lower(),
        "pull_policy": config.pull_policy, "registry": config.registry,
        **{f"images.{key}": ref for key, ref in config.images.items()},
    }  # fmt: skip
    env = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    env |= {env_var(key): value for key, value in kind.items()}
    env[ENV_STATE_DIR] = str(ctx.state_root)
    if config.config_file is not None:
        env[ENV_CONFIG] = str(config.config_file)
    log = refill_log(ctx)
    ensure_private_dir(log.parent)
    argv = [sys.executable, "-m", "hatchet_local", "spare", "--count", str(config.spares)]
    ctx.runner.detach(argv, log=log, cwd=config.project_dir, env=env)
    return log
