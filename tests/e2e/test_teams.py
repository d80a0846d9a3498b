"""Teams on the rig: tenants and namespaces from hatchet-local.yaml, their tokens, logins
limited to tenants, and a stack advertised to other machines, proven with hatchet-sdk."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import SdkLane
from tests.support.clients import PROBE
from tests.support.dockerproxy import DockerProxy
from tests.support.stacks import (
    Project,
    clean_env,
    labelled,
    read_env,
    run_sdk_task,
    running_stack,
    workflow_names,
)

pytestmark = pytest.mark.e2e

TEAM_CONFIG = """
tenants:
  development:
    namespaces: [dev-alice, dev-bob]
  staging: {}
"""


def claims(token: str) -> dict[str, Any]:
    import base64

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def api(settings: dict[str, str], method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A call with the settings' token (bearer) to the stack they point at."""
    return httpx.request(
        method,
        f"{settings['HATCHET_CLIENT_SERVER_URL']}{path}",
        headers={"Authorization": f"Bearer {settings['HATCHET_CLIENT_TOKEN']}"},
        timeout=10,
        **kwargs,
    )


def tenant_slugs(project: Project) -> dict[str, str]:
    rows = json.loads(project.hl("tenant", "list", "--output", "json").stdout)
    return {row["slug"]: row["id"] for row in rows}


def probe(
    cwd: Path, env: dict[str, str], *args: str, timeout: float = 120, python: str = sys.executable
) -> str:
    proc = subprocess.run(
        [python, str(PROBE), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def team(rig_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """One stack with tenants development (namespaces dev-alice, dev-bob) and staging."""
    root = tmp_path_factory.mktemp("team")
    yield from running_stack(
        Project(root / f"team-{uuid.uuid4().hex[:6]}", root / "state", TEAM_CONFIG)
    )


def test_up_writes_one_private_file_per_tenant_and_namespace(team: Project) -> None:
    team_dir = team.dir / ".hatchet"
    assert stat.S_IMODE(team_dir.stat().st_mode) == 0o700
    files = sorted(path.name for path in team_dir.iterdir())
    assert files == [
        "development.dev-alice.env",
        "development.dev-bob.env",
        "development.env",
        "staging.env",
    ]
    tenants = tenant_slugs(team)
    for name in files:
        path = team_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        settings = read_env(path)
        tenant, _, rest = name.removesuffix(".env").partition(".")
        assert settings["HATCHET_CLIENT_TENANT_ID"] == tenants[tenant]
        assert claims(settings["HATCHET_CLIENT_TOKEN"])["sub"] == tenants[tenant]
        assert settings.get("HATCHET_CLIENT_NAMESPACE") == (rest or None)
    # The token is not printed by up.
    token = read_env(team_dir / "staging.env")["HATCHET_CLIENT_TOKEN"]
    assert token not in team.hl("up").stdout


def test_two_tenants_do_not_see_each_others_tasks(
    team: Project, tmp_path: Path, sdk_lane: SdkLane
) -> None:
    dev = read_env(team.dir / ".hatchet" / "development.env")
    staging = read_env(team.dir / ".hatchet" / "staging.env")
    name = f"iso-{uuid.uuid4().hex[:8]}"
    assert run_sdk_task(tmp_path, clean_env(**dev), name, python=sdk_lane.python)["echo"] == "HELLO"
    assert name in workflow_names(dev)
    assert name not in workflow_names(staging)
    # Staging's token reads nothing of development's, and cannot trigger its workflow.
    dev_tenant = dev["HATCHET_CLIENT_TENANT_ID"]
    assert api(staging, "GET", f"/api/v1/tenants/{dev_tenant}/workflows").status_code == 403
    rows = api(dev, "GET", f"/api/v1/tenants/{dev_tenant}/workflows").json()["rows"]
    workflow_id = next(row["metadata"]["id"] for row in rows if row["name"] == name)
    refused = api(staging, "POST", f"/api/v1/workflows/{workflow_id}/trigger", json={"input": {}})
    assert refused.status_code in (403, 404), refused.text
    # Through the SDK, a trigger with staging's token never becomes a run in development.
    probe(tmp_path, clean_env(**staging), "trigger", name, python=sdk_lane.python)
    time.sleep(3)
    runs = api(
        dev, "GET", f"/api/v1/stable/tenants/{dev_tenant}/workflow-runs",
        params={"since": "2020-01-01T00:00:00Z", "only_tasks": "false"},
    ).json()["rows"]  # fmt: skip
    assert len([run for run in runs if run["displayName"].startswith(name)]) == 1


def test_namespaces_split_events_in_one_tenant(
    team: Project, tmp_path: Path, sdk_lane: SdkLane
) -> None:
    alice = read_env(team.dir / ".hatchet" / "development.dev-alice.env")
    bob = read_env(team.dir / ".hatchet" / "development.dev-bob.env")
    assert alice["HATCHET_CLIENT_TOKEN"] == bob["HATCHET_CLIENT_TOKEN"]  # one tenant
    workflow, event = f"on-greet-{uuid.uuid4().hex[:6]}", f"greet-{uuid.uuid4().hex[:6]}"
    workers, logs = {}, []
    for who, settings in (("alice", alice), ("bob", bob)):
        log = (tmp_path / f"{who}.log").open("wb")
        logs.append(log)
        runs = str(tmp_path / f"{who}.runs")
        workers[who] = subprocess.Popen(
            [sdk_lane.python, str(PROBE), "on-event", workflow, event, runs],
            cwd=tmp_path, env=clean_env(**settings), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        wanted = {f"dev-alice_{workflow}", f"dev-bob_{workflow}"}
        while not wanted <= set(workflow_names(alice)):
            assert time.monotonic() < deadline, f"workers did not register: {workflow_names(alice)}"
            time.sleep(0.5)
        time.sleep(2)  # the workers' listeners are up once their workflows are registered
        probe(tmp_path, clean_env(**alice), "push", event, "from-alice", python=sdk_lane.python)
        alice_runs = tmp_path / "alice.runs"
        deadline = time.monotonic() + 60
        while not alice_runs.exists():
            assert time.monotonic() < deadline, (tmp_path / "alice.log").read_text()[-2000:]
            time.sleep(0.5)
        time.sleep(3)  # room for a wrong delivery to bob
    finally:
        for worker in workers.values():
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(15)
        for log in logs:
            log.close()
    lines = [json.loads(line) for line in alice_runs.read_text().splitlines()]
    assert lines == [{"message": "from-alice", "namespace": "dev-alice_"}]
    assert not (tmp_path / "bob.runs").exists()


def test_second_up_creates_nothing_and_an_added_tenant_only_itself(team: Project) -> None:
    before = tenant_slugs(team)
    files = sorted((team.dir / ".hatchet").glob("*.env"))
    tokens = {path.name: read_env(path)["HATCHET_CLIENT_TOKEN"] for path in files}
    result = json.loads(team.hl("up", "--output", "json").stdout)
    assert result["tenants"]["created"] == [] and result["tenants"]["minted"] == []
    assert tenant_slugs(team) == before
    # The stack is a server whose admin login hatchet-local knows: plan works on it as well.
    assert "nothing to change" in team.hl("plan").stdout
    assert {path.name: read_env(path)["HATCHET_CLIENT_TOKEN"] for path in files} == tokens
    dev = read_env(team.dir / ".hatchet" / "development.env")
    assert api(dev, "GET", f"/api/v1/tenants/{dev['HATCHET_CLIENT_TENANT_ID']}").status_code == 200

    config = team.dir / "hatchet-local.yaml"
    config.write_text(config.read_text() + "  qa: {}\n")
    result = json.loads(team.hl("up", "--output", "json").stdout)
    assert result["tenants"]["created"] == ["qa"] and result["tenants"]["minted"] == ["qa"]
    after = tenant_slugs(team)
    assert set(after) - set(before) == {"qa"}
    assert {slug: after[slug] for slug in before} == before
    assert {path.name: read_env(path)["HATCHET_CLIENT_TOKEN"] for path in files} == tokens
    qa = read_env(team.dir / ".hatchet" / "qa.env")
    assert api(qa, "GET", f"/api/v1/tenants/{after['qa']}").status_code == 200


def test_user_sees_only_the_tenants_named(team: Project) -> None:
    email = f"dev-{uuid.uuid4().hex[:6]}@example.com"
    out = team.hl("user", "create", email, "--tenant", "development", "--reveal").stdout
    password = out.split("password ", 1)[1].split()[0]
    assert "********" not in password
    masked = team.hl("user", "create", email, "--tenant", "development").stdout
    assert password not in masked  # a second run changes nothing and prints no password
    tenants = tenant_slugs(team)
    server_url = team.status()["dashboard_url"]
    login = httpx.post(
        f"{server_url}/api/v1/users/login", json={"email": email, "password": password}
    )
    assert login.status_code == 200, login.text
    cookie = {"Cookie": login.headers["set-cookie"].split(";", 1)[0]}
    memberships = httpx.get(f"{server_url}/api/v1/users/memberships", headers=cookie).json()
    assert [row["tenant"]["slug"] for row in memberships["rows"]] == ["development"]
    listed = httpx.get(
        f"{server_url}/api/v1/tenants/{tenants['development']}/workflows", headers=cookie
    )
    assert listed.status_code == 200, listed.text
    refused = httpx.get(
        f"{server_url}/api/v1/tenants/{tenants['staging']}/workflows", headers=cookie
    )
    assert refused.status_code in (401, 403), refused.text
    users = json.loads(team.hl("user", "list", "--output", "json").stdout)
    assert {"email": email, "tenants": {"development": "member"}} in users


def test_token_create_list_revoke(team: Project, tmp_path: Path) -> None:
    out = team.hl("token", "create", "--tenant", "staging", "--name", "ci", "--expires", "1h",
                  "--write", str(tmp_path / "ci.env")).stdout  # fmt: skip
    token_id = out.split()[1]
    settings = read_env(tmp_path / "ci.env")
    assert settings["HATCHET_CLIENT_TOKEN"] not in out
    assert stat.S_IMODE((tmp_path / "ci.env").stat().st_mode) == 0o600
    staging = settings["HATCHET_CLIENT_TENANT_ID"]
    assert api(settings, "GET", f"/api/v1/tenants/{staging}").status_code == 200
    rows = json.loads(team.hl("token", "list", "--tenant", "staging", "-o", "json").stdout)
    assert {(row["id"], row["name"], row["in_use"]) for row in rows} >= {(token_id, "ci", False)}
    assert any(row["in_use"] for row in rows)  # the one in .hatchet/staging.env
    team.hl("token", "revoke", token_id)
    deadline = time.monotonic() + 20  # the engine caches a token's row for 5 s
    while api(settings, "GET", f"/api/v1/tenants/{staging}").status_code == 200:
        assert time.monotonic() < deadline, "a revoked token is still accepted"
        time.sleep(1)
    assert api(settings, "GET", f"/api/v1/tenants/{staging}").status_code in (401, 403)
    rows = json.loads(team.hl("token", "list", "--tenant", "staging", "-o", "json").stdout)
    assert token_id not in {row["id"] for row in rows}
    kept = read_env(team.dir / ".hatchet" / "staging.env")
    assert api(kept, "GET", f"/api/v1/tenants/{staging}").status_code == 200


def test_env_for_one_developer_and_hatchet_profile(team: Project, tmp_path: Path) -> None:
    target = tmp_path / "carol.env"
    target.write_text("# mine\nOTHER=1\n")
    home = tmp_path / "home"
    (home / ".hatchet").mkdir(parents=True)
    profiles = home / ".hatchet" / "profiles.yaml"
    profiles.write_text("profiles:\n  cloud: {name: cloud, token: x}\ndefaultProfile: cloud\n")
    profiles.chmod(0o640)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "hatchet-local"), "env", "--tenant", "development",
         "--namespace", "dev-bob", "--write", str(target), "--hatchet-profile", "team-dev"],
        cwd=team.dir, env=team.env(HOME=str(home)), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = target.read_text()
    assert text.startswith("# mine\nOTHER=1\n")
    settings = read_env(target)
    assert settings["HATCHET_CLIENT_NAMESPACE"] == "dev-bob"
    dev = read_env(team.dir / ".hatchet" / "development.env")
    assert settings["HATCHET_CLIENT_TOKEN"] == dev["HATCHET_CLIENT_TOKEN"]
    assert settings["HATCHET_CLIENT_TOKEN"] not in proc.stdout + proc.stderr
    data = yaml.safe_load(profiles.read_text())
    assert data["defaultProfile"] == "cloud"
    assert data["profiles"]["cloud"] == {"name": "cloud", "token": "x"}
    profile = data["profiles"]["team-dev"]
    assert profile["token"] == dev["HATCHET_CLIENT_TOKEN"]
    assert profile["apiServerURL"] == dev["HATCHET_CLIENT_SERVER_URL"]
    assert profile["grpcHostPort"] == dev["HATCHET_CLIENT_HOST_PORT"]
    assert profile["tenantId"] == dev["HATCHET_CLIENT_TENANT_ID"]
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o640
    # Printing masks the token; --reveal shows it.
    printed = team.hl("env", "--tenant", "development", "--namespace", "dev-bob").stdout
    refused = team.hl("env", "--tenant", "development", "--namespace", "dev-carol", ok=False)
    assert refused.returncode == 2 and "not a namespace of tenant development" in refused.stderr
    assert "HATCHET_CLIENT_TOKEN=********" in printed
    assert (
        dev["HATCHET_CLIENT_TOKEN"] in team.hl("env", "--tenant", "development", "--reveal").stdout
    )


@pytest.fixture
def docker_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DockerProxy]:
    """A Docker context whose engine is reached through a socket of its own (a proxy to this
    host's engine), as a shared dev box's engine is: every docker and compose command of the
    test then goes through DOCKER_CONTEXT, and the proxy counts them."""
    proxy = DockerProxy(tmp_path / "devbox.sock").start()
    name = f"hl-devbox-{uuid.uuid4().hex[:6]}"
    subprocess.run(["docker", "context", "create", name, "--docker", f"host={proxy.docker_host}"],
                   check=True, capture_output=True)  # fmt: skip
    monkeypatch.setenv("DOCKER_CONTEXT", name)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    yield proxy
    monkeypatch.delenv("DOCKER_CONTEXT")
    subprocess.run(["docker", "context", "rm", "--force", name], capture_output=True, check=False)
    proxy.cut()


def test_advertised_stack_hands_out_its_host(
    rig_images: dict[str, str], tmp_path: Path, docker_context: DockerProxy
) -> None:
    """--advertise 127.0.0.2 on an engine reached through a Docker context: ports bound beyond
    loopback, tokens point at 127.0.0.2, and a worker elsewhere needs only the token."""
    project = Project(tmp_path / f"adv-{uuid.uuid4().hex[:6]}", tmp_path / "state", TEAM_CONFIG)
    name = project.stack
    try:
        project.hl("up", "--advertise", "127.0.0.2")
        assert docker_context.connections > 0  # the context's engine did the work
        info = project.status()
        assert info["dashboard_url"].startswith("http://127.0.0.2:")
        for path in [project.dir / ".env.hatchet", project.dir / ".hatchet" / "staging.env"]:
            settings = read_env(path)
            token = claims(settings["HATCHET_CLIENT_TOKEN"])
            assert token["server_url"] == info["dashboard_url"]
            assert token["grpc_broadcast_address"] == info["grpc_address"]
            assert token["grpc_broadcast_address"].startswith("127.0.0.2:")
        ports = subprocess.run(
            ["docker", "port", f"{name}-hatchet-lite-1"], capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
        assert "0.0.0.0:" in ports and "127.0.0.1:" not in ports
        # Only the token's own addresses: no HOST_PORT or SERVER_URL override in the env.
        staging = read_env(project.dir / ".hatchet" / "staging.env")
        only_token = {"HATCHET_CLIENT_TOKEN": staging["HATCHET_CLIENT_TOKEN"],
                      "HATCHET_CLIENT_TLS_STRATEGY": "none"}  # fmt: skip
        work = tmp_path / "remote-dev"
        work.mkdir()
        assert run_sdk_task(work, clean_env(**only_token), "advertised")["echo"] == "HELLO"
        assert_closed_to_strangers(project, info["dashboard_url"])
        project.hl("down", "--volumes", "--yes")
        assert labelled(f"io.hatchet-local.stack={name}")["containers"] == []
    finally:
        project.destroy()


def assert_closed_to_strangers(project: Project, server_url: str) -> None:
    """Issue #16: anyone who reaches an advertised stack could sign up and make tenants. Now
    an anonymous sign-up is refused, and so is a tenant made through the API (even by the
    admin), while `user create` and `tenant create` work through the engine's admin tool."""
    meta = httpx.get(f"{server_url}/api/v1/meta", timeout=10).json()
    assert (meta["allowSignup"], meta["allowCreateTenant"]) == (False, False)
    stranger = {"name": "eve", "email": f"eve-{uuid.uuid4().hex[:6]}@example.com",
                "password": "Str4ngerPassw0rd"}  # fmt: skip
    refused = httpx.post(f"{server_url}/api/v1/users/register", json=stranger, timeout=10)
    assert refused.status_code in (400, 401, 403), refused.text
    stranger_login = httpx.post(f"{server_url}/api/v1/users/login", json=stranger, timeout=10)
    assert stranger_login.status_code in (400, 401, 403)  # no such user was made
    admin = project.status("--reveal")
    credentials = {"email": admin["admin_email"], "password": admin["admin_password"]}
    login = httpx.post(f"{server_url}/api/v1/users/login", json=credentials, timeout=10)
    cookie = {"Cookie": login.headers["set-cookie"].split(";", 1)[0]}
    made = httpx.post(f"{server_url}/api/v1/tenants", headers=cookie, timeout=10,
                      json={"name": "by-api", "slug": "by-api"})  # fmt: skip
    assert made.status_code == 400 and "disabled" in made.text, made.text

    project.hl("tenant", "create", "qa")
    email = f"dev-{uuid.uuid4().hex[:6]}@example.com"
    out = project.hl("user", "create", email, "--tenant", "qa", "--reveal").stdout
    password = out.split("password ", 1)[1].split()[0]
    login = httpx.post(f"{server_url}/api/v1/users/login", timeout=10,
                       json={"email": email, "password": password})  # fmt: skip
    assert login.status_code == 200, login.text
    cookie = {"Cookie": login.headers["set-cookie"].split(";", 1)[0]}
    rows = httpx.get(f"{server_url}/api/v1/users/memberships", headers=cookie, timeout=10).json()
    assert [row["tenant"]["slug"] for row in rows["rows"]] == ["qa"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenants:\n  Dev_Team: {}\n", "tenants.Dev_Team: expected a tenant name of lowercase"),
        (
            "tenants:\n  dev:\n    namespaces: [dev-alice, dev alice]\n",
            "tenants.dev.namespaces[1]: expected a namespace name of lowercase",
        ),
        (
            "tenants:\n  dev:\n    namespaces: [dev-alice, dev-alice]\n",
            "tenants.dev.namespaces[1]: expected a namespace not already listed",
        ),
        (
            "tenants:\n  dev: {}\n  staging: {}\n  dev: {}\n",
            "line 4: invalid YAML (duplicate key 'dev')",
        ),
        ("tenants:\n  dev:\n    namespace: [a]\n", "tenants.dev.namespace: expected one of"),
    ],
)
def test_bad_team_files_stop_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    project = Project(tmp_path / "bad", tmp_path / "state", "")
    (project.dir / "hatchet-local.yaml").write_text(text)
    proc = project.hl("up", ok=False, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "state" / "stacks").exists()  # nothing started
