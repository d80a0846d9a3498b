"""The fixes the fault matrix (tests/e2e/test_faults.py) asked for, pinned down without Docker:
Ctrl-C and a full disk during a write, Docker lost mid-command, a stack partly running."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from hatchet_local import status as stacks
from hatchet_local.compose import Compose
from hatchet_local.docker_cli import CliEngine
from hatchet_local.errors import DockerUnavailable, HatchetLocalError, Interrupted
from hatchet_local.fsutil import atomic_write
from hatchet_local.locks import file_lock
from hatchet_local.redact import Redactor
from tests.unit.fakes import FakeRunner, Row
from tests.unit.harness import World

FILE = Path("/state/stacks/unit/compose.yaml")
ENV_FILE = Path("/state/stacks/unit/secrets.env")


def make_compose(runner: FakeRunner) -> Compose:
    return Compose(
        runner, base=["docker", "compose"], project="unit", file=FILE, env_file=ENV_FILE,
        redact=Redactor(),
    )  # fmt: skip


# --- writes ---------------------------------------------------------------------------------


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted("interrupted; run the same command again to finish")


def test_ctrl_c_during_a_write_lands_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal waits until the file is complete and in place: no temp file, no half file."""
    target = tmp_path / "token.json"
    target.write_text("old\n")
    real_fsync = os.fsync

    def fsync_then_ctrl_c(fd: int) -> None:
        real_fsync(fd)
        signal.raise_signal(signal.SIGINT)  # as if Ctrl-C came in the middle of the write

    previous = signal.signal(signal.SIGINT, _raise_interrupted)
    try:
        monkeypatch.setattr(os, "fsync", fsync_then_ctrl_c)
        with pytest.raises(Interrupted):
            atomic_write(target, "new\n")
        assert signal.getsignal(signal.SIGINT) is _raise_interrupted  # handler put back
    finally:
        signal.signal(signal.SIGINT, previous)
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token.json"]


def test_a_full_disk_leaves_the_file_as_it_was_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "stack.json"
    target.write_text('{"old": true}\n')

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(HatchetLocalError) as info:
        atomic_write(target, '{"new": true}\n')
    assert info.value.message == (
        f"{target}: cannot write: no space left on its file system ({tmp_path}); free some "
        f"space and run the same command again (the file was left as it was)"
    )
    assert target.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.json"]


def test_a_lock_is_held_even_when_its_pid_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    entered = False
    with file_lock(tmp_path / "unit.lock", "stack unit", wait=0, notify=print):
        entered = True
    assert entered


# --- Docker lost mid-command ----------------------------------------------------------------


def test_a_job_cut_off_from_docker_is_docker_unavailable_not_a_failed_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/proxy.sock")
    runner = FakeRunner()
    refused = "Cannot connect to the Docker daemon at unix:///tmp/proxy.sock. Is it running?\n"
    runner.on("docker", "exec", returncode=1, stderr=refused)
    with pytest.raises(DockerUnavailable) as info:
        make_compose(runner).exec("hatchet-lite", "/hatchet-migrate", timeout=60)
    assert info.value.exit_code == 3
    assert info.value.message == (
        "no Docker engine answers (unix:///tmp/proxy.sock) during `docker exec` for "
        "stack unit: check that it runs (`docker info`), then run the same command again"
    )


def test_a_cut_connection_is_settled_by_asking_the_engine() -> None:
    """ "unexpected EOF" may be the job's own words: only an engine that no longer answers
    makes it Docker's fault."""
    runner = FakeRunner()
    job = ("/hatchet-migrate",)
    runner.on("docker", "exec", returncode=1, stderr="error: unexpected EOF\n")
    runner.on("docker", "version", returncode=0, stdout="20.10.24\n")
    result = make_compose(runner).exec("hatchet-lite", *job, timeout=60)
    assert result.returncode == 1  # the engine answers: the job failed by itself

    runner.on("docker", "version", returncode=1, stderr="Cannot connect to the Docker daemon\n")
    with pytest.raises(DockerUnavailable):
        make_compose(runner).exec("hatchet-lite", *job, timeout=60)


def test_an_image_is_not_called_missing_when_docker_does_not_answer() -> None:
    runner = FakeRunner()
    runner.on("image", "inspect", returncode=1, stderr="error during connect: EOF\n")
    with pytest.raises(DockerUnavailable):
        CliEngine(runner).image_present("postgres:15")
    runner.on("image", "inspect", returncode=1, stderr="Error: No such image: postgres:15\n")
    assert CliEngine(runner).image_present("postgres:15") is False


# A job container that a run cut off from Docker left, as `docker ps --format` lists it.
LEFTOVER = (
    '{"id": "abc123", "name": "unit-migrate-run-1", "service": "migrate", "state": "exited", '
    '"status": "Exited (0) 1 second ago", "ports": ""}\n'
)


def test_leftover_job_containers_are_removed_before_the_job_runs() -> None:
    runner = FakeRunner()
    runner.on("docker", "ps", "--all", stdout=LEFTOVER)
    runner.on("docker", "rm", "--force")
    assert make_compose(runner).remove_leftover_runs("migrate") == 1
    ps, rm = runner.calls
    assert "--filter=label=com.docker.compose.oneoff=True" in ps.argv
    assert "--filter=label=com.docker.compose.project=unit" in ps.argv
    assert "--filter=label=com.docker.compose.service=migrate" in ps.argv
    assert rm.argv == ("docker", "rm", "--force", "abc123")


# --- a stack partly running -----------------------------------------------------------------


def test_status_names_the_services_down_under_a_running_stack(world: World) -> None:
    world.up()
    world.hatchet.services["postgres"] = [Row(state="exited", health="", exit_code=0)]
    info = stacks.status(world.config(), world.ctx, reveal=False)
    assert info.state == "partial"
    assert info.problems == ["postgres is exited"]

    world.hatchet.services["postgres"] = [Row()]
    world.hatchet.services["hatchet-lite"] = [Row(health="unhealthy")]
    info = stacks.status(world.config(), world.ctx, reveal=False)
    assert (info.state, info.problems) == ("partial", ["hatchet-lite is unhealthy"])

    for service in world.hatchet.services:
        world.hatchet.services[service] = [Row(state="exited", health="")]
    info = stacks.status(world.config(), world.ctx, reveal=False)
    assert (info.state, info.problems) == ("stopped", [])


def test_up_on_a_running_stack_removes_a_job_container_a_cut_off_run_left(
    world: World,
) -> None:
    world.up()
    world.next_process()
    world.hatchet.services["migrate"] = [Row(state="exited", health="")]
    world.runner.on("docker", "ps", "--all", "--filter=label=com.docker.compose.project=unit",
                    "--filter=label=com.docker.compose.oneoff=True", stdout=LEFTOVER)  # fmt: skip
    world.runner.on("docker", "rm", "--force")
    world.up()
    assert "is running; checking it" in world.console()
    assert "removed 1 migrate container(s) an earlier run left" in world.console()
    assert world.runner.called("docker", "rm", "--force", "abc123")
    assert not world.runner.called("run", "--rm")  # the jobs are not run again
