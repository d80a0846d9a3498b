"""The rendered compose file, parsed and asserted as data."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hatchet_local import __version__
from hatchet_local.defaults import DEFAULT_IMAGES, ENGINE_HOLD_FILE, JOB_COMMANDS
from hatchet_local.docker import stack_labels
from hatchet_local.render import StackSpec, render_stack
from hatchet_local.state import SECRET_NAMES

LABELS = stack_labels("unit-stack", "/home/dev/my project", "2024-05-01T10:00:00+00:00")
IMAGES = {**DEFAULT_IMAGES, "hatchet-lite": "registry.example.com/hatchet-lite:v9.9.9"}


def spec(**overrides: Any) -> StackSpec:
    values: dict[str, Any] = {
        "stack": "unit-stack",
        "images": IMAGES,
        "message_queue": "rabbitmq",
        "dashboard": True,
        "dashboard_port": 18080,
        "grpc_port": 17077,
        "pull_policy": "missing",
        "labels": LABELS,
    }
    return StackSpec(**{**values, **overrides})


def rendered(**overrides: Any) -> dict[str, Any]:
    data = yaml.safe_load(render_stack(spec(**overrides)))
    assert isinstance(data, dict)
    return data


def env_of(data: dict[str, Any], service: str) -> dict[str, str]:
    environment = data["services"][service].get("environment", {})
    assert isinstance(environment, dict), "environment must be a mapping, not a list"
    return environment


@pytest.fixture(params=["rabbitmq", "postgres"])
def queue(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_labels_name_stack_directory_creation_and_version() -> None:
    labels = stack_labels("unit-stack", "/home/dev/my project", "2024-05-01T10:00:00+00:00")
    assert labels == {
        "io.hatchet-local.stack": "unit-stack",
        "io.hatchet-local.directory": "/home/dev/my project",
        "io.hatchet-local.created": "2024-05-01T10:00:00+00:00",
        "io.hatchet-local.version": __version__,
    }


def test_project_name_is_the_stack() -> None:
    assert rendered()["name"] == "unit-stack"


def test_rabbitmq_queue_services_and_url() -> None:
    data = rendered(message_queue="rabbitmq")
    assert set(data["services"]) == {"postgres", "rabbitmq", "migrate", "setup", "hatchet-lite"}
    assert set(data["volumes"]) == {"postgres_data", "rabbitmq_data", "hatchet_config"}
    for service in ("setup", "hatchet-lite"):
        env = env_of(data, service)
        assert env["SERVER_MSGQUEUE_KIND"] == "rabbitmq"
        assert env["SERVER_MSGQUEUE_RABBITMQ_URL"] == (
            "amqp://hatchet:${HATCHET_RABBITMQ_PASSWORD:?set HATCHET_RABBITMQ_PASSWORD}"
            "@rabbitmq:5672/"
        )
    # Config generation needs only the database; the engine needs RabbitMQ.
    assert data["services"]["setup"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert data["services"]["hatchet-lite"]["depends_on"] == {
        "setup": {"condition": "service_completed_successfully"},
        "rabbitmq": {"condition": "service_healthy"},
    }


def test_postgres_queue_has_no_rabbitmq_at_all() -> None:
    data = rendered(message_queue="postgres")
    text = render_stack(spec(message_queue="postgres"))
    assert set(data["services"]) == {"postgres", "migrate", "setup", "hatchet-lite"}
    assert set(data["volumes"]) == {"postgres_data", "hatchet_config"}
    for service in ("setup", "hatchet-lite"):
        env = env_of(data, service)
        assert env["SERVER_MSGQUEUE_KIND"] == "postgres"
        assert "SERVER_MSGQUEUE_RABBITMQ_URL" not in env
    assert data["services"]["setup"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"}
    }
    assert "RABBITMQ" not in text
    assert "amqp://" not in text


def test_every_service_volume_and_network_carries_the_labels(queue: str) -> None:
    data = rendered(message_queue=queue)
    for name, service in data["services"].items():
        assert service["labels"] == LABELS, name
    for name, volume in data["volumes"].items():
        assert volume["labels"] == LABELS, name
    assert data["networks"] == {"default": {"labels": LABELS}}


def test_no_labels_still_renders_valid_yaml() -> None:
    data = rendered(labels={})
    assert data["services"]["postgres"]["labels"] == {}


def test_only_the_engine_publishes_ports_on_loopback(queue: str) -> None:
    data = rendered(message_queue=queue)
    published = {name: s["ports"] for name, s in data["services"].items() if "ports" in s}
    assert published == {"hatchet-lite": ["127.0.0.1:18080:8888", "127.0.0.1:17077:7077"]}


def test_server_url_and_grpc_broadcast_follow_the_ports() -> None:
    data = rendered(dashboard_port=23456, grpc_port=34567)
    env = env_of(data, "hatchet-lite")
    assert env["SERVER_URL"] == "http://localhost:23456"
    assert env["SERVER_AUTH_COOKIE_DOMAIN"] == "localhost"
    assert env["SERVER_GRPC_BROADCAST_ADDRESS"] == "localhost:34567"
    # Inside the network the engine is still reached on its container port.
    assert env["SERVER_INTERNAL_CLIENT_INTERNAL_GRPC_BROADCAST_ADDRESS"] == "localhost:7077"
    assert env["SERVER_GRPC_PORT"] == "7077"
    assert data["services"]["hatchet-lite"]["ports"] == [
        "127.0.0.1:23456:8888",
        "127.0.0.1:34567:7077",
    ]
    assert env_of(data, "setup")["SERVER_URL"] == "http://localhost:23456"


def test_spec_urls() -> None:
    s = spec(dashboard_port=23456, grpc_port=34567)
    assert s.server_url == "http://localhost:23456"
    assert s.grpc_address == "localhost:34567"


def test_long_running_services_have_healthchecks(queue: str) -> None:
    services = rendered(message_queue=queue)["services"]
    expected = {"postgres", "hatchet-lite"} | ({"rabbitmq"} if queue == "rabbitmq" else set())
    with_healthcheck = {name for name, s in services.items() if "healthcheck" in s}
    assert with_healthcheck == expected
    for name in expected:
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]


def test_postgres_flushes_a_copied_data_folder_with_one_syncfs(queue: str) -> None:
    """A copy (a base, a snapshot) starts with a recovery that syncs the data folder first:
    one syncfs(2), not an fsync per file. Nothing else of the server's defaults changes."""
    command = rendered(message_queue=queue)["services"]["postgres"]["command"]
    assert command.split() == ["postgres", "-c", "max_connections=200",
                               "-c", "recovery_init_sync_method=syncfs"]  # fmt: skip


def test_one_shot_jobs_migrate_and_setup() -> None:
    services = rendered()["services"]
    migrate, setup, engine = services["migrate"], services["setup"], services["hatchet-lite"]
    # The commands `up` runs inside the engine's container, as plain Compose runs them.
    assert migrate["command"] == list(JOB_COMMANDS["migrate"]) == ["/hatchet-migrate"]
    assert setup["command"] == list(JOB_COMMANDS["setup"])
    assert setup["command"][:2] == ["/hatchet-admin", "quickstart"]
    for job in (migrate, setup):
        assert "restart" not in job  # a job that restarts never completes
        assert job["image"] == IMAGES["hatchet-lite"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert engine["depends_on"]["setup"] == {"condition": "service_completed_successfully"}
    assert "hatchet_config:/config" in setup["volumes"]
    assert "hatchet_config:/config" in engine["volumes"]


def test_images_are_the_spec_images(queue: str) -> None:
    services = rendered(message_queue=queue)["services"]
    assert services["postgres"]["image"] == IMAGES["postgres"]
    assert services["hatchet-lite"]["image"] == IMAGES["hatchet-lite"]
    if queue == "rabbitmq":
        assert services["rabbitmq"]["image"] == IMAGES["rabbitmq"]


HOLD = f"while [ -e {ENGINE_HOLD_FILE} ]; do sleep 0.05; done; "


@pytest.mark.parametrize("dashboard", [True, False])
def test_the_engine_waits_first_while_the_hold_file_is_there(queue: str, dashboard: bool) -> None:
    """`up` runs the jobs in the engine's container while the file holds the engine back."""
    engine = rendered(message_queue=queue, dashboard=dashboard)["services"]["hatchet-lite"]
    assert engine["entrypoint"][2].startswith(HOLD)
    assert ENGINE_HOLD_FILE.startswith("/config/") and "hatchet_config:/config" in engine["volumes"]


def test_the_hold_loop_lets_go_once_the_file_is_removed(tmp_path: Path) -> None:
    hold, went_on = tmp_path / "hold", tmp_path / "went-on"
    hold.touch()
    script = HOLD.replace(ENGINE_HOLD_FILE, str(hold)) + f"touch {went_on}"
    with subprocess.Popen(["/bin/sh", "-c", script]) as shell:
        time.sleep(0.3)
        assert shell.poll() is None and not went_on.exists()  # held
        hold.unlink()
        assert shell.wait(timeout=10) == 0
    assert went_on.exists()


def test_dashboard_on_serves_the_bundled_assets() -> None:
    engine = rendered(dashboard=True, message_queue="postgres")["services"]["hatchet-lite"]
    assert engine["entrypoint"] == ["/bin/sh", "-c", f"{HOLD}exec /hatchet-lite --config /config"]
    assert "LITE_STATIC_ASSET_DIR" not in engine["environment"]


@pytest.mark.parametrize("dashboard", [True, False])
def test_the_engine_waits_for_rabbitmq_by_itself(dashboard: bool) -> None:
    """`up` starts the engine while RabbitMQ boots; without the wait it would exit."""
    engine = rendered(dashboard=dashboard, message_queue="rabbitmq")["services"]["hatchet-lite"]
    assert engine["entrypoint"][:2] == ["/bin/bash", "-c"]
    script = engine["entrypoint"][2]
    assert "until (exec 3<>/dev/tcp/rabbitmq/5672)" in script
    assert script.endswith("; exec /hatchet-lite --config /config")
    assert ("/tmp/no-dashboard/index.html" in script) is not dashboard
    # Standalone, Compose still holds the engine back until RabbitMQ is healthy.
    assert engine["depends_on"]["rabbitmq"] == {"condition": "service_healthy"}


def test_rabbitmq_health_is_a_connect_not_an_erlang_vm() -> None:
    broker = rendered(message_queue="rabbitmq")["services"]["rabbitmq"]
    assert broker["healthcheck"]["test"] == ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5672"]
    assert "+sbwt none" in broker["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    # No plugin is enabled (none is needed, the management port is not published); the list
    # lives in the data volume, where `rabbitmq-plugins enable` would write it.
    plugins = broker["environment"]["RABBITMQ_ENABLED_PLUGINS_FILE"]
    assert plugins.startswith("/var/lib/rabbitmq/")
    assert "rabbitmq_data:/var/lib/rabbitmq" in broker["volumes"]


def test_dashboard_off_swaps_the_static_dir() -> None:
    engine = rendered(dashboard=False, message_queue="postgres")["services"]["hatchet-lite"]
    assert engine["environment"]["LITE_STATIC_ASSET_DIR"] == "/tmp/no-dashboard"
    assert engine["entrypoint"][:2] == ["/bin/sh", "-c"]
    script = engine["entrypoint"][2]
    assert "/tmp/no-dashboard/index.html" in script
    assert script.endswith("exec /hatchet-lite --config /config")


@pytest.mark.parametrize("policy", ["missing", "always", "never"])
def test_pull_policy_applies_to_every_service(policy: str, queue: str) -> None:
    services = rendered(pull_policy=policy, message_queue=queue)["services"]
    assert {name: s["pull_policy"] for name, s in services.items()} == dict.fromkeys(
        services, policy
    )


INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_]+)(?::\?[^}]*)?\}")


@pytest.mark.parametrize("dashboard", [True, False])
def test_secrets_appear_only_as_interpolations(queue: str, dashboard: bool) -> None:
    text = render_stack(spec(message_queue=queue, dashboard=dashboard))
    interpolated = {m["name"] for m in INTERPOLATION.finditer(text)}
    assert interpolated <= set(SECRET_NAMES)
    assert "HATCHET_POSTGRES_PASSWORD" in interpolated
    assert "HATCHET_ADMIN_PASSWORD" in interpolated
    assert ("HATCHET_RABBITMQ_PASSWORD" in interpolated) == (queue == "rabbitmq")
    # Outside the interpolations, no secret's name is written anywhere.
    outside = INTERPOLATION.sub("", text)
    for name in SECRET_NAMES:
        assert name not in outside


def test_every_password_value_is_an_interpolation(queue: str) -> None:
    data = rendered(message_queue=queue)
    password_like = re.compile("PASSWORD|PASS$|_URL$")
    seen = 0
    for service in data["services"]:
        for key, value in env_of(data, service).items():
            if not password_like.search(key) or key == "SERVER_URL":
                continue
            seen += 1
            found = INTERPOLATION.findall(str(value))
            assert found, f"{service}.{key} holds no interpolation: {value!r}"
            assert set(found) <= set(SECRET_NAMES)
    assert seen >= 5


def test_admin_password_reaches_only_the_setup_job(queue: str) -> None:
    data = rendered(message_queue=queue)
    holders = {
        service
        for service in data["services"]
        if any("HATCHET_ADMIN_PASSWORD" in str(v) for v in env_of(data, service).values())
    }
    assert holders == {"setup"}
    assert env_of(data, "setup")["ADMIN_PASSWORD"] == (
        "${HATCHET_ADMIN_PASSWORD:?set HATCHET_ADMIN_PASSWORD}"
    )
    assert env_of(data, "setup")["ADMIN_EMAIL"] == "admin@example.com"
    assert "ADMIN_PASSWORD" not in env_of(data, "hatchet-lite")


def test_postgres_password_reaches_the_database_users_only(queue: str) -> None:
    data = rendered(message_queue=queue)
    postgres_url = (
        "postgresql://hatchet:${HATCHET_POSTGRES_PASSWORD:?set HATCHET_POSTGRES_PASSWORD}"
        "@postgres:5432/hatchet?sslmode=disable"
    )
    assert env_of(data, "postgres")["POSTGRES_PASSWORD"] == (
        "${HATCHET_POSTGRES_PASSWORD:?set HATCHET_POSTGRES_PASSWORD}"
    )
    for service in ("migrate", "setup", "hatchet-lite"):
        assert env_of(data, service)["DATABASE_URL"] == postgres_url
    if queue == "rabbitmq":
        assert env_of(data, "rabbitmq")["RABBITMQ_DEFAULT_PASS"] == (
            "${HATCHET_RABBITMQ_PASSWORD:?set HATCHET_RABBITMQ_PASSWORD}"
        )


def test_odd_label_values_are_quoted_safely() -> None:
    labels = stack_labels("s", '/home/zoë/it\'s: a "dir" # not a comment', "now")
    data = rendered(labels=labels)
    assert data["volumes"]["postgres_data"]["labels"] == labels


def test_render_is_deterministic_and_ends_with_a_newline() -> None:
    first = render_stack(spec())
    assert first == render_stack(spec())
    assert first.endswith("\n")
    assert first.startswith(f'# Rendered by hatchet-local {__version__} for stack "unit-stack"')
