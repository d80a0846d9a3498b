"""Where a stack's data comes from and where it goes, over the fake Docker + Hatchet: the
base a second stack starts from, the pristine copy `reset` restores with the token kept,
`reset --new-token`, and the tenants handed to an engine that restarted on its own."""

from __future__ import annotations

import base64
import io
import json
import sys
import tarfile
import time

import pytest

from hatchet_local import bases, resets, snapshots
from hatchet_local.defaults import JOB_COMMANDS
from hatchet_local.errors import CommandFailed
from hatchet_local.runner import Result, SubprocessRunner
from hatchet_local.stack import load_stack
from hatchet_local.state import StackDir
from tests.unit.fakes import TOKEN_CREATE, Call, Row, reply
from tests.unit.harness import World

pytestmark = pytest.mark.usefixtures("tokens_with_ids")

BASEBACKUP = ("docker", "exec", "unit-postgres-1", "pg_basebackup")
MIGRATE = JOB_COMMANDS["migrate"]  # run inside the engine's container (jobs.py)


def jwt(n: int) -> str:
    """A token shaped like Hatchet's: its claims name the token's row (`token_id`)."""
    claims = (
        base64.urlsafe_b64encode(
            json.dumps(
                {"sub": "707d0855", "token_id": f"00000000-0000-4000-8000-{n:012d}"}
            ).encode()
        )
        .decode()
        .rstrip("=")
    )
    return f"eyJhbGciOiJFUzI1NiJ9.{claims}.signature"


@pytest.fixture
def tokens_with_ids(world: World) -> None:
    world.hatchet.tokens = [jwt(n) for n in range(1, 9)]
    world.runner.on("rm", "--stop", "--force", "hatchet-lite")
    world.runner.on("rabbitmqctl")
    world.runner.on("docker", "volume", "rm", "--force")


def sql_given(world: World) -> str:
    return "\n".join(world.hatchet.sql)


def test_the_first_stack_keeps_a_base_the_next_one_starts_from(world: World) -> None:
    world.up()
    assert world.runner.called(*BASEBACKUP)
    assert "ran initdb and every migration; keeping its database as a base" in world.console()
    bases = list((world.ctx.state_root / "bases").glob("*.tar"))
    assert len(bases) == 1 and bases[0].read_bytes() == b"a tar of the database"
    # The base is made with no password on the role; the stack's own is set right after.
    assert "ALTER ROLE hatchet PASSWORD NULL;\nVACUUM FULL pg_authid;" in sql_given(world)

    world.next_process()
    world.hatchet.sql.clear()
    world.up(HATCHET_LOCAL_STACK="other")
    copy = world.runner.called("docker", "cp", "--archive", "-", "other-postgres-1:"
                               "/var/lib/postgresql/data")  # fmt: skip
    assert len(copy) == 1 and copy[0].data == b"a tar of the database"
    assert not world.runner.called(*MIGRATE)  # the base is migrated
    assert not world.runner.called(*BASEBACKUP)  # and says so only once
    assert "keeping its database as a base" not in world.console()
    assert world.runner.called(*JOB_COMMANDS["setup"])  # own keys, admin
    # Its own password, set before any job connects, as a SCRAM verifier (never the password).
    password = StackDir(world.ctx.state_root, "other").secrets()["HATCHET_POSTGRES_PASSWORD"]
    setting = next(sql for sql in world.hatchet.sql if "ALTER ROLE hatchet PASSWORD" in sql)
    assert "SCRAM-SHA-256$4096:" in setting and password not in setting
    order = [" ".join(c.argv) for c in world.runner.calls]
    assert order.index(next(o for o in order if "psql" in o)) < order.index(
        next(o for o in order if "setup" in o)
    )
    assert password not in "\n".join(order)
    assert StackDir(world.ctx.state_root, "other").noted("password-pending") is None
    # RabbitMQ boots while the base is copied: every container is made by one Compose first,
    # then RabbitMQ is started beside the copy (from another thread), and Postgres after it.
    made = order.index(next(o for o in order if "up --no-start --no-deps --remove-orphans postgres "
                            "rabbitmq hatchet-lite" in o))  # fmt: skip
    booted = order.index("docker start other-rabbitmq-1")
    copied = order.index(next(o for o in order if "docker cp --archive" in o))
    postgres = order.index("docker start other-postgres-1")
    assert made < booted < postgres and made < copied < postgres
    assert not [o for o in order if "up --detach" in o]  # Compose made them, started none


def test_a_base_of_another_hatchet_image_is_never_used(world: World) -> None:
    world.up()
    world.next_process()
    other = "ghcr.io/hatchet-dev/hatchet/hatchet-lite:v0.102.0"
    world.up(HATCHET_LOCAL_STACK="newer", HATCHET_LOCAL_IMAGES_HATCHET_LITE=other,
             HATCHET_LOCAL_HATCHET_VERSION="v0.102.0")  # fmt: skip
    assert not world.runner.called("docker", "cp", "--archive")
    assert world.runner.called(*MIGRATE)  # full price, and a base of its own kept
    assert len(list((world.ctx.state_root / "bases").glob("*.tar"))) == 2
    ctx = world.ctx
    assert bases.stale_bases(ctx.state_root, ctx) == []
    world.hatchet.missing_images.add(other)  # its image gone: its base can serve no stack
    (stale,) = bases.stale_bases(ctx.state_root, ctx)
    assert (stale.hatchet_image, stale.hatchet_version) == (other, "v0.102.0")


def test_a_base_that_cannot_be_written_is_only_a_warning(world: World) -> None:
    world.runner.on("pg_basebackup", returncode=1, stderr="pg_basebackup: error: out of space\n")
    world.up()
    assert "no base kept (copying the database (pg_basebackup) failed (exit 1))" in (
        world.console()
    )
    assert list((world.ctx.state_root / "bases").glob("*")) == []
    assert sql_given(world).count("ALTER ROLE hatchet PASSWORD 'SCRAM-SHA-256$") == 1


def test_reset_keeps_the_token_and_the_settings_file(world: World) -> None:
    first = world.up()
    assert world.hatchet.pristine
    before = world.env_file.read_bytes(), world.env_file.stat().st_mtime_ns
    world.next_process()
    time.sleep(0.01)

    result = resets.reset(world.config(), world.ctx)

    assert result.token_reused and result.settings == first.settings
    assert (world.env_file.read_bytes(), world.env_file.stat().st_mtime_ns) == before
    assert not world.runner.called(*TOKEN_CREATE)
    assert world.runner.called("docker", "kill", "unit-hatchet-lite-1")
    (script,) = [c for c in world.runner.calls if c.argv[-2:] == ("sh", "-eu")]
    text = (script.data or b"").decode()
    assert "CREATE DATABASE hatchet_next TEMPLATE hatchet_pristine" in text
    assert "ALTER DATABASE hatchet RENAME TO hatchet_old;\nALTER DATABASE hatchet_next" in text
    swap = text.index("ALTER DATABASE hatchet RENAME TO hatchet_old")
    assert text.index("BEGIN;") < swap < text.index("COMMIT;")
    # The last reset's copy is renamed into place only when it was made from this pristine
    # database; else it is dropped and the pristine database copied, as before.
    taken = text.index("ALTER DATABASE hatchet_spare RENAME TO hatchet_next")
    fits = text.index("shobj_description(s.oid, 'pg_database') = 'copy of ' || p.oid")
    assert fits < taken < text.index("DROP DATABASE IF EXISTS hatchet_spare") < swap
    # While the engine starts, the next reset's copy is made, its origin in its comment.
    (spare,) = [sql for sql in world.hatchet.sql if "CREATE DATABASE hatchet_spare" in sql]
    assert "TEMPLATE hatchet_pristine" in spare and "COMMENT ON DATABASE hatchet_spare" in spare
    assert "'copy of ' ||" in spare
    assert "-t '\"Worker\"'" in text and "pg_dump" in text  # running workers carried over
    assert not world.runner.called(*MIGRATE)  # nothing more than the engine restarts


def test_a_reset_whose_next_copy_fails_is_done_and_says_so(world: World) -> None:
    world.up()
    world.next_process()

    def no_room(call: Call) -> Result:
        if "CREATE DATABASE hatchet_spare" in (call.data or b"").decode():
            return reply(call, 1, stderr="ERROR:  could not write: No space left on device\n")
        return world.hatchet.psql(call)

    world.runner.on_call("docker", "exec", "-i", handler=no_room)
    result = resets.reset(world.config(), world.ctx)
    assert result.token_reused
    assert "the next reset copies the pristine database itself" in world.console()


def test_a_snapshot_carries_no_copy_kept_for_the_next_reset(world: World) -> None:
    world.up()
    world.next_process()
    snapshots.save(world.config(), world.ctx, "s1", force=False)
    calls = world.runner.calls
    (drop,) = [i for i, c in enumerate(calls)
               if b"DROP DATABASE IF EXISTS hatchet_spare" in (c.data or b"")]  # fmt: skip
    (copy,) = [i for i, c in enumerate(calls) if c.has("pg_basebackup")]
    assert drop < copy  # its ~1,000 files would go to every stack started from the snapshot


def test_a_stack_without_a_pristine_copy_is_reset_with_a_new_token(world: World) -> None:
    world.up()
    world.hatchet.pristine = False  # a stack made before reset could keep a token
    world.next_process()
    result = resets.reset(world.config(), world.ctx)
    assert not result.token_reused
    assert "the stack has no pristine copy" in world.console()
    assert "this reset makes a new token" in world.console()
    assert world.runner.called(*TOKEN_CREATE)


def test_reset_new_token_wipes_everything_as_before(world: World) -> None:
    first = world.up()
    world.next_process()
    result = resets.reset(world.config(), world.ctx, new_token=True)
    assert result.settings["HATCHET_CLIENT_TOKEN"] != first.settings["HATCHET_CLIENT_TOKEN"]
    assert "DROP DATABASE IF EXISTS hatchet_pristine;" in sql_given(world)
    assert world.runner.called("docker", "volume", "rm", "--force", "unit_hatchet_config")
    assert world.runner.called(*MIGRATE)
    assert world.hatchet.pristine  # taken again after setup


def test_an_engine_restarted_behind_our_back_gets_its_tenants_at_once(world: World) -> None:
    world.up()
    world.next_process()
    world.hatchet.sql.clear()
    world.up()  # nothing changed: the tenants are left alone
    assert not world.hatchet.sql
    StackDir(world.ctx.state_root, "unit").note("engine-started", "2026-11-29T20:00:00Z")
    world.next_process()
    world.up()  # the engine started since (a Docker restart): its tenants are handed over
    assert "the engine restarted since the last `up`" in world.console()
    (reclaim,) = world.hatchet.sql
    assert "TIMESTAMP '2026-11-29 22:53:01.123456'" in reclaim
    assert 'DELETE FROM "Lease"' in reclaim  # a dead engine's leases on workers go too


def test_an_engine_that_died_alone_is_only_started_again(world: World) -> None:
    world.up()
    world.hatchet.services["hatchet-lite"] = [Row(state="exited", health="")]
    world.next_process()
    world.hatchet.sql.clear()
    result = world.up()
    assert result.token_reused
    assert "only the engine is down; starting it" in world.console()
    assert not world.runner.called(*MIGRATE)  # no job runs again
    assert world.runner.called("up", "--detach", "--remove-orphans", "--no-deps", "hatchet-lite")
    (reclaim,) = world.hatchet.sql  # its tenants handed to it at once
    assert '"SchedulerPartition"' in reclaim


def test_an_engine_held_when_it_stopped_is_not_merely_started_again(world: World) -> None:
    """An `up` of a stopped stack was cut short while the engine's container was held (the
    hold file in its volume), then the container stopped: started alone it would wait for
    ever. The jobs run again and the engine is let go."""
    world.up()
    StackDir(world.ctx.state_root, "unit").note("engine-held")
    world.hatchet.services["hatchet-lite"] = [Row(state="exited", health="")]
    world.next_process()
    world.up()
    assert "only the engine is down" not in world.console()
    assert world.runner.called(*JOB_COMMANDS["setup"])
    assert world.runner.called("docker", "exec", "unit-hatchet-lite-1", "rm", "-f")  # let go
    assert StackDir(world.ctx.state_root, "unit").noted("engine-held") is None


def test_a_volume_an_interrupted_copy_left_is_made_again(world: World) -> None:
    world.up()
    stack = load_stack(world.config(), world.ctx, create=False)
    stack.dir.note("data-pending", "base x")
    world.runner.on("rm", "--stop", "--force", "postgres")
    world.runner.on("docker", "volume", "rm", "--force", "unit_postgres_data")
    world.hatchet.volumes.clear()  # what `docker volume rm` did
    world.hatchet.services.clear()
    world.next_process()
    world.up()
    assert "removing a database volume an interrupted copy left half-filled" in world.console()
    assert world.runner.called("docker", "cp", "--archive")  # made again, from the base


# --- the runner's binary streams -------------------------------------------------------------


def test_stream_copies_bytes_both_ways_in_a_process_group_of_its_own() -> None:
    sink = io.BytesIO()
    data = bytes(range(256)) * 5000  # more than a pipe holds
    result = SubprocessRunner().stream(["cat"], source=io.BytesIO(data), sink=sink)
    assert result.ok and sink.getvalue() == data
    code = "import os; print(os.getpgid(0) == os.getpid())"
    said = SubprocessRunner().stream([sys.executable, "-c", code])
    assert said.stdout.strip() == "True"


def test_stream_stops_a_child_that_does_not_end() -> None:
    started = time.monotonic()
    with pytest.raises(CommandFailed, match="no answer after 1s"):
        SubprocessRunner().stream(["sleep", "30"], timeout=1)
    assert time.monotonic() - started < 20


def inspects_of(world: World, container: str) -> list[Call]:
    return [call for call in world.runner.called("docker", "inspect", "--type", "container")
            if container in call.argv]  # fmt: skip


def test_rabbitmq_is_ready_once_it_says_so(world: World) -> None:
    """Without `start_interval`, Docker checks RabbitMQ every 3 s; its own log line is read
    over the Engine API at once (a probe in the container would start an Erlang VM)."""
    world.hatchet.starts["rabbitmq"] = Row("running", "starting")
    world.hatchet.logs["rabbitmq"] = "... Server startup complete; 4 plugins started.\n"
    world.runner.forget()
    started = world.clock.now
    world.up()
    assert world.clock.now == started
    assert world.runner.called("docker", "logs", "--since")
    # The look reads the container once: the probe is given the state the check read.
    assert len(inspects_of(world, "unit-rabbitmq-1")) == 1


def pid_file_tar(text: str) -> str:
    """What `docker cp NAME:PATH -` prints for one small file (a tar, all ASCII here)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        member = tarfile.TarInfo("postmaster.pid")
        member.size = len(text)
        tar.addfile(member, io.BytesIO(text.encode()))
    return out.getvalue().decode("ascii")


# Postgres's postmaster.pid: pid, data folder, start time, port, socket folder, listen
# address, shared memory key, status. The fake container started at 2026-11-29T22:53:01Z.
STARTED_WITH_THE_CONTAINER = 1795992781


def pid_file(
    status: str = "ready", listen: str = "*", start: int = STARTED_WITH_THE_CONTAINER
) -> str:
    return (f"1\n/var/lib/postgresql/data\n{start}\n5432\n/var/run/postgresql\n{listen}\n"
            f"  1802239         0\n{status}  \n")  # fmt: skip


PID_FILE = ("docker", "cp", "other-postgres-1:/var/lib/postgresql/data/postmaster.pid", "-")


def test_postgres_from_a_base_is_ready_when_its_pid_file_says_so(world: World) -> None:
    """Without `start_interval`, Postgres started from a base is asked through the Engine
    API (its postmaster.pid, as `pg_ctl -w` reads it), not by a process in its container."""
    world.up()  # the first stack keeps the base
    world.next_process()
    world.hatchet.services.clear()  # the fake keys containers by service: these are new ones
    world.hatchet.starts["postgres"] = Row("running", "starting")
    world.runner.on(*PID_FILE, stdout=pid_file_tar(pid_file()))
    world.runner.forget()
    started = world.clock.now
    world.up(HATCHET_LOCAL_STACK="other")
    assert world.clock.now == started  # ready at the first look
    assert world.runner.called(*PID_FILE)
    assert not world.runner.called("pg_isready")
    # The look reads the container once: the probe is given the state the check read.
    assert len(inspects_of(world, "other-postgres-1")) == 1


@pytest.mark.parametrize(
    "contents",
    [
        pid_file(status="starting"),
        pid_file(listen=""),  # an entrypoint's temporary server: the socket only
        pid_file(start=STARTED_WITH_THE_CONTAINER - 60),  # left by a server that was killed
        "1\n/var/lib/postgresql/data\n",  # half written
    ],
    ids=["starting", "socket-only", "stale", "short"],
)
def test_a_pid_file_that_does_not_say_ready_now_is_waited_on(world: World, contents: str) -> None:
    world.up()
    world.next_process()
    world.hatchet.services.clear()
    world.hatchet.starts["postgres"] = [Row("running", "starting"), Row("running", "starting"),
                                        Row()]  # fmt: skip
    world.runner.on(*PID_FILE, stdout=pid_file_tar(contents))
    started = world.clock.now
    world.up(HATCHET_LOCAL_STACK="other")
    assert world.clock.now > started  # waited for the healthcheck instead


def test_a_first_stack_asks_postgres_over_tcp(world: World) -> None:
    """initdb's temporary server (the socket only) must not count: a new data folder is
    asked with `pg_isready` over TCP, as before."""
    world.hatchet.starts["postgres"] = Row("running", "starting")
    world.up()
    assert world.runner.called("pg_isready")
    assert not world.runner.called("postmaster.pid")
