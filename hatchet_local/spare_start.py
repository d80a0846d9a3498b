"""Starting spares ahead of time (the `spare` command): stacks that the next `up` of a new
stack of their kind takes over (spares.py says what a spare is and how it is taken over)."""

from __future__ import annotations

from hatchet_local import spares
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.errors import (
    BootstrapFailed,
    ConfigError,
    HatchetLocalError,
    ServiceUnhealthy,
    SetupFailed,
    StackBusy,
)
from hatchet_local.inventory import destroy_locked
from hatchet_local.phases import check_ports, diagnose
from hatchet_local.stack import load_stack, stack_lock
from hatchet_local.startup import serving, start
from hatchet_local.state import StackDir


def keep_spares(config: Config, ctx: Context, count: int) -> tuple[list[str], list[str]]:
    """At least `count` spares of `config`'s kind ready: returns those that were, and those
    started now."""
    if reason := spares.why_not(config):
        raise ConfigError(f"no spare can serve this project's stack: {reason}")
    with spares.pool_lock(ctx):
        remove_cut_short(ctx)
        ready = [r.name for r in spares.spares(ctx) if spares.fits(config, r, ctx)]
        return ready, [make_spare(config, ctx) for _ in range(count - len(ready))]


def remove_cut_short(ctx: Context) -> None:
    """Remove the spares whose start was cut short (Ctrl-C, a killed `spare`) and that no
    command is starting now: none would ever be taken over, and each holds memory."""
    for record in spares.spares(ctx):
        if spares.complete(StackDir(ctx.state_root, record.name)):
            continue
        try:
            with stack_lock(ctx, record.name, wait=0):
                destroy_locked(ctx, record.name)
        except StackBusy:  # being started right now
            continue
        ctx.console.info(f"removed spare {record.name}, whose start was cut short")


def make_spare(config: Config, ctx: Context) -> str:
    """Start a spare of `config`'s kind (spares.py; `keep_spares` has asked `why_not`) and
    return its name: a stack of its own secrets, keys and token, started as `up` starts one,
    with no client settings written. One whose start fails is removed: it holds nothing of
    anyone's."""
    spare = spares.spare_config(config)
    with ctx.console.phase("docker engine"):
        ctx.console.info(f"engine {ctx.docker.version()}")
        ctx.compose_base()
    with stack_lock(ctx, spare.stack):
        spares.register(spare, ctx)
        try:
            stack = load_stack(spare, ctx, create=True)
            check_ports(stack, stack.compose.ps(), ctx.runner)
            serving(stack, ctx, spare, start(stack, ctx, spare))
        except HatchetLocalError as exc:
            if isinstance(exc, ServiceUnhealthy | SetupFailed | BootstrapFailed):
                diagnose(spare, ctx, exc, None)
            destroy_locked(ctx, spare.stack)
            raise
    return spare.stack
