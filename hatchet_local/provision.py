"""Where a stack's database comes from and what is done to it before the engine sees it:
a copy (a base, a snapshot) unpacked into a new volume, the stack's own password set, the
pristine copy `reset` restores, and the tenants handed to the engine once it runs.

Each step that leaves the data unfinished writes a note in the stack's directory first and
removes it after (see state.NOTES), so that the next command finishes the step or undoes it:
a half-filled volume is removed and made again, a password not yet set is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from hatchet_local import partitions, postgres
from hatchet_local.context import Context
from hatchet_local.docker import require_ok
from hatchet_local.health import READY, Check, wait_for
from hatchet_local.stack import Stack

PRISTINE = "hatchet_pristine"  # the copy of the database `reset` restores
# A copy of PRISTINE a reset makes while the engine starts, for the next reset to rename into
# place instead of copying; its comment names the PRISTINE it was copied from (resets._FITS).
SPARE = "hatchet_spare"


def data_volume(stack: Stack) -> str:
    return f"{stack.compose.project}_postgres_data"


def fresh(stack: Stack, ctx: Context) -> bool:
    """True when the stack has no database yet (a new stack, or after `down --volumes`);
    a volume left half-filled by an interrupted copy is removed first, so it counts."""
    if stack.dir.noted("data-pending") is not None:
        ctx.console.info("removing a database volume an interrupted copy left half-filled")
        stack.compose.run("rm", "--stop", "--force", "postgres", timeout=120)
        result = ctx.runner.run(["docker", "volume", "rm", "--force", data_volume(stack)],
                                timeout=60)  # fmt: skip
        require_ok(result, "removing a half-filled database volume", ctx.runner)
        for note in ("data-pending", "password-pending", "pristine-pending"):
            stack.dir.forget(note)
    return not ctx.docker.volume_exists(data_volume(stack))


def unpack(stack: Stack, source: IO[bytes]) -> None:
    """Fill the new stack's database volume from a physical copy (a base), between the
    creation of its container and Postgres's first start; the caller noted `data-pending`
    before the volume was made. Its role's password is the copy's until `own_password`."""
    stack.dir.note("password-pending")
    postgres.restore(stack.compose, source)


def own_password(stack: Stack) -> bool:
    """Set the stack's own Postgres password when a copy or an interrupted step left
    another (or none); True when it was set. Runs before any job or the engine connects."""
    if stack.dir.noted("password-pending") is None:
        return False
    postgres.set_password(stack.compose, stack.secrets["HATCHET_POSTGRES_PASSWORD"])
    stack.dir.forget("password-pending")
    stack.dir.forget("data-pending")  # Postgres runs on it: the copy was whole
    return True


def keep_pristine(stack: Stack) -> bool:
    """After `setup` on new data, before the engine first starts: keep a copy of the
    database in the same cluster, for `reset` to restore. True when one was made."""
    if stack.dir.noted("pristine-pending") is None:
        return False
    # WAL_LOG: copied through the WAL, with no checkpoint and no fsync of each of the
    # schema's ~2000 files (FILE_COPY's way), about 0.15 s less on a new stack.
    sql = (
        f"DROP DATABASE IF EXISTS {PRISTINE};\n"
        f"CREATE DATABASE {PRISTINE} TEMPLATE {postgres.DATABASE} STRATEGY WAL_LOG;\n"
    )
    postgres.psql(stack.compose, sql, "keeping the stack's pristine database",
                  database="postgres")  # fmt: skip
    stack.dir.forget("pristine-pending")
    return True


def drop_spare(stack: Stack) -> None:
    """Drop the next reset's ready copy (it is made again by the next reset): before a
    snapshot, which would carry its ~1,000 files to every stack started from it."""
    postgres.psql(stack.compose, f"DROP DATABASE IF EXISTS {SPARE};\n",
                  "dropping the copy kept for the next reset", database="postgres")  # fmt: skip


def dispatch_check(stack: Stack, started: str | None) -> Callable[[], Check]:
    """Ready once every tenant is assigned to the live engine's scheduler partition."""

    def check() -> Check:
        waiting = partitions.reclaim(stack.compose, started)
        if waiting == 0:
            return READY
        return Check("waiting", f"{waiting} tenant(s) not yet assigned to the engine")

    return check


def dispatch_ready(stack: Stack, ctx: Context, timeout: float) -> None:
    """Wait until a task of any tenant would be dispatched now, having handed every tenant
    to the running engine; remember when that engine started."""
    started = partitions.engine_started(stack.compose)
    wait_for("task dispatch", dispatch_check(stack, started), timeout,
             interval=ctx.interval, clock=ctx.clock, sleep=ctx.sleep)  # fmt: skip
    stack.dir.note("engine-started", started or "")


def engine_restarted(stack: Stack) -> bool:
    """True when the engine started again since the last `up` saw it (Docker restarted it
    on its own, say): its tenants may still name the partitions of the engine before."""
    started = partitions.engine_started(stack.compose)
    return started is not None and stack.dir.noted("engine-started") != started
