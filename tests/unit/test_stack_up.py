"""`startup.up` end to end over a fake Docker, a fake Hatchet API and a fake clock."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import socket
import stat
import tarfile
from collections.abc import Iterator
from pathlib import PurePosixPath

import pytest
import yaml

from hatchet_local import snapshot_file, snapshots, startup
from hatchet_local.bootstrap import TOKEN_LIFETIME, TOKEN_NAME
from hatchet_local.defaults import (
    DEFAULT_IMAGES,
    DEFAULT_TENANT_ID,
    ENGINE_HOLD_FILE,
    ENGINE_SERVICE,
    HATCHET_VERSION,
    JOB_COMMANDS,
)
from hatchet_local.docker_cli import CONTAINER_FORMAT, LISTING_FORMAT
from hatchet_local.errors import (
    BootstrapFailed,
    CommandFailed,
    DockerUnavailable,
    HealthTimeout,
    ImageMissing,
    Interrupted,
    PortInUse,
    ServiceUnhealthy,
    SetupFailed,
)
from hatchet_local.redact import MASK
from hatchet_local.runner import Result
from hatchet_local.startup import UpResult
from hatchet_local.state import SECRET_NAMES
from hatchet_local.team_state import Token
from tests.unit.fakes import (
    TOKEN_CREATE,
    Call,
    Http,
    Row,
    argv_text,
    assert_before,
    parse_env_file,
    reply,
)
from tests.unit.harness import World

LITE_IMAGE = DEFAULT_IMAGES["hatchet-lite"]
# `up` asks whether `images build` made a stand-in for each default image.
BUILD_LABEL = '{{index .Config.Labels "io.hatchet-local.image"}}'
TOKEN_1 = "eyJhbGciOiJFUzI1NiJ9.token-1.signature"
TOKEN_2 = "eyJhbGciOiJFUzI1NiJ9.token-2.signature"
INSPECT = ("docker", "inspect", "--type", "container", "--format", "{{json .State}}")
# Compose makes every container of a stack it starts; `docker start` starts each.
MAKE = ("up", "--no-start", "--no-deps", "--remove-orphans")
CREATE = (*MAKE, "postgres", "rabbitmq", ENGINE_SERVICE)
START_BACKING = ("docker", "start", "unit-postgres-1", "unit-rabbitmq-1")
ENGINE = f"unit-{ENGINE_SERVICE}-1"
# The jobs run inside the engine's container, held at its start (jobs.py).
MIGRATE = ("docker", "exec", ENGINE, *JOB_COMMANDS["migrate"])
SETUP = ("docker", "exec", "-e", "ADMIN_EMAIL", "-e", "ADMIN_PASSWORD", ENGINE,
         *JOB_COMMANDS["setup"])  # fmt: skip
START_ENGINE = ("docker", "start", ENGINE)
HOLD = ("docker", "cp", "-", f"{ENGINE}:/config")
RELEASE = ("docker", "exec", ENGINE, "rm", "-f", ENGINE_HOLD_FILE)
MINT = (
    "docker", "exec", ENGINE, "/hatchet-admin", "token", "create", "--config", "/config",
    "--tenant-id", DEFAULT_TENANT_ID, "--name", TOKEN_NAME, "--expiresIn", TOKEN_LIFETIME,
)  # fmt: skip
API_READY = Http("GET", "/api/ready")
PROJECT_PS = (
    "docker", "ps", "--all", "--filter=label=com.docker.compose.project=unit",
    "--filter=label=com.docker.compose.oneoff=False", "--format", CONTAINER_FORMAT,
)  # fmt: skip
TENANT_GET = Http("GET", f"/api/v1/tenants/{DEFAULT_TENANT_ID}")


def test_the_jobs_run_in_the_engine_container_held_until_the_pristine_copy(world: World) -> None:
    world.up()
    journal = world.runner.journal
    # The engine's container is held at its start (a file in its config volume), then
    # started: the jobs run in it while RabbitMQ starts. The first stack of its kind keeps its
    # migrated database as a base before `setup`; the pristine copy `reset` restores is taken
    # after `setup`, and only then is the engine let go, once.
    assert_before(journal, CREATE, HOLD, START_ENGINE, MIGRATE, ("pg_basebackup",), SETUP,
                  RELEASE, API_READY)  # fmt: skip
    assert world.hatchet.released == [True]
    [hold] = world.runner.called(*HOLD)
    assert hold.data is not None
    with tarfile.open(fileobj=io.BytesIO(hold.data)) as tar:
        assert tar.getnames() == [PurePosixPath(ENGINE_HOLD_FILE).name]
    assert world.stack_dir.noted("engine-held") is None  # nothing left to finish


def test_a_hold_a_cut_short_up_left_is_restarted_then_let_go(world: World) -> None:
    """A signal during `setup` leaves the engine's container held, maybe with the job still
    running in it: the next `up` restarts the container (which ends the job), runs the jobs
    again and lets the engine go."""
    world.hatchet.jobs["setup"] = (137, "killed\n")
    world.up_error()
    assert world.stack_dir.noted("engine-held") is not None and not world.hatchet.released
    world.next_process()
    world.hatchet.jobs["setup"] = (0, "")
    world.hatchet.starts[ENGINE_SERVICE] = Row("running", "starting")  # held, waiting
    world.hatchet.services[ENGINE_SERVICE] = [Row("running", "starting"), Row("running", "healthy")]
    world.up()
    restart = ("docker", "restart", "--time", "0", ENGINE)
    assert world.ran(restart) == 1 and world.ran(HOLD) == 0  # the file is still in the volume
    assert_before(world.runner.journal, restart, SETUP, RELEASE)
    assert world.hatchet.released == [True]
    assert world.stack_dir.noted("engine-held") is None


def compose_commands(world: World) -> list[tuple[str, ...]]:
    """The compose commands that ran, each without the stack's global options."""
    scope = world.compose()
    return [c.argv[len(scope) :] for c in world.runner.calls if c.argv[: len(scope)] == scope]


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

    runner, root = world.runner, world.ctx.state_root
    # Expired stacks are looked for by this state directory's label, before anything starts.
    reap = ("--filter", "label=io.hatchet-local.stack",
            "--filter", f"label=io.hatchet-local.state={root}", "--format")  # fmt: skip
    listings = [("docker", "ps", "--all", *reap, LISTING_FORMAT["container"]),
                ("docker", "volume", "ls", *reap, LISTING_FORMAT["volume"]),
                ("docker", "network", "ls", *reap, LISTING_FORMAT["network"])]  # fmt: skip
    for listing in listings:
        assert world.ran(listing) == 1
    # Every compose command is scoped to the stack (project, file, env file), and each start
    # or job runs once: nothing pulled (the images are there), nothing removed.
    scope = world.compose()
    assert all(call.argv[: len(scope)] == scope for call in runner.called("--env-file"))
    for argv in (world.compose(*CREATE), MINT, MIGRATE, SETUP, START_BACKING,
                 HOLD, START_ENGINE, RELEASE):  # fmt: skip
        assert world.ran(argv) == 1, argv
    assert world.ran(PROJECT_PS) == 1  # one look at the project, through the engine
    # Compose makes the containers and starts none.
    assert not runner.called("pull") and not runner.called("--detach")
    assert [call.argv for call in runner.called("rm")] == [RELEASE]
    assert world.ran(("git", "-C", str(world.project), "check-ignore", "-q", ".env.hatchet")) == 1
    # Each default image is looked for as it is, and as a local `images build` stand-in.
    present = [call.argv[-1] for call in runner.called("image", "inspect", "--format", "{{.Id}}")]
    assert sorted(present) == sorted(DEFAULT_IMAGES.values())
    builds = [call.argv[-1] for call in runner.called("image", "inspect", "--format", BUILD_LABEL)]
    assert sorted(builds) == sorted(
        f"hatchet-local/{name}"
        for name in ("postgres:15", "rabbitmq:3-management", f"hatchet-lite:{HATCHET_VERSION}")
    )

    # The order that matters, phase by phase.
    assert_before(runner.journal, ("docker", "version"), ("docker", "info"))
    assert_before(runner.journal, listings[0], START_BACKING)
    assert_before(runner.journal, ("docker", "info"), START_BACKING)  # preflight, before a start
    assert_before(runner.journal, ("image", "inspect"), CREATE, START_BACKING)
    for job in ("migrate", "setup"):  # what a `compose run` of a job left is looked for first
        leftovers = ("--filter=label=com.docker.compose.oneoff=True",
                     f"--filter=label=com.docker.compose.service={job}")  # fmt: skip
        assert_before(runner.journal, leftovers, JOB_COMMANDS[job][:2])
    assert_before(runner.journal, START_BACKING, (*INSPECT, "unit-postgres-1"), MIGRATE)
    # The engine waits for RabbitMQ's port by itself; RabbitMQ's health is awaited before the
    # engine's, which is ready once it runs and its API answers.
    assert_before(runner.journal, SETUP, RELEASE, (*INSPECT, "unit-rabbitmq-1"), API_READY)
    # The token is minted beside the engine's start; it is proven and handed out only once
    # every tenant is handed to the engine.
    assert_before(runner.journal, RELEASE, MINT, TENANT_GET, ("git", "-C"))
    assert_before(runner.journal, RELEASE, ("-U", "hatchet", "-d", "hatchet"), TENANT_GET,
                  ("git", "-C"))  # fmt: skip
    # Whether `images build` made a stand-in for a default image is asked before anything starts.
    assert_before(runner.journal, ("image", "inspect", "--format", BUILD_LABEL), START_BACKING)
    assert world.grpc_probes == [("127.0.0.1", ports["grpc"])]
    requests = world.api.requests
    assert [(r.url.path, r.headers.get("Authorization")) for r in requests] == [
        ("/api/ready", None),  # the engine is ready
        ("/api/ready", None),  # the API, before the token (one check for a running stack)
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
    assert not [call for call in world.runner.calls if "rabbitmq" in " ".join(call.argv)]
    assert world.ran(world.compose(*MAKE, "postgres", ENGINE_SERVICE)) == 1
    assert world.ran(("docker", "start", "unit-postgres-1")) == 1
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
    assert world.ran(world.compose("pull", "--quiet", "hatchet-lite")) == 1
    assert_before(world.runner.journal, ("image", "inspect", "--format", "{{.Id}}"), ("pull",),
                  START_BACKING)  # fmt: skip
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
    commands = compose_commands(world)
    assert not world.runner.called(*TOKEN_CREATE)
    assert not [args for args in commands if args[0] in ("up", "run")]
    assert not world.runner.called("docker", "info")  # no preflight on a warm up
    assert world.ran(PROJECT_PS) == 1
    assert [(r.url.path, r.headers.get("Authorization")) for r in world.api.requests] == [
        ("/api/ready", None),
        (f"/api/v1/tenants/{DEFAULT_TENANT_ID}", f"Bearer {TOKEN_1}"),
    ]
    assert "stored token still accepted" in world.console()


def test_a_stored_token_the_api_rejects_is_replaced(world: World) -> None:
    world.up()
    world.api.tokens.clear()  # e.g. the tenant's tokens were revoked
    world.next_process()

    result = world.up()

    assert result.token_reused is False
    assert result.settings["HATCHET_CLIENT_TOKEN"] == TOKEN_2
    assert parse_env_file(world.env_file)["HATCHET_CLIENT_TOKEN"] == TOKEN_2
    assert world.stack_dir.load_token() == Token(
        token=TOKEN_2, tenant_id=DEFAULT_TENANT_ID, server_url=result.server_url
    )
    tenants = world.api.calls("GET", "/api/v1/tenants/[^/]+")
    assert [r.headers["Authorization"] for r in tenants] == [
        f"Bearer {TOKEN_1}",
        f"Bearer {TOKEN_2}",
    ]
    assert world.ran(MINT) == 1


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
    commands = compose_commands(world)
    # The running stack is brought up again from the new file (orphans removed), the jobs
    # run again for a new version, and the token, still accepted, is kept.
    assert (*MAKE, *services.split(), ENGINE_SERVICE) in commands
    assert world.runner.called("docker", "start", *(f"unit-{s}-1" for s in services.split()))
    assert world.runner.called(*MIGRATE)
    assert world.runner.called(*START_ENGINE)
    assert result.token_reused is True


def test_a_change_is_applied_after_an_interrupted_up(world: World) -> None:
    world.up()
    world.next_process()
    world.runner.on("up", "--no-start", raises=Interrupted("interrupted; run the same command"))
    with pytest.raises(Interrupted):
        world.up(HATCHET_LOCAL_MESSAGE_QUEUE="postgres")
    world.runner.rules.pop()  # Ctrl-C was pressed once; the user runs `up` again
    world.next_process()
    world.up(HATCHET_LOCAL_MESSAGE_QUEUE="postgres")
    assert world.ran(world.compose(*MAKE, "postgres", ENGINE_SERVICE)) == 1


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
        f"image {LITE_IMAGE} is not on this machine and pull_policy is never; load it "
        "(`hatchet-local images load FILE`), build it (`hatchet-local images build`) or set "
        "pull_policy: missing"
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
    assert not world.runner.called(*JOB_COMMANDS["migrate"])
    assert "!! postgres healthy" in world.console()


def test_rabbitmq_turns_unhealthy_after_starting(world: World) -> None:
    # Every inspect of rabbitmq's container moves it on by one row; a poll inspects it once
    # (its state, and when it started, to read what it logged since).
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
        password = parse_env_file(world.stack_dir.secrets_file)["HATCHET_POSTGRES_PASSWORD"]
        output = f"connecting to postgresql://hatchet:{password}@postgres:5432\n"
        return reply(call, 1, stdout=output, stderr="error: relation already exists\n")

    world.runner.on_call(*MIGRATE, handler=migrate)
    error = world.up_error()
    assert type(error) is SetupFailed
    assert error.exit_code == 7
    assert error.message == "the migrate job exited with code 1"
    assert error.details == (
        f"connecting to postgresql://hatchet:{MASK}@postgres:5432\nerror: relation already exists"
    )
    assert not world.runner.called(*JOB_COMMANDS["setup"])
    # The engine's container, held, runs the jobs; the engine itself never started.
    assert world.runner.called(*START_ENGINE) and not world.runner.called(*RELEASE)
    assert "!! migrate job" in world.console()


def test_setup_job_fails(world: World) -> None:
    world.hatchet.jobs["setup"] = (2, "could not seed the tenant\n")
    error = world.up_error()
    assert type(error) is SetupFailed
    assert error.exit_code == 7
    assert error.message == "the setup job exited with code 2"
    assert error.details == "could not seed the tenant"
    assert not world.runner.called("--no-deps", "hatchet-lite")


def test_an_engine_whose_api_answers_is_ready_before_its_healthcheck_says(world: World) -> None:
    world.hatchet.starts["hatchet-lite"] = Row("running", "starting")
    started = world.clock.now
    world.up()
    assert world.clock.now == started  # no wait for Docker's next healthcheck


def test_engine_health_timeout(world: World) -> None:
    world.hatchet.starts["hatchet-lite"] = Row("running", "starting")
    world.api.ready = 503
    world.hatchet.logs["hatchet-lite"] = "".join(f"engine line {n}\n" for n in range(1, 41))
    started = world.clock.now
    error = world.up_error(HATCHET_LOCAL_TIMEOUTS_ENGINE="45")
    assert type(error) is HealthTimeout
    assert error.exit_code == 6
    dashboard = world.ports()["dashboard"]
    assert error.message == (
        f"engine not ready after 45s (timeout 45s); last status: "
        f"GET http://localhost:{dashboard}/api/ready: HTTP 503"
    )
    lines = error.details.splitlines()
    assert lines[0] == "last log lines of hatchet-lite:"
    assert lines[1:] == [f"engine line {n}" for n in range(11, 41)]
    assert world.clock.now - started == 45
    # A token may have been minted beside the engine's start; none is kept or handed out.
    assert world.stack_dir.load_token() is None
    assert not world.env_file.exists()


def test_engine_exits(world: World) -> None:
    world.hatchet.starts["hatchet-lite"] = [Row("running", "starting"), Row("exited", "", 2)]
    world.api.ready = 503  # it never gets as far as serving its API
    world.hatchet.logs["hatchet-lite"] = "panic: config missing\n"
    error = world.up_error()
    assert type(error) is ServiceUnhealthy
    assert error.message == "engine failed after 1s: container exited with code 2"
    assert error.details == "last log lines of hatchet-lite:\npanic: config missing"


def test_api_never_ready(world: World) -> None:
    world.api.ready = 503
    world.hatchet.logs["hatchet-lite"] = "api | waiting for the database\n"
    error = world.up_error()
    dashboard = world.ports()["dashboard"]
    assert type(error) is HealthTimeout
    assert error.exit_code == 6
    # The engine counts as ready once its API answers (Docker's healthcheck says it later).
    assert error.message == (
        f"engine not ready after 300s (timeout 300s); "
        f"last status: GET http://localhost:{dashboard}/api/ready: HTTP 503"
    )
    assert error.details == "last log lines of hatchet-lite:\napi | waiting for the database"
    assert len(world.api.calls("GET", "/api/ready")) == 301
    assert world.stack_dir.load_token() is None and not world.env_file.exists()
    assert "!! engine ready" in world.console()


def test_api_ready_after_a_while(world: World) -> None:
    world.api.ready = [502, 503, 503, 200]
    assert world.up().token_reused is False
    # Three refusals while the engine starts, its first answer, and the check before the token.
    assert len(world.api.calls("GET", "/api/ready")) == 5


def test_token_mint_fails(world: World) -> None:
    def fail(call: Call) -> Result:
        password = parse_env_file(world.stack_dir.secrets_file)["HATCHET_ADMIN_PASSWORD"]
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
    assert not world.runner.called("image", "inspect", "--format", "{{.Id}}")


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
    assert world.ran(START_ENGINE) == 1


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
    assert not [args for args in compose_commands(world) if args[0] == "up"]


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


# --- machines without a registry (issue #15) -------------------------------------------------


def test_a_pull_that_reaches_no_registry_stops_with_one_line(world: World) -> None:
    world.hatchet.missing_images = {"postgres:15.6"}
    world.runner.on(
        "pull", "--quiet", returncode=1,
        stderr='Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: '
        "lookup registry-1.docker.io on 10.0.0.53:53: no such host\n",
    )  # fmt: skip
    error = world.up_error()
    assert type(error) is ImageMissing
    assert error.message.startswith(
        "cannot pull postgres:15.6: registry docker.io does not answer (no such host); build "
        "the images here with `hatchet-local images build`"
    )
    assert (error.details, world.runner.called("pull")[0].argv[-1]) == ("", "postgres")
    assert not world.runner.called("up", "--detach")


def test_a_local_build_stands_in_for_the_default_image_and_is_never_pulled(
    world: World,
) -> None:
    build = f"hatchet-local/hatchet-lite:{HATCHET_VERSION}"
    world.runner.on(BUILD_LABEL, build, stdout="hatchet-lite\n")
    world.up(HATCHET_LOCAL_PULL_POLICY="always")
    services = yaml.safe_load(world.compose_file())["services"]
    for service in ("migrate", "setup", "hatchet-lite"):
        assert (services[service]["image"], services[service]["pull_policy"]) == (build, "never")
    assert services["postgres"]["pull_policy"] == "always"
    assert world.runner.called("pull")[0].argv[-2:] == ("postgres", "rabbitmq")
    # An `images:` entry always wins over a build.
    world.up(HATCHET_LOCAL_IMAGES_HATCHET_LITE="registry.example.com/lite:v1")
    assert "registry.example.com/lite:v1" in world.compose_file()


def test_a_stack_from_a_snapshot_has_its_containers_made_once(world: World) -> None:
    """`up --snapshot` unpacks the snapshot into the containers the stack's one Compose
    `up --no-start` made (making them again cost about 0.7 s of every such `up`)."""
    path = world.project / "team.hlsnap"
    config = world.config()
    with snapshot_file.writing(path, overwrite=False) as writer:
        with writer.member(snapshot_file.DATABASE, gzipped=True) as out:
            out.write(b"base backup")
        with writer.member(snapshot_file.CONFIG) as out:
            out.write(b"config volume")
        with writer.member(snapshot_file.STATE) as out:
            out.write(b"{}")
        snapshot_file.finish(writer, snapshot_file.Manifest(
            format=snapshot_file.FORMAT, format_version=snapshot_file.FORMAT_VERSION,
            created="2026-11-30T00:00:00+00:00", tool_version="0", stack="lead",
            hatchet_version=config.hatchet_version, postgres_major=15,
            message_queue="rabbitmq"), path)  # fmt: skip

    startup.up(config, world.ctx, seed=snapshots.seed(config, world.ctx, str(path)))

    assert len(world.runner.called("up", "--no-start")) == 1
    config_copy, database_copy = (call.data or b"" for call in world.runner.called("docker", "cp"))
    assert config_copy == b"config volume"
    assert gzip.decompress(database_copy) == b"base backup"  # Docker unpacks it as it is
