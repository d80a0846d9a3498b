"""The fault matrix (issues #7 and #16) on the rig: each fault ends with a consistent stack
or a clear one-line message, and no data is lost that was not asked to be.

One stack serves every fault (CI time matters); each test first brings it to the state its
fault needs. The stack's state directory is a small tmpfs of its own, so the disk-full case
fills a real file system. Everything the module creates is removed at the end, and checked.

Signals (issue #16): SIGINT, SIGTERM and SIGHUP take one code path (unit-tested per signal in
tests/unit/test_signals.py), so CI rotates the four signals (SIGKILL included) over the
phases of `up`, `reset` and `down`; HATCHET_LOCAL_SIGNAL_WALK=full (bench/reliability.py)
sends every signal at every phase. With HATCHET_LOCAL_FAULTS_OUT set, what was tried and
survived is written there as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hatchet_local import snapshot_file
from tests.support.clients import PROBE
from tests.support.dockerproxy import DockerProxy
from tests.support.faults import (
    DOWN_PHASES,
    RESET_PHASES,
    RUNNING,
    STOPS,
    UP_PHASES,
    Watched,
    assert_consistent,
    container_of,
    database_identity,
    fill,
    job_running,
    mount_tmpfs,
    one_error_line,
    probe_name,
    snapshot,
    stack_of,
    strike,
    token_accepted,
    volume_of,
)
from tests.support.stacks import (
    NOTHING,
    Project,
    SdkWorker,
    labelled,
    services_of,
    workflow_names,
)

pytestmark = pytest.mark.e2e

# The faults this module survives; a reliability script counts them.
FAULTS = [
    "SIGINT, SIGTERM, SIGHUP or SIGKILL at each phase of up",
    "a stop signal or SIGKILL during reset, then up finishes it",
    "a stop signal or SIGKILL during down, then down finishes it",
    "engine container killed during up",
    "postgres stopped under a running stack",
    "docker engine unreachable mid-command",
    "disk full while writing the state directory",
    "disk full while writing the client settings file",
    "engine config volume removed while the database survives",
    "postgres out of disk while tasks run",
    "SIGINT or SIGTERM during snapshot save",
    "SIGTERM during snapshot load",
    "SIGHUP during reset (the pristine database swapped in)",
]
SIGNALS = list(STOPS)
FULL_WALK = os.environ.get("HATCHET_LOCAL_SIGNAL_WALK") == "full"
# Tasks an SDK ran on the module's stack since its data was last wiped.
TASKS_RUN: list[str] = []
# What the signal walks tried: command -> phase -> signal -> "survived" (or what failed).
TRIED: dict[str, dict[str, dict[str, str]]] = {}


def walks(phases: list[str]) -> list[list[tuple[str, str]]]:
    """The (phase, signal) strikes of each walk over `phases`: one walk rotating the four
    signals over the phases (CI), or, full, one walk per signal over every phase."""
    if FULL_WALK:
        return [[(phase, name) for phase in phases] for name in SIGNALS]
    rotation = ["SIGINT", "SIGKILL", "SIGTERM", "SIGHUP"]
    return [[(phase, rotation[i % len(rotation)]) for i, phase in enumerate(phases)]]


def record(command: str, phase: str, name: str, outcome: str) -> None:
    TRIED.setdefault(command, {}).setdefault(phase, {})[name] = outcome


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _stop_watched() -> Iterator[None]:
    yield
    while RUNNING:
        RUNNING.pop().stop()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """The walks' outcomes at $HATCHET_LOCAL_FAULTS_OUT (bench/reliability.py reads them)."""
    yield
    out = os.environ.get("HATCHET_LOCAL_FAULTS_OUT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"signals": TRIED, "full": FULL_WALK}, indent=2) + "\n")


# --- the stack all faults share ------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty(rig_images: dict[str, str]) -> Iterator[Project]:
    """A stack of its own (not started here) whose state directory is a 16 MB tmpfs."""
    root = Path(tempfile.mkdtemp(prefix="hl-faults-", dir="/tmp"))
    state = root / "state"
    mount_tmpfs(state, "16m")
    name = f"faults-{uuid.uuid4().hex[:6]}"
    project = Project(root / "app", state, f"stack: {name}\n")
    try:
        yield project
    finally:
        try:
            (state / "filler").unlink(missing_ok=True)
            down = project.hl("down", "--volumes", "--yes", ok=False)  # after every fault
            left = labelled(f"io.hatchet-local.stack={name}")
        finally:
            project.destroy()  # whatever happened
            subprocess.run(["umount", str(state)], check=False)
            shutil.rmtree(root, ignore_errors=True)
    assert down.returncode == 0, down.stderr
    assert left == NOTHING


# --- the faults ----------------------------------------------------------------------------


def test_signals_at_each_phase_of_up(faulty: Project) -> None:
    """Each `up` is stopped at the next phase by the next signal: a stop signal ends it with
    128 + its number and the message, SIGKILL ends it on the spot; either way no lock is held,
    no file is half-written, no command of it runs on, `ls` knows the stack, and the next
    `up` carries on. The last `up` finishes, and a task runs."""
    for walk in walks(UP_PHASES):
        faulty.hl("down", "--volumes", "--yes")  # a new stack: every phase has work to do
        TASKS_RUN.clear()
        (faulty.dir / ".env.hatchet").unlink(missing_ok=True)
        stopped_in = []
        for phase, name in walk:
            record("up", phase, name, "tried")
            stopped_in.append(strike(faulty, ("up",), phase, name))
            record("up", phase, name, "survived")
        assert len(set(stopped_in)) >= len(walk) - 2, stopped_in

        final = faulty.hl("up")
        assert "waiting for another hatchet-local command" not in final.stderr
        assert_consistent(faulty)
        # No job container a killed run left, no orphan: exactly the stack's services.
        assert services_of(stack_of(faulty)) == ["hatchet-lite", "postgres", "rabbitmq"]
        name = probe_name()
        assert faulty.run_task(name) == {"echo": "HELLO", "task": name}
        TASKS_RUN.append(name)


@pytest.fixture(scope="module")
def marker(faulty: Project) -> tuple[str, str]:
    """A workflow registered by an SDK task, and the database's identity: the data every later
    fault must leave in place."""
    faulty.hl("up")
    name = TASKS_RUN[-1] if TASKS_RUN else probe_name()
    if not TASKS_RUN:  # the Ctrl-C test ran one already: each SDK round trip costs ~20 s
        assert faulty.run_task(name) == {"echo": "HELLO", "task": name}
    return name, database_identity(stack_of(faulty))


def assert_data_kept(project: Project, marker: tuple[str, str]) -> None:
    name, identity = marker
    assert database_identity(stack_of(project)) == identity  # the same database, not a new one
    assert name in workflow_names(project.env_file())


def assert_usable(project: Project) -> None:
    name = probe_name()
    assert project.run_task(name) == {"echo": "HELLO", "task": name}


def test_engine_killed_during_up(faulty: Project, marker: tuple[str, str]) -> None:
    faulty.hl("up")
    stack = stack_of(faulty)
    # Only the engine down: `up` then has to start and wait for it (Postgres and RabbitMQ stay).
    subprocess.run(["docker", "stop", container_of(stack, "hatchet-lite")], check=True,
                   capture_output=True)  # fmt: skip

    run = Watched(faulty, "up")
    run.wait_for("-> engine ready")
    # The phase starts the engine's container first: kill it once it runs.
    deadline = time.monotonic() + 60
    while subprocess.run(["docker", "kill", container_of(stack, "hatchet-lite")],
                         capture_output=True, check=False).returncode != 0:  # fmt: skip
        assert time.monotonic() < deadline, "the engine's container never ran"
        time.sleep(0.1)
    code = run.finish()
    if code != 0:  # or it recovered, which is as good
        assert code == 6, run.err
        line = one_error_line(run.err)
        assert "engine" in line and ("exited" in line or "restarting" in line), line
        assert "last log lines of hatchet-lite" in run.err
    assert_consistent(faulty)

    faulty.hl("up")
    assert_data_kept(faulty, marker)
    assert_usable(faulty)


def test_postgres_stopped_under_a_running_stack(faulty: Project, marker: tuple[str, str]) -> None:
    faulty.hl("up")
    token = faulty.env_file()["HATCHET_CLIENT_TOKEN"]
    stack = stack_of(faulty)
    subprocess.run(["docker", "stop", container_of(stack, "postgres")], check=True,
                   capture_output=True)  # fmt: skip

    status = faulty.status()
    assert status["state"] == "partial"
    assert status["services"]["postgres"]["state"] == "exited"
    assert "postgres is exited" in status["problems"]
    text = faulty.hl("status")
    assert f"{stack} (partial)" in text.stdout
    assert "postgres is exited" in text.stderr and "hatchet-local up" in text.stderr

    healed = faulty.hl("up")
    assert "-> postgres healthy" in healed.stderr
    assert faulty.status()["state"] == "running"
    assert faulty.env_file()["HATCHET_CLIENT_TOKEN"] == token
    assert_data_kept(faulty, marker)
    assert_usable(faulty)


def test_docker_unreachable_mid_command(faulty: Project, marker: tuple[str, str]) -> None:
    """DOCKER_HOST points at a proxy in front of the shared engine; cutting it is what a
    client sees when dockerd goes away. Twice: while `up` polls, and while a job runs."""
    faulty.hl("up")
    stack = stack_of(faulty)
    # Postgres down: `up` has to start it, wait for it and run the jobs again.
    subprocess.run(["docker", "stop", container_of(stack, "postgres")], check=True,
                   capture_output=True)  # fmt: skip
    sockets = Path(tempfile.mkdtemp(prefix="hl-proxy-", dir="/tmp"))
    proxy = DockerProxy(sockets / "docker.sock").start()
    try:
        run = Watched(faulty, "up", DOCKER_HOST=proxy.docker_host)
        run.wait_for("-> postgres healthy")
        proxy.cut()
        assert run.finish() == 3, run.err
        line = one_error_line(run.err)
        assert line.startswith(f"error: no Docker engine answers ({proxy.docker_host})"), line
        assert "run the same command again" in line
        assert_consistent(faulty)

        # Postgres may have come up meanwhile (Compose had started it): down again.
        subprocess.run(["docker", "stop", container_of(stack, "postgres")], check=True,
                       capture_output=True)  # fmt: skip
        proxy = DockerProxy(sockets / "docker.sock").start()
        run = Watched(faulty, "up", DOCKER_HOST=proxy.docker_host)
        run.wait_for("-> migrate job")  # the job runs by `docker exec` in the engine's container
        proxy.cut()
        assert run.finish() == 3, run.err  # not "the migrate job failed" (7)
        # The job cut off from its `docker exec` goes on in the engine's container: let it end.
        deadline = time.monotonic() + 120
        while job_running(stack, "migrate"):
            assert time.monotonic() < deadline, "the cut-off migrate job never ended"
            time.sleep(0.5)
        line = one_error_line(run.err)
        assert line.startswith(f"error: no Docker engine answers ({proxy.docker_host})"), line
        assert_consistent(faulty)
    finally:
        proxy.cut()
        shutil.rmtree(sockets, ignore_errors=True)

    faulty.hl("up")
    assert services_of(stack) == ["hatchet-lite", "postgres", "rabbitmq"]
    assert_data_kept(faulty, marker)
    assert_usable(faulty)


def test_config_volume_removed_while_the_database_survives(
    faulty: Project, marker: tuple[str, str]
) -> None:
    """The "invalid auth token" trap: new JWT keys under an old database. `up` re-bootstraps:
    a new token written, the old one dead, the data kept."""
    faulty.hl("up")
    old = faulty.env_file()["HATCHET_CLIENT_TOKEN"]
    stack = stack_of(faulty)
    faulty.hl("down")
    subprocess.run(["docker", "volume", "rm", volume_of(stack, "hatchet_config")], check=True,
                   capture_output=True)  # fmt: skip

    healed = faulty.hl("up")
    assert "the stored token is no longer accepted" in healed.stderr
    assert "new token" in healed.stdout
    settings = faulty.env_file()
    assert settings["HATCHET_CLIENT_TOKEN"] != old
    assert not token_accepted(settings, old)
    assert token_accepted(settings, settings["HATCHET_CLIENT_TOKEN"])
    assert_data_kept(faulty, marker)
    assert_usable(faulty)


def test_disk_full_while_writing_the_state_directory(faulty: Project) -> None:
    faulty.hl("up")
    token = faulty.env_file()["HATCHET_CLIENT_TOKEN"]
    before = snapshot(faulty.state)
    env_before = (faulty.dir / ".env.hatchet").read_bytes()
    filler = fill(faulty.state)
    try:
        full = faulty.hl("up", ok=False)
        assert full.returncode == 1, full.stderr
        line = one_error_line(full.stderr)
        assert "no space left" in line and str(faulty.state) in line, line
        assert "run the same command again" in line
        assert snapshot(faulty.state) == before  # nothing lost, nothing half-written
        assert (faulty.dir / ".env.hatchet").read_bytes() == env_before
        assert_consistent(faulty)
    finally:
        filler.unlink()
    faulty.hl("up")
    assert faulty.env_file()["HATCHET_CLIENT_TOKEN"] == token


def test_disk_full_while_writing_the_client_settings(faulty: Project) -> None:
    """`.env.hatchet` on a full file system: the user's file stays as it was, byte for byte,
    and the next `up` with space writes the settings beside the user's lines."""
    faulty.hl("up")
    small = Path(tempfile.mkdtemp(prefix="hl-envdir-", dir="/tmp"))
    mount_tmpfs(small, "256k")
    try:
        env_file = small / ".env.hatchet"
        mine = b"# mine\nexport MY_FLAG=1\r\nLAST=1"
        env_file.write_bytes(mine)
        filler = fill(small)
        full = faulty.hl("up", "--env-file", str(env_file), ok=False)
        assert full.returncode == 1, full.stderr
        line = one_error_line(full.stderr)
        assert "no space left" in line and str(env_file) in line, line
        assert env_file.read_bytes() == mine
        assert sorted(p.name for p in small.iterdir()) == [".env.hatchet", "filler"]
        filler.unlink()

        faulty.hl("up", "--env-file", str(env_file))
        text = env_file.read_bytes()
        assert text.startswith(mine)
        assert b"HATCHET_CLIENT_TOKEN=ey" in text
    finally:
        subprocess.run(["umount", str(small)], check=False)
        shutil.rmtree(small, ignore_errors=True)


# --- Stopped during snapshot save, snapshot load and reset: the old data or the new ----------
# (Last but the ones below: `reset` and `snapshot load` leave the data the marker set.)


def tenants(project: Project) -> list[str]:
    rows = json.loads(project.hl("tenant", "list", "--output", "json").stdout)
    return sorted(row["slug"] for row in rows)


def interrupted(project: Project, phase: str, name: str, *args: str) -> int:
    """Run `hatchet-local ARGS`, send it stop signal `name` as its sender does once `phase`
    starts; its exit code (0 when the work was done before the signal landed, 128 + the
    signal's number otherwise)."""
    run = Watched(project, *args)
    run.wait_for(f"-> {phase}")
    run.send(name)
    code = run.finish()
    assert code in (0, 128 + signal.Signals[name]), f"{name}: exit {code}\n{run.err}"
    assert "Traceback" not in run.err
    return code


def test_a_stop_signal_during_snapshot_save(faulty: Project) -> None:
    """The snapshot file is the old one, or the new one whole; nothing half-written."""
    faulty.hl("up")
    target = faulty.dir / "team.tar"
    faulty.hl("snapshot", "save", "./team.tar", "--force")
    old = target.read_bytes()
    for phase, name in (("database", "SIGINT"), ("engine config", "SIGTERM")):
        code = interrupted(faulty, phase, name, "snapshot", "save", "./team.tar", "--force")
        if code != 0:
            assert target.read_bytes() == old, f"interrupted at {phase}"
        with snapshot_file.reading(target):  # whichever it is, it is whole
            pass
        assert_consistent(faulty)


def test_a_stop_signal_during_snapshot_load(faulty: Project) -> None:
    """Interrupted while the data is swapped: the old data, or the snapshot's, never half."""
    faulty.hl("up")
    faulty.hl("snapshot", "save", "./before.tar", "--force")
    faulty.hl("tenant", "create", "after-save")  # only the old data has it
    assert "after-save" in tenants(faulty)
    interrupted(faulty, "load snapshot", "SIGTERM", "snapshot", "load", "./before.tar", "--yes")
    assert_consistent(faulty)
    faulty.hl("up")
    assert "after-save" in tenants(faulty) or tenants(faulty) == ["default"]
    settings = faulty.env_file()
    assert token_accepted(settings, settings["HATCHET_CLIENT_TOKEN"])
    assert_usable(faulty)


def test_a_stop_signal_during_reset(faulty: Project) -> None:
    """Interrupted while the pristine database is swapped in: old or new, the token kept."""
    faulty.hl("up")
    token = faulty.env_file()["HATCHET_CLIENT_TOKEN"]
    faulty.hl("tenant", "create", "before-reset")  # a reset removes it
    interrupted(faulty, "restore", "SIGHUP", "reset", "--yes")
    assert_consistent(faulty)
    faulty.hl("up")
    assert faulty.env_file()["HATCHET_CLIENT_TOKEN"] == token
    assert token_accepted(faulty.env_file(), token)
    assert "before-reset" in tenants(faulty) or tenants(faulty) == ["default"]
    assert_usable(faulty)


# --- reset and down stopped part-way (last: they delete the stack's data) -------------------


def test_signals_during_reset_then_up_finishes_it(faulty: Project) -> None:
    """`reset --new-token` (the reset that wipes everything) stopped at a phase: whatever it
    had done, the next command goes on from there
    (another `reset` struck at a later phase, in the full walk) and the next `up` gives a
    stack that works, with a token the stack accepts (a wipe cut short is finished first)."""
    faulty.hl("up")
    quick = [[("wipe data", "SIGKILL")], [("migrate job", "SIGTERM")]]
    for walk in walks(RESET_PHASES) if FULL_WALK else quick:
        for phase, name in walk:
            record("reset --new-token", phase, name, "tried")
            strike(faulty, ("reset", "--new-token", "--yes"), phase, name)
        healed = faulty.hl("up")
        assert "waiting for another hatchet-local command" not in healed.stderr
        assert not (faulty.state / "stacks" / stack_of(faulty) / "wiping").exists()
        assert_consistent(faulty)  # what a killed write left is gone too
        settings = faulty.env_file()
        assert token_accepted(settings, settings["HATCHET_CLIENT_TOKEN"])
        assert services_of(stack_of(faulty)) == ["hatchet-lite", "postgres", "rabbitmq"]
        for phase, name in walk:
            record("reset --new-token", phase, name, "survived")
    name = probe_name()
    assert faulty.run_task(name) == {"echo": "HELLO", "task": name}


def test_signals_during_down_then_down_finishes_it(faulty: Project) -> None:
    """`down` (and `down --volumes`) stopped while removing: running it again finishes the
    job; nothing of the stack is left running, and its data goes only when asked."""
    stack = stack_of(faulty)
    quick = [("down", "SIGHUP"), ("down --volumes", "SIGKILL")]
    strikes = [(c, n) for c in DOWN_PHASES for n in SIGNALS] if FULL_WALK else quick
    for command, name in strikes:
        faulty.hl("up")
        args = ("down", "--volumes", "--yes") if command == "down --volumes" else ("down",)
        record(command, DOWN_PHASES[command], name, "tried")
        strike(faulty, args, DOWN_PHASES[command], name)
        faulty.hl(*args)
        left = labelled(f"io.hatchet-local.stack={stack}")
        assert left["containers"] == []
        assert (left["volumes"] == []) == (command == "down --volumes"), left
        record(command, DOWN_PHASES[command], name, "survived")
    faulty.hl("up")
    name = probe_name()
    assert faulty.run_task(name) == {"echo": "HELLO", "task": name}


# --- Postgres out of disk --------------------------------------------------------------------


@pytest.fixture
def small_disk_stack(rig_images: dict[str, str], tmp_path: Path) -> Iterator[Project]:
    """A `--profile ci` stack (its queue in Postgres: the most writes) whose Postgres volume is
    a 400 MB ext4 file system of its own, on a loop device: made before `up`, with the labels
    Compose and hatchet-local give their own volumes."""
    image, mnt = tmp_path / "pg.img", tmp_path / "mnt"
    subprocess.run(["truncate", "-s", "400M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    loop = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    name = f"diskfull-{uuid.uuid4().hex[:6]}"
    project = Project(tmp_path / "app", tmp_path / "state", f"stack: {name}\nprofile: ci\n")
    try:
        mnt.mkdir()
        subprocess.run(["mount", loop, str(mnt)], check=True)
        (mnt / "lost+found").rmdir()  # initdb wants an empty directory
        subprocess.run(["umount", str(mnt)], check=True)
        labels = {
            "com.docker.compose.project": name,
            "com.docker.compose.volume": "postgres_data",
            "io.hatchet-local.stack": name,
            "io.hatchet-local.state": str(project.state),
        }
        subprocess.run(
            ["docker", "volume", "create", "--driver", "local", "--opt", "type=ext4",
             "--opt", f"device={loop}", *(f"--label={k}={v}" for k, v in labels.items()),
             f"{name}_postgres_data"], check=True, capture_output=True,
        )  # fmt: skip
        yield project
    finally:
        project.hl("destroy", "--yes", ok=False)
        subprocess.run(["docker", "volume", "rm", "--force", f"{name}_postgres_data"],
                       capture_output=True, check=False)  # fmt: skip
        subprocess.run(["losetup", "--detach", loop], check=False)
    assert labelled(f"io.hatchet-local.stack={name}") == {
        "containers": [], "volumes": [], "networks": [],
    }  # fmt: skip


def postgres_failed_a_write(container: str) -> bool:
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return "No space left on device" in logs.stdout + logs.stderr


def test_postgres_out_of_disk_while_tasks_run(small_disk_stack: Project) -> None:
    """The file system under Postgres fills while a worker runs tasks: every container still
    runs and reports healthy, but the engine's writes fail; `status` says why. Once space is
    freed, `up` brings the stack back with everything committed before."""
    project = small_disk_stack
    project.hl("up")
    stack = stack_of(project)
    identity = database_identity(stack)
    worker = SdkWorker(project.dir, f"disk{uuid.uuid4().hex[:6]}").start()
    try:
        assert worker.run_task("committed")["echo"] == "COMMITTED"
        postgres = container_of(stack, "postgres")
        subprocess.run(["docker", "exec", postgres, "sh", "-c",
                        "dd if=/dev/zero of=/var/lib/postgresql/data/filler bs=1M || true"],
                       check=True, capture_output=True)  # fmt: skip
        # Tasks keep coming while the disk is full; whether one gets through is the engine's
        # business, so its outcome is not asserted. They come until one of Postgres's writes
        # has failed for want of space: a write that still fits in a page or a recycled WAL
        # segment does not fail, and until one fails the stack does work.
        deadline = time.monotonic() + 120
        while not postgres_failed_a_write(postgres):
            assert time.monotonic() < deadline, "Postgres never failed a write on a full disk"
            subprocess.run(
                [sys.executable, str(PROBE), "run", worker.name, "while-full"], cwd=project.dir,
                env=worker.env, capture_output=True, timeout=60, check=False,
            )  # fmt: skip

        info = project.status()
        assert info["state"] == "failing", info
        assert [p for p in info["problems"] if p.startswith("postgres is out of disk space")]
        text = project.hl("status")
        assert f"stack      {stack} (failing)" in text.stdout
        assert "warning: stack" in text.stderr and "out of disk space" in text.stderr
        assert "free space there, then run `hatchet-local up`" in text.stderr

        subprocess.run(["docker", "exec", postgres, "rm", "/var/lib/postgresql/data/filler"],
                       check=True)  # fmt: skip
        project.hl("up")
        assert project.status()["state"] == "running"
        assert database_identity(stack) == identity
        assert worker.name in workflow_names(project.env_file())
        assert worker.run_task("after")["echo"] == "AFTER"
    finally:
        worker.stop()
