"""What the fault tests share (tests/e2e/test_faults.py, test_signals.py and
test_docker_restart.py): a command watched line by line so a test can strike at a given
phase, and the checks that a stack is consistent after a fault."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from hatchet_local.defaults import ENGINE_SERVICE, JOB_COMMANDS
from tests.support.stacks import CLIENT_KEYS, HATCHET_LOCAL, Project, labelled, tenant_get

# `up`'s phases in order, as a stack that is not running goes through them; `reset`'s
# (`wipe data`, then up's from `stack files`), and `down`'s.
# `up`'s phases in order, as a new stack goes through them where no base can be kept (the
# fault stack's state directory is too small): "keep base" is tried once, after "migrate job",
# and only while the stack has no data, so no walk strikes it. "pristine copy" is taken
# again until one `up` finishes it.
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
# `reset --new-token`: the data wiped, then the phases of a new stack's `up`.
RESET_PHASES = ["wipe data", *UP_PHASES[1:]]
FINISHED = "(finished before the signal landed)"
DOWN_PHASES = {"down": "remove containers", "down --volumes": "remove containers and data"}

# How a command is stopped, and to whom the signal goes, as its sender does it: a terminal
# signals the whole foreground process group; `kill`, `docker stop` and CI runners' SIGTERM
# and SIGKILL name the process.
STOPS = {"SIGINT": "group", "SIGTERM": "process", "SIGHUP": "group", "SIGKILL": "process"}
MESSAGES = {
    "SIGINT": "interrupted; run the same command again to finish",
    "SIGTERM": "stopped by SIGTERM; run the same command again to finish",
    "SIGHUP": "stopped by SIGHUP; run the same command again to finish",
}

# Commands started by Watched that a test has not finished: an autouse fixture of each test
# module stops them after a failed test.
RUNNING: list[Watched] = []


def _stop_signals_at_their_defaults() -> None:
    """In the command's process before it starts: the stop signals at their defaults,
    whatever this test run inherited. A test run started under `nohup` ignores SIGHUP, one
    started in the background by a shell without job control ignores SIGINT, and hatchet-local
    keeps an ignored signal ignored (by design: `nohup hatchet-local up`), so the strikes
    would not land."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(signal.Signals[name], signal.SIG_DFL)


class Watched:
    """`hatchet-local ARGS` running in its own process group, its progress read line by line
    as it comes, so a test can strike at a given phase."""

    def __init__(self, project: Project, *args: str, **env: str) -> None:
        RUNNING.append(self)
        self.proc = subprocess.Popen(
            [*project.prefix, str(HATCHET_LOCAL), *args],
            cwd=project.dir, env=project.env(**env), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
            # It only resets three signal dispositions (as the runner's own does).
            preexec_fn=_stop_signals_at_their_defaults,  # noqa: PLW1509
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

    def send(self, name: str) -> None:
        """Signal `name` as whoever sends it does (see STOPS)."""
        signum = signal.Signals[name]
        if STOPS[name] == "group":
            os.killpg(self.proc.pid, signum)
        else:
            os.kill(self.proc.pid, signum)

    def begun(self) -> list[str]:
        """The phases begun (`-> X`), in order."""
        return self.phases("-> ")

    def phases(self, mark: str) -> list[str]:
        """The phases of the progress lines starting with `mark` (`-> ` begun, `ok ` ended,
        `!! ` aborted), in order, without the time a line ends with."""
        return [line[3:].rsplit(" (", 1)[0] for line in self.err.splitlines()
                if line.startswith(mark)]  # fmt: skip

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


def job_running(stack: str, job: str) -> bool:
    """Whether `job` runs inside the engine's container (`up` runs the jobs there, by
    `docker exec`)."""
    top = subprocess.run(
        ["docker", "top", container_of(stack, ENGINE_SERVICE), "-o", "args"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return any(line.startswith(JOB_COMMANDS[job][0]) for line in top.splitlines())


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


def assert_consistent(project: Project, *, killed: bool = False) -> None:
    """No lock held, no temp file left, every state file readable, `.env.hatchet` absent or
    complete. Right after a SIGKILL, the temp file of a write it cut short may be left (no
    handler runs; the next `up` removes it), never the file itself half-written."""
    stack_dir = project.state / "stacks" / stack_of(project)
    for lock in (project.state / "locks").glob("*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises when still held
        finally:
            os.close(fd)
    litter = [p for d in (project.state, project.dir) for p in d.rglob("*.tmp")]
    if killed:  # only atomic_write's own: .NAME.RANDOM.tmp beside NAME
        litter = [p for p in litter if not (p.name.startswith(".") and p.name.count(".") >= 3)]
    assert litter == [], litter
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


def strike(project: Project, args: tuple[str, ...], phase: str, name: str) -> str:
    """Run `hatchet-local ARGS`, send signal `name` once it begins `phase`, and check what it
    leaves: a stop signal ends it with 128 + the signal's number, its one-line message and
    the phase marked aborted; after any signal (SIGKILL too) no lock is held, no file is
    half-written, no docker or compose command of the stack runs on, and `ls` knows the
    stack. Returns the phase it stopped in (a phase of milliseconds may be over before the
    signal lands: then a later one, or FINISHED when the work was done)."""
    run = Watched(project, *args)
    run.wait_for(f"-> {phase}")
    run.send(name)
    code = run.finish()
    assert "Traceback" not in run.err, run.err
    begun = run.begun()
    ended = run.phases("ok ")
    if code == 0:
        # The signal landed once the work was done (the last phases take milliseconds): the
        # command ended as if never signalled. Only then: no phase began after the one struck.
        assert begun[-1] == phase and phase in ended, f"{name} at {phase}: exit 0\n{run.err}"
        stopped = FINISHED
    elif name == "SIGKILL":
        assert code == -signal.SIGKILL, f"{name} at {phase}: exit {code}\n{run.err}"
        stopped = begun[-1]
    else:
        signum = signal.Signals[name]
        assert code == 128 + signum, f"{name} at {phase}: exit {code}\n{run.err}"
        assert run.err.rstrip().splitlines()[-1] == MESSAGES[name], run.err
        aborted = run.phases("!! ")
        # A phase under way is marked aborted; a signal landing between two phases (the one
        # before had ended) has none to mark.
        assert aborted or begun[-1] in ended, run.err
        stopped = aborted[-1] if aborted else begun[-1]
    if stopped != FINISHED:
        assert begun.index(stopped) >= begun.index(phase), run.err
    assert_no_command_left(stack_of(project))
    assert_consistent(project, killed=name == "SIGKILL")
    assert_known(project)
    return stopped


def assert_no_command_left(stack: str, timeout: float = 60) -> None:
    """No docker or compose command on the stack outlives the hatchet-local that ran it
    (its children get SIGTERM when it dies, and need a moment to end)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [line for line in _command_lines() if f"--project-name {stack} " in line]
        if not left:
            return
        assert time.monotonic() < deadline, f"commands left running: {left}"
        time.sleep(0.2)


def _command_lines() -> list[str]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                raw = (entry / "cmdline").read_bytes()
                if raw and not (entry / "stat").read_text().rsplit(")", 1)[1].startswith(" Z"):
                    lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return lines


def assert_known(project: Project) -> None:
    """No Docker object of this state directory is orphaned (one whose stack the tool no
    longer knows), and `ls` lists the stack once anything of it exists."""
    rows = json.loads(project.hl("ls", "--output", "json").stdout)
    states = {row["name"]: row["state"] for row in rows}
    assert "orphaned" not in states.values(), rows
    stack = stack_of(project)
    made = (project.state / "stacks" / stack / "stack.json").exists() or any(
        labelled(f"io.hatchet-local.stack={stack}").values()
    )
    assert (stack in states) == made, rows
