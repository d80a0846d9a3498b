"""`hatchet-local up` on the rig: a working stack and a token the official SDK uses as-is."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import SdkLane
from tests.support.stacks import (
    CLIENT_KEYS,
    Project,
    own_stack,
    services_of,
    workflow_names,
)

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def probe_name() -> str:
    return f"probe-{uuid.uuid4().hex[:8]}"


def test_up_writes_settings_the_sdk_uses_as_they_are(
    shared_stack: Project, sdk_lane: SdkLane
) -> None:
    env_file = shared_stack.dir / ".env.hatchet"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    settings = shared_stack.env_file()
    assert set(settings) == CLIENT_KEYS
    status = shared_stack.status()
    assert status["state"] == "running"
    assert settings["HATCHET_CLIENT_SERVER_URL"] == status["dashboard_url"]
    assert settings["HATCHET_CLIENT_HOST_PORT"] == status["grpc_address"]
    assert services_of(status["stack"]) == ["hatchet-lite", "postgres", "rabbitmq"]

    name = probe_name()
    assert shared_stack.run_task(name, sdk_lane.python) == {"echo": "HELLO", "task": name}


def test_up_again_keeps_the_token_and_never_prints_it(shared_stack: Project) -> None:
    token = shared_stack.env_file()["HATCHET_CLIENT_TOKEN"]
    again = shared_stack.hl("up", "--output", "json")
    result = json.loads(again.stdout)
    assert result["token_reused"] is True
    assert result["settings"]["HATCHET_CLIENT_TOKEN"] == "********"
    assert shared_stack.env_file()["HATCHET_CLIENT_TOKEN"] == token
    assert token not in again.stdout + again.stderr
    assert token not in shared_stack.hl("env").stdout
    assert f"HATCHET_CLIENT_TOKEN={token}" in shared_stack.hl("env", "--reveal").stdout


def test_up_keeps_the_users_own_lines(shared_stack: Project) -> None:
    env_file = shared_stack.dir / ".env.hatchet"
    shared = env_file.read_bytes()
    mine_before = "# my settings\nexport MY_FLAG=1\n\nDATABASE_URL='postgres://me'\n"
    try:
        env_file.write_text(mine_before + env_file.read_text() + "LAST=1")
        shared_stack.hl("up")
        text = env_file.read_text()
        assert text.startswith(mine_before)
        assert text.endswith("\nLAST=1")  # kept as it was, without a newline added
        keys = CLIENT_KEYS | {"export MY_FLAG", "DATABASE_URL", "LAST"}
        assert set(shared_stack.env_file()) == keys
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    finally:
        env_file.write_bytes(shared)  # the file other tests of the shared stack read


def test_down_then_up_keeps_data_and_token(rig_images: dict[str, str], tmp_path: Path) -> None:
    """On a stack of its own: `down` would stop the stack other tests share."""
    with own_stack(Project(tmp_path / "app", tmp_path / "state")) as project:
        first = probe_name()
        project.run_task(first)
        token = project.env_file()["HATCHET_CLIENT_TOKEN"]

        project.hl("down")
        assert services_of(project.stack) == []
        assert project.status()["state"] == "stopped"

        project.hl("up")
        assert project.env_file()["HATCHET_CLIENT_TOKEN"] == token
        assert first in workflow_names(project.env_file())
        second = probe_name()
        assert project.run_task(second) == {"echo": "HELLO", "task": second}


def test_lighter_stack_runs_without_rabbitmq_or_dashboard(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    lighter = "message_queue: postgres\ndashboard: false\n"
    with own_stack(Project(tmp_path / "pg-queue", tmp_path / "state", lighter)) as project:
        status = project.status()
        assert status["message_queue"] == "postgres"
        assert services_of(project.stack) == ["hatchet-lite", "postgres"]
        page = httpx.get(status["dashboard_url"], timeout=10)
        assert "dashboard disabled" in page.text
        name = probe_name()
        assert project.run_task(name) == {"echo": "HELLO", "task": name}
    # own_stack took it down with --volumes and found nothing of it left.


def test_dashboard_login_in_chromium(shared_stack: Project) -> None:
    from playwright.sync_api import expect, sync_playwright

    status = shared_stack.status("--reveal")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{status['dashboard_url']}/auth/login")
            page.fill("#email", status["admin_email"])
            page.fill("#password", status["admin_password"])
            page.get_by_role("button", name="Sign In").click()
            page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
            tenant = shared_stack.env_file()["HATCHET_CLIENT_TENANT_ID"]
            page.wait_for_url(f"**/tenants/{tenant}/**", timeout=60_000)
            switcher = page.get_by_role("combobox", name="Select a tenant")
            expect(switcher).to_contain_text("Default", timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
        finally:
            browser.close()


def stack_secrets(project: Project) -> list[str]:
    stack = project.status()["stack"]
    text = (project.state / "stacks" / stack / "secrets.env").read_text()
    return [line.split("=", 1)[1] for line in text.splitlines() if "=" in line]


def test_logs_and_render_show_the_stack_without_its_secrets(shared_stack: Project) -> None:
    secrets = stack_secrets(shared_stack)
    assert len(secrets) == 3

    logs = shared_stack.hl("logs", "hatchet-lite", "--tail", "20").stdout
    assert "hatchet-lite" in logs
    rendered = shared_stack.hl("render").stdout
    services = yaml.safe_load(rendered)["services"]
    assert set(services) == {"postgres", "rabbitmq", "migrate", "setup", "hatchet-lite"}
    status = shared_stack.hl("status").stdout
    for secret in secrets:
        assert secret not in logs
        assert secret not in rendered
        assert secret not in status
    assert secrets[2] in shared_stack.hl("status", "--reveal").stdout  # the admin password


def test_doctor_on_a_machine_running_a_stack(shared_stack: Project) -> None:
    findings = json.loads(shared_stack.hl("doctor", "--output", "json").stdout)
    status = {f["check"]: f["status"] for f in findings}
    assert status == {
        "docker engine": "pass",
        "compose v2": "pass",
        "memory": "pass",
        "disk": "pass",
        "ports": "warn",
        "images": "pass",
        "clock": "pass",
    }  # fmt: skip  (ports: held by this very stack)
