"""The fault matrix (issue #7) on the rig: each fault ends with a consistent stack or a clear
one-line message, and no data is lost that was not asked to be.

One stack serves every fault (CI time matters); each test first brings it to the state its
fault needs. The stack's state directory is a small tmpfs of its own, so the disk-full case
fills a real file system. Everything the module creates is removed at the end, and checked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hatchet_local import snapshot_file
from tests.support.dockerproxy import DockerProxy
from tests.support.stacks import (
    CLIENT_KEYS,
    HATCHET_LOCAL,
    NOTHING,
    Project,
    labelled,
    services_of,
    tenant_get,
    workflow_names,
)

pytestmark = pytest.mark.e2e

# The faults this module survives; a reliability script counts them.
FAULTS = [
    "ctrl-c at each phase of up",
    "engine container killed during up",
    "postgres stopped under a running stack",
    "docker engine unreachable mid-command",
    "disk full while writing the state directory",
    "disk full while writing the client settings file",
    "engine config volume removed while the database survives",
    "ctrl-c during snapshot save",
    "ctrl-c during snapshot load",
    "ctrl-c during reset",
]

# `up`'s phases in order, as a stack that is not running goes through them. (A new stack's
# "keep base" happens only while it has no data: after "containers", no later `up` shows it.
# "pristine copy" is taken again until one `up` finishes it.)
UP_PHASES = [
    "docker engine",
    "stack files",
    "images",
    "containers",
    "postgres healthy",
    "migrate job",
    "setup job",
    "pristine copy",
    "rabbitmq healthy",
    "engine ready",
    "task dispatch",
    "API ready",
    "token",
]
INTERRUPTED = "interrupted; run the same command again to finish"
# Tasks an SDK ran on the module's stack since its data was last wiped.
TASKS_RUN: list[str] = []


# --- helpers -------------------------------------------------------------------------------


RUNNING: list[Watched] = []


@pytest.fixture(autouse=True)
def _stop_watched() -> Iterator[None]:
    yield
    while RUNNING:
        RUNNING.pop().stop()


class Watched:
    """`hatchet-local ARGS` running in its own process group, its progress read line by line
    as it comes, so a test can strike at a given phase."""

    def __init__(self, project: Project, *args: str, **env: str) -> None:
        RUNNING.append(self)
        self.proc = subprocess.Popen(
            [str(HATCHET_LOCAL), *args],
            cwd=project.dir, env=project.env(**env), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self.stdout = ""
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()

    def wait_for(self, line: str, timeout: float = 600) -> None:
        """Return as soon as `line` has been printed; fail when the command ends first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no {line!r} after {timeout}s:\n{self.err}") from None
            if got is None:
                raise AssertionError(f"ended without printing {line!r}:\n{self.err}")
            if got == line:
                return

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def finish(self, timeout: float = 600) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return code

    def stop(self) -> None:
        """After a failed test: end the command and whatever it started."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.finish(60)

    @property
    def err(self) -> str:
        return "".join(self.stderr)


def stack_of(project: Project) -> str:
    config = (project.dir / "hatchet-local.yaml").read_text()
    return next(line.split(":", 1)[1].strip() for line in config.splitlines()
                if line.startswith("stack:"))  # fmt: skip


def container_of(stack: str, service: str) -> str:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.hatchet-local.stack={stack}",
         "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(out) == 1, f"expected one {service} container of {stack}, found {out}"
    return out[0]


def volume_of(stack: str, volume: str) -> str:
    """The name of compose volume `volume` of `stack`, found by its labels."""
    names = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"label=io.hatchet-local.stack={stack}",
         "--filter", f"label=com.docker.compose.volume={volume}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(names) == 1, f"expected one {volume} volume of {stack}, found {names}"
    return names[0]


def wait_for_running_job(stack: str, job: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={stack}",
             "--filter", "label=com.docker.compose.oneoff=True",
             "--filter", f"label=com.docker.compose.service={job}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if running:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {job} job of {stack} running after {timeout}s")


def database_identity(stack: str) -> str:
    """Postgres's system identifier: made by initdb, so a new data volume gets a new one."""
    result = subprocess.run(
        ["docker", "exec", container_of(stack, "postgres"), "psql", "-U", "hatchet", "-d",
         "hatchet", "-tAc", "SELECT system_identifier FROM pg_control_system()"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    identity = result.stdout.strip()
    assert identity.isdigit(), result
    return identity


def one_error_line(stderr: str) -> str:
    """The single `error: ...` line of a failed command (details may follow, never a
    traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def assert_consistent(project: Project) -> None:
    """No lock held, no temp file left, every state file readable, `.env.hatchet` absent or
    complete."""
    stack_dir = project.state / "stacks" / stack_of(project)
    for lock in (project.state / "locks").glob("*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises when still held
        finally:
            os.close(fd)
    litter = [p for d in (project.state, project.dir) for p in d.rglob("*.tmp")]
    assert litter == []
    for name in ("stack.json", "token.json"):
        if (stack_dir / name).exists():
            json.loads((stack_dir / name).read_text())
    secrets = stack_dir / "secrets.env"
    if secrets.exists():
        assert secrets.read_text().count("_PASSWORD=") == 3
    if (project.dir / ".env.hatchet").exists():
        settings = project.env_file()
        assert set(settings) >= CLIENT_KEYS
        assert settings["HATCHET_CLIENT_TOKEN"].startswith("ey")


def probe_name() -> str:
    return f"fault-{uuid.uuid4().hex[:8]}"


def token_accepted(settings: dict[str, str], token: str) -> bool:
    status = tenant_get(settings, token)
    assert status in (200, 401, 403), status
    return status == 200


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mount.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {path}: {mount.stderr.strip()}", pytrace=False)


def fill(directory: Path) -> Path:
    """Fill the file system holding `directory` to the last byte; return the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        (directory / "probe").write_bytes(b"x" * 4096)
    (directory / "probe").unlink(missing_ok=True)
    return filler


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "filler" and p.parent.name != "locks"  # pids, no data
    }


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


def test_ctrl_c_at_each_phase_of_up(faulty: Project) -> None:
    """Each `up` is interrupted at the next phase; every one stops with 130 and the message,
    leaves no lock, no temp file and no half-written file; then a full `up` works."""
    faulty.hl("down", "--volumes", "--yes")  # a new stack: every phase has work to do
    TASKS_RUN.clear()
    (faulty.dir / ".env.hatchet").unlink(missing_ok=True)
    stopped_in = []
    for phase in UP_PHASES:
        run = Watched(faulty, "up")
        run.wait_for(f"-> {phase}")
        run.interrupt()
        code = run.finish()
        assert code == 130, f"interrupt at {phase}: exit {code}\n{run.err}"
        assert "Traceback" not in run.err
        assert run.err.rstrip().splitlines()[-1] == INTERRUPTED, run.err
        aborted = [line[3:].rsplit(" (", 1)[0] for line in run.err.splitlines()
                   if line.startswith("!! ")]  # fmt: skip
        assert aborted, run.err
        # A phase of a few milliseconds may be over before the signal lands: then the next.
        assert UP_PHASES.index(aborted[-1]) >= UP_PHASES.index(phase), run.err
        stopped_in.append(aborted[-1])
        assert_consistent(faulty)
    assert len(set(stopped_in)) >= len(UP_PHASES) - 2, stopped_in

    final = faulty.hl("up")
    assert "waiting for another hatchet-local command" not in final.stderr
    assert_consistent(faulty)
    stack = stack_of(faulty)
    assert services_of(stack) == ["hatchet-lite", "postgres", "rabbitmq"]
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
        run.wait_for("-> migrate job")
        wait_for_running_job(stack, "migrate")  # Compose is attached to it now
        proxy.cut()
        assert run.finish() == 3, run.err  # not "the migrate job failed" (7)
        # Cut before the job's container started, Compose leaves it (once started, Docker
        # removes it by itself when it ends): `up` must clear it. Let a started one end first.
        deadline = time.monotonic() + 120
        while "migrate" in services_of(stack, running_only=True):
            assert time.monotonic() < deadline, "the cut-off migrate job never ended"
            time.sleep(0.5)
        time.sleep(1)  # Docker's removal of an ended --rm container
        leftover = "migrate" in services_of(stack)
        line = one_error_line(run.err)
        assert line.startswith(f"error: no Docker engine answers ({proxy.docker_host})"), line
        assert_consistent(faulty)
    finally:
        proxy.cut()
        shutil.rmtree(sockets, ignore_errors=True)

    healed = faulty.hl("up")
    assert ("removed 1 migrate container(s) an earlier run left" in healed.stderr) == leftover
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


# --- Ctrl-C during snapshot save, snapshot load and reset: the old data or the new ------------
# (Last in the module: `reset` and `snapshot load` leave the data the marker fixture set.)


def tenants(project: Project) -> list[str]:
    rows = json.loads(project.hl("tenant", "list", "--output", "json").stdout)
    return sorted(row["slug"] for row in rows)


def interrupted(project: Project, phase: str, *args: str) -> int:
    """Run `hatchet-local ARGS`, Ctrl-C it once `phase` starts; its exit code (0 when the
    work was done before the signal landed, 130 otherwise)."""
    run = Watched(project, *args)
    run.wait_for(f"-> {phase}")
    run.interrupt()
    code = run.finish()
    assert code in (0, 130), f"exit {code}\n{run.err}"
    assert "Traceback" not in run.err
    return code


def test_ctrl_c_during_snapshot_save(faulty: Project) -> None:
    """The snapshot file is the old one, or the new one whole; nothing half-written."""
    faulty.hl("up")
    target = faulty.dir / "team.tar"
    faulty.hl("snapshot", "save", "./team.tar", "--force")
    old = target.read_bytes()
    for phase in ("database", "engine config"):
        code = interrupted(faulty, phase, "snapshot", "save", "./team.tar", "--force")
        if code == 130:
            assert target.read_bytes() == old, f"interrupted at {phase}"
        with snapshot_file.reading(target):  # whichever it is, it is whole
            pass
        assert_consistent(faulty)


def test_ctrl_c_during_snapshot_load(faulty: Project) -> None:
    """Interrupted while the data is swapped: the old data, or the snapshot's, never half."""
    faulty.hl("up")
    faulty.hl("snapshot", "save", "./before.tar", "--force")
    faulty.hl("tenant", "create", "after-save")  # only the old data has it
    assert "after-save" in tenants(faulty)
    interrupted(faulty, "load snapshot", "snapshot", "load", "./before.tar", "--yes")
    assert_consistent(faulty)
    faulty.hl("up")
    assert "after-save" in tenants(faulty) or tenants(faulty) == ["default"]
    settings = faulty.env_file()
    assert token_accepted(settings, settings["HATCHET_CLIENT_TOKEN"])
    assert_usable(faulty)


def test_ctrl_c_during_reset(faulty: Project) -> None:
    """Interrupted while the pristine database is swapped in: old or new, the token kept."""
    faulty.hl("up")
    token = faulty.env_file()["HATCHET_CLIENT_TOKEN"]
    faulty.hl("tenant", "create", "before-reset")  # a reset removes it
    interrupted(faulty, "restore", "reset", "--yes")
    assert_consistent(faulty)
    faulty.hl("up")
    assert faulty.env_file()["HATCHET_CLIENT_TOKEN"] == token
    assert token_accepted(faulty.env_file(), token)
    assert "before-reset" in tenants(faulty) or tenants(faulty) == ["default"]
    assert_usable(faulty)
