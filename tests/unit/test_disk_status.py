"""Postgres out of disk space (issue #16): every container runs and reports healthy while
each write of the engine fails; `status` says so, with the reason and what to do."""

from __future__ import annotations

from hatchet_local import status as stack_status
from tests.unit.fakes import df_output
from tests.unit.harness import World

FULL = (
    'ERROR:  could not extend file "base/16384/16521": No space left on device\n'
    "HINT:  Check free disk space.\n"
)


def test_status_says_postgres_is_out_of_disk_space(world: World) -> None:
    world.up()
    world.hatchet.logs["postgres"] = FULL
    world.runner.on("docker", "exec", stdout=df_output(free=0, size=365 * 1024**2))
    info = stack_status.status(world.config(), world.ctx, reveal=False)
    assert info.state == "failing"
    assert info.problems == [
        "postgres is out of disk space (0 KiB free of 365 MiB on its volume; the engine's "
        "writes fail): free space there, then run `hatchet-local up`"
    ]
    (call,) = world.runner.called("df", "-P")
    assert call.argv == (
        "docker", "exec", "unit-postgres-1", "df", "-P", "-k", "/var/lib/postgresql/data",
    )  # fmt: skip


def test_status_with_disk_space_is_running(world: World) -> None:
    world.up()
    info = stack_status.status(world.config(), world.ctx, reveal=False)
    assert (info.state, info.problems) == ("running", [])
    assert not world.runner.called("df", "-P")  # a quiet log: the volume is not measured


def test_space_freed_since_the_log_said_so_is_running(world: World) -> None:
    world.up()
    world.hatchet.logs["postgres"] = FULL
    world.runner.on("docker", "exec", stdout=df_output(free=2 * 1024**3))
    info = stack_status.status(world.config(), world.ctx, reveal=False)
    assert (info.state, info.problems) == ("running", [])
    assert world.runner.called("df", "-P")


def test_an_engine_that_cannot_say_is_not_reported_out_of_disk(world: World) -> None:
    world.up()
    world.hatchet.logs["postgres"] = FULL
    world.runner.on("docker", "exec", returncode=1, stderr="OCI runtime exec failed\n")
    assert stack_status.status(world.config(), world.ctx, reveal=False).state == "running"
