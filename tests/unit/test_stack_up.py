"""`startup.up` end to end over a fake Docker, a fake Hatchet API and a fake clock."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hatchet_local import startup
from hatchet_local.config import Config, load_config
from hatchet_local.console import Console
from hatchet_local.context import Context
from hatchet_local.defaults import DEFAULT_IMAGES, DEFAULT_TENANT_ID
from hatchet_local.docker import LISTING_FORMAT
from hatchet_local.errors import (
    BootstrapFailed,
    CommandFailed,
    DockerUnavailable,
    HatchetLocalError,
    HealthTimeout,
    ImageMissing,
    Interrupted,
    PortInUse,
    ServiceUnhealthy,
    SetupFailed,
)
from hatchet_local.health import READY, Check
from hatchet_local.redact import MASK, Redactor
from hatchet_local.runner import Result
from hatchet_local.startup import UpResult
from hatchet_local.state import SECRET_NAMES, StackDir, Token
from tests.unit.fakes import (
    TOKEN_CREATE,
    Call,
    FakeClock,
    FakeHatchet,
    FakeRunner,
    Row,
    argv_text,
    parse_env_file,
    reply,
)

LITE_IMAGE = DEFAULT_IMAGES["hatchet-lite"]
INSPECT = "docker inspect --type container --format {{json .State}}"
TOKEN_1 = "eyJhbGciOiJFUzI1NiJ9.token-1.signature"
TOKEN_2 = "eyJhbGciOiJFUzI1NiJ9.token-2.signature"


@dataclass
class World:
    """One project, a fake Docker + Hatchet behind a Context, and what they observed."""

    project: Path
    runner: FakeRunner
    hatchet: FakeHatchet
    clock: FakeClock
    ctx: Context
    grpc_probes: list[tuple[str, int]]

    @property
    def env_file(self) -> Path:
        return self.project / ".env.hatchet"

    @property
    def stack_dir(self) -> StackDir:
        return StackDir(self.ctx.state_root, "unit")

    def config(self, **environ: str) -> Config:
        return load_config(self.project, environ={"HATCHET_LOCAL_STACK": "unit", **environ})

    def up(self, **environ: str) -> UpResult:
        return startup.up(self.config(**environ), self.ctx)

    def up_error(self, **environ: str) -> HatchetLocalError:
        with pytest.raises(HatchetLocalError) as info:
            self.up(**environ)
        return info.value

    def next_process(self) -> None:
        """Forget what was seen so far; the next `up` runs as a new process would."""
        self.ctx = dataclasses.replace(self.ctx, console=Console(io.StringIO()), redact=Redactor())
        self.runner.calls.clear()
        self.hatchet.requests.clear()

    def ports(self) -> dict[str, int]:
        record = self.stack_dir.load()
        assert record is not None
        return record.ports

    def console(self) -> str:
        stream = self.ctx.console.stream
        assert isinstance(stream, io.StringIO)
        return stream.getvalue()

    def compose_file(self) -> str:
        return self.stack_dir.compose_file.read_text()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    # The gRPC TCP probe answers ready without a socket and records what it was asked.
    probes: list[tuple[str, int]] = []

    def fake_tcp_check(host: str, port: int) -> Callable[[], Check]:
        def check() -> Check:
            probes.append((host, port))
            return READY

        return check

    project = tmp_path / "project"
    project.mkdir()
    runner = FakeRunner()
    hatchet = FakeHatchet(runner)
    clock = FakeClock()
    with httpx.Client(transport=hatchet.transport) as http:
        ctx = Context(
            runner=runner,
            console=Console(io.StringIO()),
            http=http,
            state_root=tmp_path / "state",
            clock=clock,
            sleep=clock.sleep,
            tcp_check=fake_tcp_check,
            interval=1.0,
        )
        yield World(project, runner, hatchet, clock, ctx, probes)


def actions(calls: list[Call]) -> list[str]:
    """Each command as a line; compose commands without their (always same) global options."""
    lines = []
    for call in calls:
        argv = call.argv
        if "--env-file" in argv:
            assert argv[:3] == ("docker", "compose", "--project-name")
            assert call.option("--project-name") == "unit"
            lines.append("compose " + " ".join(argv[argv.index("--env-file") + 2 :]))
        else:
            lines.append(" ".join(argv))
    return lines


TOKEN_CREATE_LINE = (
    f"compose exec -T hatchet-lite /hatchet-admin token create --config /config "
    f"--tenant-id {DEFAULT_TENANT_ID} --name hatchet-local --expiresIn 87600h"
)


# --- the happy path -------------------------------------------------------------------------


def test_up_starts_waits_mints_and_writes_the_settings(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SECRET_NAMES:
        monkeypatch.setenv(name, "a-stray-shell-value")
    result = world.up()

    ports = world.ports()
    server_url = f"http://localhost:{ports['dashboard']}"
    grpc_address = f"localhost:{ports['grpc']}"
    settings = {
        "HATCHET_CLIENT_TOKEN": TOKEN_1,
        "HATCHET_CLIENT_TLS_STRATEGY": "none",
        "HATCHET_CLIENT_HOST_PORT": grpc_address,
        "HATCHET_CLIENT_SERVER_URL": server_url,
        "HATCHET_CLIENT_TENANT_ID": DEFAULT_TENANT_ID,
    }
    assert result == UpResult(
        stack="unit",
        server_url=server_url,
        grpc_address=grpc_address,
        env_file=world.env_file,
        tenant_id=DEFAULT_TENANT_ID,
        token_reused=False,
        settings=settings,
        directories=(str(world.project.resolve()),),
    )
    assert world.env_file.read_text() == "".join(f"{k}={v}\n" for k, v in settings.items())
    assert stat.S_IMODE(world.env_file.stat().st_mode) == 0o600

    def leftovers(job: str) -> str:
        return (
            "--filter=label=com.docker.compose.project=unit "
            "--filter=label=com.docker.compose.oneoff=True "
            f"--filter=label=com.docker.compose.service={job}"
        )

    reap = (
        "--filter label=io.hatchet-local.stack "
        f"--filter label=io.hatchet-local.state={world.ctx.state_root} --format"
    )
    assert actions(world.runner.calls) == [
        "docker version --format {{.Server.Version}}",
        "docker compose version --short",
        "docker compose --no-such-flag",
        f"docker ps --all {reap} {LISTING_FORMAT['container']}",
        f"docker volume ls {reap} {LISTING_FORMAT['volume']}",
        f"docker network ls {reap} {LISTING_FORMAT['network']}",
        "compose ps --all --format json",
        "docker info --format {{.MemTotal}} {{.SystemTime}}",  # preflight, before a start
        "docker ps --format {{.Names}}\t{{.Ports}}",  # ports published, before a start
        "docker image inspect --format {{.Id}} postgres:15.6",
        "docker image inspect --format {{.Id}} rabbitmq:3-management",
        f"docker image inspect --format {{{{.Id}}}} {LITE_IMAGE}",
        "compose up --detach --remove-orphans postgres rabbitmq",
        f"{INSPECT} unit-postgres-1",  # healthy
        f"docker ps --all --quiet {leftovers('migrate')}",
        "compose run --rm --no-deps -T migrate",  # while RabbitMQ starts
        f"docker ps --all --quiet {leftovers('setup')}",
        "compose run --rm --no-deps -T setup",  # still while RabbitMQ starts
        f"{INSPECT} unit-rabbitmq-1",  # healthy
        "compose up --detach --remove-orphans --no-deps hatchet-lite",
        f"{INSPECT} unit-hatchet-lite-1",
        TOKEN_CREATE_LINE,
        f"git -C {world.project} check-ignore -q .env.hatchet",
    ]
    assert world.grpc_probes == [("127.0.0.1", ports["grpc"])]
    requests = world.hatchet.requests
    assert [(r.url.path, r.headers.get("Authorization")) for r in requests] == [
        ("/api/ready", None),
        (f"/api/v1/tenants/{DEFAULT_TENANT_ID}", f"Bearer {TOKEN_1}"),
    ]
    assert str(requests[0].url) == f"{server_url}/api/ready"

    # Secrets travel in files: not in argv, and not through the environment of compose.
    seen = argv_text(world.runner.calls)
    for value in [TOKEN_1, *world.stack_dir.secrets().values()]:
        assert value not in seen
    for call in world.runner.calls:
        if "--env-file" in call.argv:
            assert call.env is not None
            assert not set(SECRET_NAMES) & set(call.env)

    token = json.loads((world.stack_dir.path / "token.json").read_text())
    assert token == {"token": TOKEN_1, "tenant_id": DEFAULT_TENANT_ID, "server_url": server_url}
    assert "ok token" in world.console()


def test_up_with_the_postgres_queue_and_a_namespace(world: World) -> None:
    result = world.up(HATCHET_LOCAL_MESSAGE_QUEUE="postgres", HATCHET_LOCAL_NAMESPACE="dev-alice")
    assert list(parse_env_file(world.env_file)) == [
        "HATCHET_CLIENT_TOKEN",
        "HATCHET_CLIENT_TLS_STRATEGY",
        "HATCHET_CLIENT_HOST_PORT",
        "HATCHET_CLIENT_SERVER_URL",
        "HATCHET_CLIENT_TENANT_ID",
        "HATCHET_CLIENT_NAMESPACE",
    ]
    assert result.settings["HATCHET_CLIENT_NAMESPACE"] == "dev-alice"
    assert not [line for line in actions(world.runner.calls) if "rabbitmq" in line]
    assert "SERVER_MSGQUEUE_KIND: postgres" in world.compose_file()


def test_up_keeps_the_users_lines_in_the_env_file(world: World) -> None:
    world.env_file.write_text("# mine\nexport OTHER=1\nHATCHET_CLIENT_TOKEN=stale\n")
    world.up()
    lines = world.env_file.read_text().splitlines()
    assert lines[:3] == ["# mine", "export OTHER=1", f"HATCHET_CLIENT_TOKEN={TOKEN_1}"]
    assert len(lines) == 7


def test_a_missing_image_is_pulled_before_anything_starts(world: World) -> None:
    world.hatchet.missing_images = {LITE_IMAGE}
    world.up()
    lines = actions(world.runner.calls)
    assert lines.index("compose pull --quiet") < lines.index(
        "compose up --detach --remove-orphans postgres rabbitmq"
    )
    assert world.runner.called("pull")[0].timeout == 1800
    assert f"pulling {LITE_IMAGE}" in world.console()


def test_warns_when_git_does_not_ignore_the_env_file(world: World) -> None:
    world.hatchet.git_ignored = False
    world.up()
    warning = f"warning: {world.env_file} holds a token and git does not ignore it"
    assert warning in world.console()


def test_no_git_no_warning(world: World) -> None:
    world.runner.on("git", raises=CommandFailed("git: command not found; is it installed?"))
    world.up()
    assert "warning" not in world.console()
    assert world.env_file.is_file()


# --- a second up ----------------------------------------------------------------------------


def test_second_up_on_a_healthy_stack_reuses_the_token(world: World) -> None:
    first = world.up()
    written = world.env_file.read_text()
    world.next_process()

    second = world.up()

    assert second == dataclasses.replace(first, token_reused=True)
    assert world.env_file.read_text() == written
    lines = actions(world.runner.calls)
    assert TOKEN_CREATE_LINE not in lines
    assert not [line for line in lines if line.startswith(("compose up", "compose run"))]
    assert not [line for line in lines if line.startswith("docker info")]  # no preflight
    assert lines.count("compose ps --all --format json") == 1
    assert [(r.url.path, r.headers.get("Authorization")) for r in world.hatchet.requests] == [
        ("/api/ready", None),
        (f"/api/v1/tenants/{DEFAULT_TENANT_ID}", f"Bearer {TOKEN_1}"),
    ]
    assert "stored token still accepted" in world.console()


def test_a_stored_token_the_api_rejects_is_replaced(world: World) -> None:
    world.up()
    world.hatchet.accepted.clear()  # e.g. the tenant's tokens were revoked
    world.next_process()

    result = world.up()

    assert result.token_reused is False
    assert result.settings["HATCHET_CLIENT_TOKEN"] == TOKEN_2
    assert parse_env_file(world.env_file)["HATCHET_CLIENT_TOKEN"] == TOKEN_2
    assert world.stack_dir.load_token() == Token(
        token=TOKEN_2, tenant_id=DEFAULT_TENANT_ID, server_url=result.server_url
    )
    tenants = world.hatchet.api_calls("/api/v1/tenants/")
    assert [r.headers["Authorization"] for r in tenants] == [
        f"Bearer {TOKEN_1}",
        f"Bearer {TOKEN_2}",
    ]
    assert actions(world.runner.calls).count(TOKEN_CREATE_LINE) == 1


def test_ports_are_kept_across_ups(world: World) -> None:
    first = world.up()
    ports = world.ports()
    world.next_process()
    second = world.up()
    assert world.ports() == ports
    assert second.server_url == first.server_url


@pytest.mark.parametrize(
    ("change", "services"),
    [
        ({"HATCHET_LOCAL_MESSAGE_QUEUE": "postgres"}, "postgres"),
        ({"HATCHET_LOCAL_HATCHET_VERSION": "v0.102.0"}, "postgres rabbitmq"),
        ({"HATCHET_LOCAL_DASHBOARD": "false"}, "postgres rabbitmq"),
    ],
)
def test_up_applies_a_changed_configuration_to_a_running_stack(
    world: World, change: dict[str, str], services: str
) -> None:
    world.up()
    before = world.compose_file()
    world.next_process()
    result = world.up(**change)
    assert world.compose_file() != before
    lines = actions(world.runner.calls)
    # The running stack is brought up again from the new file (orphans removed), the jobs
    # run again for a new version, and the token, still accepted, is kept.
    assert f"compose up --detach --remove-orphans {services}" in lines
    assert "compose run --rm --no-deps -T migrate" in lines
    assert "compose up --detach --remove-orphans --no-deps hatchet-lite" in lines
    assert result.token_reused is True


def test_a_change_is_applied_after_an_interrupted_up(world: World) -> None:
    world.up()
    world.next_process()
    world.runner.on("up", "--detach", raises=Interrupted("interrupted; run the same command"))
    with pytest.raises(Interrupted):
        world.up(HATCHET_LOCAL_MESSAGE_QUEUE="postgres")
    world.runner.rules.pop()  # Ctrl-C was pressed once; the user runs `up` again
    world.next_process()
    world.up(HATCHET_LOCAL_MESSAGE_QUEUE="postgres")
    assert "compose up --detach --remove-orphans postgres" in actions(world.runner.calls)


# --- failures -------------------------------------------------------------------------------


def test_docker_engine_unavailable(world: World) -> None:
    daemon = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n"
    world.runner.on("docker", "version", "--format", returncode=1, stdout="\n", stderr=daemon)
    error = world.up_error()
    assert type(error) is DockerUnavailable
    assert error.exit_code == 3
    assert error.message.startswith("no Docker engine answers (default): start Docker")
    assert error.details == daemon.strip()
    assert len(world.runner.calls) == 1
    assert not (world.ctx.state_root / "stacks").exists()
    assert "!! docker engine" in world.console()


def test_docker_cli_missing(world: World) -> None:
    missing = CommandFailed("docker: command not found; is it installed?")
    world.runner.on("docker", "version", "--format", raises=missing)
    error = world.up_error()
    assert type(error) is DockerUnavailable
    assert error.message.startswith("the docker CLI is missing: install Docker")


def test_compose_v2_missing(world: World) -> None:
    world.runner.on("version", "--short", returncode=1, stderr="'compose' is not a command.\n")
    world.runner.on("docker-compose", raises=CommandFailed("docker-compose: command not found"))
    error = world.up_error()
    assert type(error) is DockerUnavailable
    assert error.exit_code == 3
    assert "Docker Compose v2 not found" in error.message
    assert not world.runner.called("up")


def test_image_missing_with_pull_policy_never(world: World) -> None:
    world.hatchet.missing_images = {LITE_IMAGE}
    error = world.up_error(HATCHET_LOCAL_PULL_POLICY="never")
    assert type(error) is ImageMissing
    assert error.exit_code == 5
    assert error.message == (
        f"image {LITE_IMAGE} is not on this machine and pull_policy is never; "
        "load it (`docker load`) or set pull_policy: missing"
    )
    assert not world.runner.called("up")
    assert not world.runner.called("pull")


def test_postgres_exits(world: World) -> None:
    world.hatchet.starts["postgres"] = Row("exited", "", 1)
    world.hatchet.logs["postgres"] = "postgres-1  | FATAL:  could not write lock file\n"
    error = world.up_error()
    assert type(error) is ServiceUnhealthy
    assert error.exit_code == 6
    assert error.message == "postgres failed after 0s: container exited with code 1"
    assert error.details == (
        "last log lines of postgres:\npostgres-1  | FATAL:  could not write lock file"
    )
    assert world.runner.called("logs", "--no-color", "--tail", "30", "postgres")
    assert not world.runner.called("run", "--rm")
    assert "!! postgres healthy" in world.console()


def test_rabbitmq_turns_unhealthy_after_starting(world: World) -> None:
    # Every inspect of rabbitmq's container moves it on by one row.
    starting, unhealthy = Row("running", "starting"), Row("running", "unhealthy")
    world.hatchet.starts["rabbitmq"] = [starting] * 3 + [unhealthy]
    world.hatchet.logs["rabbitmq"] = "rabbitmq-1  | boot failed\n"
    error = world.up_error()
    assert type(error) is ServiceUnhealthy
    assert error.message == "rabbitmq failed after 3s: healthcheck reports unhealthy"
    assert error.details == "last log lines of rabbitmq:\nrabbitmq-1  | boot failed"
    assert world.clock.sleeps == [1, 1, 1]


def test_migrate_job_fails(world: World) -> None:
    def migrate(call: Call) -> Result:
        password = world.hatchet.secrets(call)["HATCHET_POSTGRES_PASSWORD"]
        output = f"connecting to postgresql://hatchet:{password}@postgres:5432\n"
        return reply(call, 1, stdout=output, stderr="error: relation already exists\n")

    world.runner.on_call("run", "--rm", "--no-deps", "-T", "migrate", handler=migrate)
    error = world.up_error()
    assert type(error) is SetupFailed
    assert error.exit_code == 7
    assert error.message == "the migrate job exited with code 1"
    assert error.details == (
        f"connecting to postgresql://hatchet:{MASK}@postgres:5432\nerror: relation already exists"
    )
    assert not world.runner.called("run", "--rm", "--no-deps", "-T", "setup")
    assert not world.runner.called("hatchet-lite")
    assert "!! migrate job" in world.console()


def test_setup_job_fails(world: World) -> None:
    world.hatchet.jobs["setup"] = (2, "could not seed the tenant\n")
    error = world.up_error()
    assert type(error) is SetupFailed
    assert error.exit_code == 7
    assert error.message == "the setup job exited with code 2"
    assert error.details == "could not seed the tenant"
    assert not world.runner.called("--no-deps", "hatchet-lite")


def test_engine_health_timeout(world: World) -> None:
    world.hatchet.starts["hatchet-lite"] = Row("running", "starting")
    world.hatchet.logs["hatchet-lite"] = "".join(f"engine line {n}\n" for n in range(1, 41))
    started = world.clock.now
    error = world.up_error(HATCHET_LOCAL_TIMEOUTS_ENGINE="45")
    assert type(error) is HealthTimeout
    assert error.exit_code == 6
    assert error.message == "engine not ready after 45s (timeout 45s); last status: health starting"
    lines = error.details.splitlines()
    assert lines[0] == "last log lines of hatchet-lite:"
    assert lines[1:] == [f"engine line {n}" for n in range(11, 41)]
    assert world.clock.now - started == 45
    assert not world.runner.called(*TOKEN_CREATE)
    assert not world.env_file.exists()


def test_engine_exits(world: World) -> None:
    world.hatchet.starts["hatchet-lite"] = [Row("running", "starting"), Row("exited", "", 2)]
    world.hatchet.logs["hatchet-lite"] = "panic: config missing\n"
    error = world.up_error()
    assert type(error) is ServiceUnhealthy
    assert error.message == "engine failed after 1s: container exited with code 2"
    assert error.details == "last log lines of hatchet-lite:\npanic: config missing"


def test_api_never_ready(world: World) -> None:
    world.hatchet.ready = 503
    world.hatchet.logs["hatchet-lite"] = "api | waiting for the database\n"
    error = world.up_error()
    dashboard = world.ports()["dashboard"]
    assert type(error) is HealthTimeout
    assert error.exit_code == 6
    assert error.message == (
        f"API not ready after 120s (timeout 120s); "
        f"last status: GET http://localhost:{dashboard}/api/ready: HTTP 503"
    )
    assert error.details == "last log lines of hatchet-lite:\napi | waiting for the database"
    assert len(world.hatchet.api_calls("/api/ready")) == 121
    assert not world.runner.called(*TOKEN_CREATE)
    assert "!! API ready" in world.console()


def test_api_ready_after_a_while(world: World) -> None:
    world.hatchet.ready = [502, 503, 503, 200]
    assert world.up().token_reused is False
    assert len(world.hatchet.api_calls("/api/ready")) == 4


def test_token_mint_fails(world: World) -> None:
    def fail(call: Call) -> Result:
        password = world.hatchet.secrets(call)["HATCHET_ADMIN_PASSWORD"]
        return reply(call, 1, stderr=f"error: admin {password} cannot create tokens\n")

    world.runner.on_call(*TOKEN_CREATE, handler=fail)
    error = world.up_error()
    assert type(error) is BootstrapFailed
    assert error.exit_code == 8
    assert error.message == (
        "minting a token in hatchet-lite failed (exit 1); see `hatchet-local logs hatchet-lite`"
    )
    assert error.details == f"error: admin {MASK} cannot create tokens"
    assert not world.env_file.exists()
    assert "!! token" in world.console()


def test_a_minted_token_the_api_rejects(world: World) -> None:
    world.runner.on(*TOKEN_CREATE, stdout=f"{TOKEN_1}\n")  # minted, but unknown to the API
    error = world.up_error()
    assert type(error) is BootstrapFailed
    assert error.exit_code == 8
    assert error.message == "the API rejects the token just minted; try `hatchet-local up` again"
    assert world.stack_dir.load_token() is None
    assert not world.env_file.exists()


# --- ports ----------------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.mark.parametrize(
    ("key", "name", "flag"),
    [("DASHBOARD", "dashboard", "--dashboard-port"), ("GRPC", "grpc", "--grpc-port")],
)
def test_a_configured_port_in_use_stops_before_compose_up(
    world: World, taken_port: int, key: str, name: str, flag: str
) -> None:
    error = world.up_error(**{f"HATCHET_LOCAL_PORTS_{key}": str(taken_port)})
    assert type(error) is PortInUse
    assert error.exit_code == 4
    # The holder is this very test process, found through /proc.
    assert error.message.startswith(
        f"the {name} port {taken_port} of stack unit is taken: pid {os.getpid()} ("
    )
    assert error.message.endswith(f") listens on it; stop it, or choose another port with {flag}")
    assert not world.runner.called("up")
    assert not world.runner.called("image", "inspect")


def test_configured_ports_reach_the_stack(world: World) -> None:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        dashboard, grpc = a.getsockname()[1], b.getsockname()[1]
    result = world.up(
        HATCHET_LOCAL_PORTS_DASHBOARD=str(dashboard), HATCHET_LOCAL_PORTS_GRPC=str(grpc)
    )
    assert (result.server_url, result.grpc_address) == (
        f"http://localhost:{dashboard}",
        f"localhost:{grpc}",
    )
    assert world.grpc_probes == [("127.0.0.1", grpc)]
    assert f'"127.0.0.1:{dashboard}:8888"' in world.compose_file()


def test_up_on_a_stack_still_starting_is_not_blocked_by_its_own_ports(
    world: World, taken_port: int
) -> None:
    # The stack runs; its engine (which publishes the dashboard port, here `taken_port`) is
    # still in its start period, e.g. after the Docker daemon restarted.
    world.hatchet.services = {
        "postgres": [Row()],
        "rabbitmq": [Row()],
        "hatchet-lite": [Row("running", "starting", published=(taken_port,)), Row()],
    }
    result = world.up(HATCHET_LOCAL_PORTS_DASHBOARD=str(taken_port))
    assert result.server_url == f"http://localhost:{taken_port}"
    assert "compose up --detach --remove-orphans --no-deps hatchet-lite" in actions(
        world.runner.calls
    )


def test_moving_a_running_stack_to_a_taken_port_is_port_in_use(
    world: World, taken_port: int
) -> None:
    world.up()
    world.next_process()
    outcome: Exception | None = None
    try:
        world.up(HATCHET_LOCAL_PORTS_DASHBOARD=str(taken_port))
    except PortInUse as exc:
        outcome = exc
    assert isinstance(outcome, PortInUse), "up went ahead though another program holds the port"
    assert not [line for line in actions(world.runner.calls) if line.startswith("compose up")]


def test_up_warns_about_a_small_engine_before_it_starts(world: World) -> None:
    world.runner.on("docker", "info", "--format", stdout=f"{1024**3} 2026-01-01T00:00:00Z\n")
    world.up()
    console = world.console()
    assert "memory: 1.0 GiB for the engine; give Docker at least 2 GiB for a stack" in console
    assert "clock: engine and host clocks differ by" in console
    assert console.index("memory:") < console.index("postgres healthy")


def test_advertised_stack_binds_beyond_loopback_and_is_probed_by_its_host(world: World) -> None:
    result = world.up(HATCHET_LOCAL_ADVERTISE="devbox.lan")
    grpc = world.ports()["grpc"]
    assert result.server_url.startswith("http://devbox.lan:")
    assert result.grpc_address == f"devbox.lan:{grpc}"
    assert world.grpc_probes == [("devbox.lan", grpc)]
    assert f'"0.0.0.0:{grpc}:7077"' in world.compose_file()
    assert world.stack_dir.load().advertise == "devbox.lan"  # type: ignore[union-attr]
    # Without it, the next `up` returns the stack to loopback (a changed compose file).
    world.next_process()
    world.grpc_probes.clear()
    result = world.up()
    assert result.server_url.startswith("http://localhost:")
    assert f'"127.0.0.1:{grpc}:7077"' in world.compose_file()
    assert world.grpc_probes == [("127.0.0.1", grpc)]
