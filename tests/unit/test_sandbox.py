"""Locks, the port registry, versions, and the many-stacks commands, over fakes."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from hatchet_local import inventory
from hatchet_local.config import load_config
from hatchet_local.config_values import duration
from hatchet_local.console import Console
from hatchet_local.context import Context
from hatchet_local.docker_cli import CliEngine
from hatchet_local.errors import ConfigError, PortInUse, StackBusy, VersionConflict
from hatchet_local.locks import file_lock
from hatchet_local.ports import port_holder, resolve_ports
from hatchet_local.stack import check_version
from hatchet_local.state import StackDir, StackRecord
from tests.unit.fakes import FakeClock, FakeRunner, answering, container_listing, docker_rows

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def record(name: str, directory: Path, ports: dict[str, int], *, age: timedelta = timedelta(),
           version: str = "v0.101.27") -> StackRecord:  # fmt: skip
    return StackRecord(name=name, directory=str(directory), created=(NOW - age).isoformat(),
                       tool_version="0.1.0", hatchet_version=version, message_queue="rabbitmq",
                       ports=ports)  # fmt: skip


# --- locks -----------------------------------------------------------------------------------


def test_a_held_lock_makes_the_second_command_wait_then_name_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "demo.lock"
    said: list[str] = []
    clock = FakeClock()
    waiting = file_lock(path, "stack demo", wait=5, notify=said.append, clock=clock,
                        sleep=clock.sleep)  # fmt: skip
    with (
        file_lock(path, "stack demo", wait=1, notify=said.append),
        pytest.raises(StackBusy) as info,
        waiting,
    ):
        pass
    assert said == [f"waiting for another hatchet-local command (pid {os.getpid()}) on stack demo"]
    assert info.value.exit_code == 11
    assert info.value.message.startswith(
        f"another hatchet-local command (pid {os.getpid()}) is still working on stack demo after 5s"
    )
    assert clock.now >= 5


def test_a_released_lock_is_taken_at_once(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "demo.lock"
    said: list[str] = []
    with file_lock(path, "stack demo", wait=1, notify=said.append):
        pass
    with file_lock(path, "stack demo", wait=1, notify=said.append):
        pass
    assert said == []
    assert oct(path.stat().st_mode & 0o777) == "0o600"


# --- ports and versions ----------------------------------------------------------------------


def test_a_configured_port_of_another_stack_is_refused_naming_it(tmp_path: Path) -> None:
    StackDir(tmp_path, "other").save(record("other", tmp_path / "b", {"dashboard": 41000,
                                                                       "grpc": 41001}))  # fmt: skip
    config = load_config(tmp_path, environ={"HATCHET_LOCAL_PORTS_GRPC": "41000"})
    mine = record(config.stack, tmp_path, {})
    with pytest.raises(PortInUse) as info:
        resolve_ports(config, mine, tmp_path)
    assert info.value.message == (
        "--grpc-port 41000: port 41000 belongs to hatchet-local stack other "
        f"(from {tmp_path / 'b'}); free it with `hatchet-local destroy --stack other` "
        "or choose another port"
    )


def test_new_stacks_never_pick_a_port_another_stack_recorded(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        recorded = int(sock.getsockname()[1])
    StackDir(tmp_path, "other").save(record("other", tmp_path, {"dashboard": recorded}))
    config = load_config(tmp_path, environ={})
    ports = resolve_ports(config, record(config.stack, tmp_path, {}), tmp_path)
    assert recorded not in ports.values()
    assert ports["dashboard"] != ports["grpc"]


def test_a_stack_keeps_its_ports(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    kept = {"dashboard": 42000, "grpc": 42001}
    assert resolve_ports(config, record(config.stack, tmp_path, kept), tmp_path) == kept


def test_a_container_holding_a_port_is_named() -> None:
    runner = FakeRunner()
    runner.on("docker", "ps", "--format", stdout=container_listing(
        ("web", "0.0.0.0:8080->80/tcp, :::8080->80/tcp"), ("db", "127.0.0.1:5432->5432/tcp")
    ))  # fmt: skip
    holder = port_holder(5432, runner)
    assert holder == "container db publishes it; stop it with `docker stop db`"


def test_a_container_publishing_a_port_range_is_named() -> None:
    runner = FakeRunner()
    runner.on("docker", "ps", "--format", stdout=container_listing(
        ("range", "0.0.0.0:8000-8010->8000-8010/tcp")
    ))  # fmt: skip
    runner.on("lsof", returncode=1)
    assert port_holder(8005, runner) == (
        "container range publishes it; stop it with `docker stop range`"
    )
    assert not port_holder(8011, runner).startswith("container")


def test_objects_are_found_by_the_label_itself_not_a_comma_joined_list(
    tmp_path: Path,
) -> None:
    """A directory label holding `,io.hatchet-local.stack=X` must not make X the stack: each
    label is asked for by its key."""
    runner = FakeRunner()
    for listing in (("docker", "volume", "ls"), ("docker", "network", "ls")):
        runner.on(*listing)
    runner.on("docker", "ps", "--all", stdout=docker_rows(("real-1", "real", "running")))
    objects = CliEngine(runner).stack_objects(tmp_path)
    assert [(o.name, o.stack) for o in objects] == [("real-1", "real")]
    ps = runner.called("docker", "ps", "--all")[0]
    assert '(.Label "io.hatchet-local.stack")' in ps.option("--format")
    assert ".Labels" not in ps.option("--format")


@pytest.mark.parametrize(
    ("data", "wanted"),
    [("v0.101.27", "v0.101.27"), ("v0.99.3", "v0.101.27"), ("latest", "v0.90.0"),
     ("v0.102.0-rc1", "v0.102.0"), ("v0.102.0-rc.2", "v0.102.0-rc.10"),
     ("v0.102.0-alpha", "v0.102.0-beta")],
)  # fmt: skip
def test_same_or_newer_hatchet_versions_are_allowed(data: str, wanted: str, tmp_path: Path) -> None:
    check_version(record("demo", tmp_path, {}, version=data), wanted)


@pytest.mark.parametrize(
    ("data", "wanted"),
    [
        ("v0.101.27", "v0.100.0-rc1"),
        ("v0.101.27", "v0.101.27-rc1"),
        ("v0.102.0-rc.10", "v0.102.0-rc.2"),
    ],
)
def test_an_older_pre_release_is_refused(data: str, wanted: str, tmp_path: Path) -> None:
    with pytest.raises(VersionConflict):
        check_version(record("demo", tmp_path, {}, version=data), wanted)


def test_an_older_hatchet_version_than_the_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VersionConflict) as info:
        check_version(record("demo", tmp_path, {}, version="v0.101.27"), "v0.100.0")
    assert info.value.exit_code == 12
    assert info.value.message == (
        "stack demo holds data of Hatchet v0.101.27, which v0.100.0 cannot read: keep "
        "hatchet_version: v0.101.27, or start afresh with `hatchet-local reset` (deletes the "
        "stack's data)"
    )


# --- ls, prune ------------------------------------------------------------------------------


def context(tmp_path: Path, runner: FakeRunner) -> Context:
    return Context(runner=runner, console=Console(quiet=True),
                   http=answering(lambda _: httpx.Response(500)),
                   state_root=tmp_path / "state")  # fmt: skip


@pytest.fixture
def host(tmp_path: Path) -> tuple[Context, FakeRunner]:
    runner = FakeRunner()
    runner.on("docker", "volume", "ls")
    runner.on("docker", "network", "ls")
    runner.on("docker", "ps", "--all", stdout=docker_rows(
        ("up-1", "up", "running"), ("up-2", "up", "running"),
        ("half-1", "half", "running"), ("half-2", "half", "exited"),
        ("lost-1", "lost", "exited"),
    ))  # fmt: skip
    ctx = context(tmp_path, runner)
    home = tmp_path / "home"
    home.mkdir()
    for name, age in (("up", 1), ("half", 2), ("old", 30)):
        StackDir(ctx.state_root, name).save(
            record(name, home, {"dashboard": 1}, age=timedelta(days=age))
        )
    StackDir(ctx.state_root, "moved").save(record("moved", tmp_path / "gone", {}))
    return ctx, runner


def test_ls_shows_every_stack_with_its_state_and_the_orphans(
    host: tuple[Context, FakeRunner],
) -> None:
    ctx, _ = host
    rows = {row.name: row for row in inventory.list_stacks(ctx, now=NOW)}
    assert {name: row.state for name, row in rows.items()} == {
        "up": "running", "half": "partial", "old": "stopped", "moved": "stopped",
        "lost": "orphaned",
    }  # fmt: skip
    assert rows["old"].age_seconds == 30 * 86400
    assert rows["moved"].directory_exists is False
    assert rows["up"].directory_exists is True


def test_prune_takes_gone_directories_orphans_and_old_stopped_stacks(
    host: tuple[Context, FakeRunner],
) -> None:
    ctx, _ = host
    assert {r.name for r in inventory.prune_candidates(ctx, None, NOW)} == {"moved", "lost"}
    week = 7 * 86400
    assert {r.name for r in inventory.prune_candidates(ctx, week, NOW)} == {"moved", "lost", "old"}


def test_destroy_removes_the_objects_and_the_state(host: tuple[Context, FakeRunner]) -> None:
    ctx, runner = host
    runner.on(
        "docker",
        "ps",
        "--all",
        "--filter",
        "label=io.hatchet-local.stack=half",
        stdout=docker_rows(("half-1", "half", "running"), ("half-2", "half", "exited")),
    )
    runner.on("docker", "rm")
    removed = inventory.destroy(ctx, "half")
    assert [o.name for o in removed] == ["half-1", "half-2"]
    assert runner.called("docker", "rm", "--force", "--volumes", "half-1", "half-2")
    assert not StackDir(ctx.state_root, "half").path.exists()


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text, "--older-than") == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "0d", "-1h", "1.5h", "2w", "3651d", "٣d"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        duration(text, "--older-than")
    assert info.value.message == (
        f"--older-than: expected a duration like 90s, 30m, 12h or 7d (up to 3650d), got {text!r}"
    )
