"""A stack other machines reach is closed to strangers (issue #16): its API makes no login
and no tenant, so `user create`, `tenant create` and the tenants `up` declares are made by the
engine's admin tool in its container, with the values passed by name only."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from hatchet_local import teams
from hatchet_local.compose import Compose
from hatchet_local.config import load_config
from hatchet_local.console import Console
from hatchet_local.context import Context
from hatchet_local.defaults import ADMIN_EMAIL
from hatchet_local.render import StackSpec
from hatchet_local.stack import Stack, preview
from hatchet_local.state import StackDir, StackRecord
from tests.unit.fake_api import ADMIN_PASSWORD, FakeHatchetApi
from tests.unit.fakes import FakeRunner

SERVER = "http://localhost:8080"


@pytest.fixture
def api() -> FakeHatchetApi:
    return FakeHatchetApi(server_url=SERVER).close()


@pytest.fixture
def ctx(tmp_path: Path, api: FakeHatchetApi) -> Context:
    runner = FakeRunner()
    runner.on("docker", "image", "inspect", returncode=1, stderr="Error: No such image\n")
    runner.on("docker", "version", "--format", "{{.Server.APIVersion}}", stdout="1.41\n")
    runner.on_call("/hatchet-admin", "seed", handler=api.seed)
    return Context(runner=runner, console=Console(io.StringIO()), http=api.client(),
                   state_root=tmp_path / "state")  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Stack:
    stack_dir = StackDir(ctx.state_root, "team")
    record = StackRecord("team", str(tmp_path), "2026-01-01T00:00:00+00:00", "0", "v0",
                         "postgres", ports={"dashboard": 8080, "grpc": 7077},
                         advertise="devbox.lan")  # fmt: skip
    stack_dir.save(record)
    (stack_dir.path / "secrets.env").write_text(f"HATCHET_ADMIN_PASSWORD={ADMIN_PASSWORD}\n")
    stack_dir.secrets_file.chmod(0o600)
    spec = StackSpec("team", {}, "postgres", True, 8080, 7077, "missing")
    compose = Compose(ctx.runner, base=["docker", "compose"], project="team",
                      file=stack_dir.compose_file, env_file=stack_dir.secrets_file,
                      redact=ctx.redact)  # fmt: skip
    made = Stack(stack_dir, record, spec, compose, {"HATCHET_ADMIN_PASSWORD": ADMIN_PASSWORD})
    monkeypatch.setattr("hatchet_local.server.load_stack", lambda *a, **k: made)
    return made


def team_config(project: Path, text: str) -> Any:
    project.mkdir(exist_ok=True)
    (project / "hatchet-local.yaml").write_text("stack: team\n" + text)
    return load_config(project, environ={})


@pytest.mark.parametrize(
    ("settings", "closed"), [("", False), ("expose: true\n", True), ("advertise: a.lan\n", True)]
)
def test_only_a_stack_others_reach_closes_sign_up_and_tenant_creation(
    tmp_path: Path, ctx: Context, settings: str, closed: bool
) -> None:
    config = team_config(tmp_path / "p", "ports: {dashboard: 18080, grpc: 17077}\n" + settings)
    environment = yaml.safe_load(preview(config, ctx))["services"]["hatchet-lite"]["environment"]
    wanted = {"SERVER_ALLOW_SIGNUP": "f", "SERVER_ALLOW_CREATE_TENANT": "f"}
    assert {key: environment.get(key) for key in wanted} == (
        wanted if closed else dict.fromkeys(wanted)
    )


def test_declared_tenants_are_made_by_the_admin_tool(
    tmp_path: Path, ctx: Context, api: FakeHatchetApi, stack: Stack
) -> None:
    config = team_config(tmp_path / "p", "tenants:\n  staging: {}\n  qa: {}\n")
    result = teams.reconcile(config, stack, ctx)
    assert result.created == ["staging", "qa"]
    assert api.calls("POST", "/api/v1/tenants") == []  # the API would refuse
    assert [(seed["DEFAULT_TENANT_SLUG"], seed["ADMIN_EMAIL"]) for seed in api.seeds] == [
        ("staging", ADMIN_EMAIL), ("qa", ADMIN_EMAIL),
    ]  # fmt: skip
    assert api.members[api.tenants["qa"]] == {ADMIN_EMAIL: "OWNER"}
    assert set(stack.dir.tenant_tokens()) == {"staging", "qa"}
    (call,) = ctx.runner.called("/hatchet-admin", "seed")[:1]  # type: ignore[attr-defined]
    assert "-e" in call.argv and ADMIN_PASSWORD not in call.argv


def test_tenant_create_works_on_a_closed_stack(
    tmp_path: Path, ctx: Context, api: FakeHatchetApi, stack: Stack
) -> None:
    tenant = teams.create_tenant(team_config(tmp_path / "p", ""), ctx, "qa")
    assert (tenant.slug, tenant.id) == ("qa", api.tenants["qa"])
    assert api.calls("POST", "/api/v1/tenants") == []


def test_user_create_makes_the_login_with_the_admin_tool(
    tmp_path: Path, ctx: Context, api: FakeHatchetApi, stack: Stack
) -> None:
    config = team_config(tmp_path / "p", "tenants:\n  qa: {}\n")
    teams.reconcile(config, stack, ctx)
    password, joined = teams.create_user(config, ctx, "bob@example.com", ["qa"], "member")
    assert joined == ["qa"]
    assert api.users["bob@example.com"] == password
    assert api.calls("POST", "/api/v1/users/register") == []
    login = {"ADMIN_EMAIL": "bob@example.com", "ADMIN_NAME": "bob", "ADMIN_PASSWORD": password}
    assert api.seeds[-1] == {**login, "DEFAULT_TENANT_SLUG": "default"}
    assert "bob@example.com" not in api.members[api.tenants["default"]]  # joins no tenant by it
    assert api.members[api.tenants["qa"]]["bob@example.com"] == "MEMBER"
    assert password in ctx.redact.secrets()


def test_an_open_stack_still_signs_up_through_the_api(tmp_path: Path, stack: Stack) -> None:
    api = FakeHatchetApi(server_url=SERVER)
    runner = FakeRunner()
    ctx = Context(runner=runner, console=Console(io.StringIO()), http=api.client(),
                  state_root=tmp_path / "state")  # fmt: skip
    config = team_config(tmp_path / "p", "tenants:\n  qa: {}\n")
    teams.reconcile(config, stack, ctx)
    teams.create_user(config, ctx, "bob@example.com", ["qa"], "member")
    assert len(api.calls("POST", "/api/v1/users/register")) == 1
    assert len(api.calls("POST", "/api/v1/tenants")) == 1
    assert api.seeds == []
