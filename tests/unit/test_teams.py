"""Teams without Docker: the tenants schema, the REST client and the reconciliation over a
fake Hatchet API (httpx.MockTransport), the Hatchet CLI profile file, --advertise/--expose."""

from __future__ import annotations

import io
import json
import re
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hatchet_local import hatchet_api, server, teams, tokens
from hatchet_local.client_settings import token_claims
from hatchet_local.config import load_config
from hatchet_local.console import Console
from hatchet_local.context import Context
from hatchet_local.defaults import ADMIN_EMAIL
from hatchet_local.errors import ConfigError, HatchetApiError, TenantNotFound
from hatchet_local.names import default_namespace
from hatchet_local.profiles import write_profile
from hatchet_local.render import StackSpec
from hatchet_local.stack import Stack, preview
from hatchet_local.state import StackDir, StackRecord
from tests.unit.fake_api import ADMIN_PASSWORD, FakeHatchetApi
from tests.unit.fakes import FakeRunner, answering, unreachable

SERVER = "http://localhost:8080"

# --- configuration -------------------------------------------------------------------------


def load(tmp_path: Path, text: str) -> Any:
    (tmp_path / "hatchet-local.yaml").write_text(text)
    return load_config(tmp_path, environ={})


def config_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.message


def test_tenants_and_namespaces_are_read_in_order(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "tenants:\n  development:\n    namespaces: [dev-alice, dev-bob]\n  staging: {}\n  qa:\n",
    )
    assert {slug: spec.namespaces for slug, spec in config.tenants.items()} == {
        "development": ("dev-alice", "dev-bob"),
        "staging": (),
        "qa": (),
    }
    assert list(config.tenants) == ["development", "staging", "qa"]


def test_no_tenants_by_default(tmp_path: Path) -> None:
    config = load(tmp_path, "stack: app\n")
    assert dict(config.tenants) == {}
    assert config.advertise is None and config.expose is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenants:\n  Dev: {}\n", "tenants.Dev: expected a tenant name of lowercase"),
        ("tenants:\n  dev_team: {}\n", "tenants.dev_team: expected a tenant name"),
        ("tenants:\n  -dev: {}\n", "tenants.-dev: expected a tenant name"),
        ("tenants:\n  " + "a" * 64 + ": {}\n", "expected a tenant name"),
        (
            "tenants:\n  dev:\n    namespaces: [dev-alice, Dev.Bob]\n",
            "tenants.dev.namespaces[1]: expected a namespace name of lowercase letters and "
            "digits in words joined by '-', at most 63 characters, got 'Dev.Bob'",
        ),
        (
            "tenants:\n  dev:\n    namespaces: [a, b, a]\n",
            "tenants.dev.namespaces[2]: expected a namespace not already listed for tenant dev,"
            " got 'a'",
        ),
        (
            "tenants:\n  dev:\n    users: [x]\n",
            "tenants.dev.users: expected one of namespaces, members, environment",
        ),
        (
            "tenants:\n  dev:\n    namespaces: dev-alice\n",
            "tenants.dev.namespaces: expected a list",
        ),
        ("tenants:\n  dev: [a]\n", "tenants.dev: expected a mapping with 'namespaces: [...]'"),
        ("tenants: [dev]\n", "tenants: expected a mapping of tenant names"),
        ("tenants:\n  dev: {}\n  dev: {}\n", "line 3: invalid YAML (duplicate key 'dev')"),
        ("stack: a\nstack: b\n", "line 2: invalid YAML (duplicate key 'stack')"),
        ("tenant: {}\n", "tenant: unknown key; did you mean tenants?"),
        ("advertise: http://host:80\n", "advertise: expected a host name or IP address"),
    ],
)
def test_bad_team_settings_name_the_entry(tmp_path: Path, text: str, message: str) -> None:
    error = config_error(tmp_path, text)
    assert error.startswith(str(tmp_path / "hatchet-local.yaml") + ": ")
    assert message in error
    assert "\n" not in error


def test_advertise_and_expose_from_file_and_flags(tmp_path: Path) -> None:
    (tmp_path / "hatchet-local.yaml").write_text("advertise: devbox.lan\n")
    config = load_config(tmp_path, environ={}, flags={"expose": True})
    assert (config.advertise, config.expose) == ("devbox.lan", True)
    config = load_config(tmp_path, environ={"HATCHET_LOCAL_ADVERTISE": "10.0.0.5"})
    assert config.advertise == "10.0.0.5"


def _context(tmp_path: Path, http: httpx.Client | None = None) -> Context:
    runner = FakeRunner()
    runner.on("docker", "image", "inspect", returncode=1, stderr="Error: No such image\n")
    return Context(
        runner=runner,
        console=Console(io.StringIO()),
        http=http or httpx.Client(),
        state_root=tmp_path / "state",
    )


@pytest.mark.parametrize(
    ("settings", "bind", "host"),
    [
        ("", "127.0.0.1", "localhost"),
        ("expose: true\n", "0.0.0.0", "localhost"),
        ("advertise: 10.1.2.3\n", "0.0.0.0", "10.1.2.3"),
    ],
)
def test_ports_bind_beyond_loopback_only_when_asked(
    tmp_path: Path, settings: str, bind: str, host: str
) -> None:
    config = load(tmp_path, "stack: adv\nports: {dashboard: 18080, grpc: 17077}\n" + settings)
    data = yaml.safe_load(preview(config, _context(tmp_path)))
    engine = data["services"]["hatchet-lite"]
    assert engine["ports"] == [f"{bind}:18080:8888", f"{bind}:17077:7077"]
    assert engine["environment"]["SERVER_URL"] == f"http://{host}:18080"
    assert engine["environment"]["SERVER_GRPC_BROADCAST_ADDRESS"] == f"{host}:17077"


@pytest.fixture
def api() -> FakeHatchetApi:
    return FakeHatchetApi(server_url=SERVER)


@pytest.fixture
def team(
    tmp_path: Path, api: FakeHatchetApi, monkeypatch: pytest.MonkeyPatch
) -> tuple[Context, Stack]:
    """A Context whose HTTP goes to `api`, and the stack `team` that the team commands load,
    its admin password the one `api` knows."""
    ctx = _context(tmp_path, api.client())
    stack_dir = StackDir(ctx.state_root, "team")
    record = StackRecord("team", str(tmp_path), "2026-01-01T00:00:00+00:00", "0", "v0", "postgres",
                         ports={"dashboard": 8080, "grpc": 7077})  # fmt: skip
    stack_dir.save(record)
    (stack_dir.path / "secrets.env").write_text(f"HATCHET_ADMIN_PASSWORD={ADMIN_PASSWORD}\n")
    spec = StackSpec("team", {}, "postgres", True, 8080, 7077, "missing")
    secrets = {"HATCHET_ADMIN_PASSWORD": ADMIN_PASSWORD}
    stack = Stack(stack_dir, record, spec, compose=None, secrets=secrets)  # type: ignore[arg-type]
    monkeypatch.setattr(server, "load_stack", lambda *a, **k: stack)
    return ctx, stack


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def team_config(project: Path, text: str) -> Any:
    (project / "hatchet-local.yaml").write_text("stack: team\n" + text)
    return load_config(project, environ={})


TEAM = "tenants:\n  development:\n    namespaces: [dev-alice, dev-bob]\n  staging: {}\n"


# --- the REST client -----------------------------------------------------------------------


def test_login_keeps_the_session_cookie_out_of_the_shared_jar(api: FakeHatchetApi) -> None:
    http = api.client()
    session = hatchet_api.login(http, SERVER, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert not http.cookies  # every Session carries its own cookie
    assert [t.slug for t in session.tenants()] == ["default"]
    assert api.requests[-1].headers["cookie"] == "hatchet=session-admin@example.com"


def test_api_errors_are_one_line_with_the_apis_own_words(api: FakeHatchetApi) -> None:
    with pytest.raises(HatchetApiError) as info:  # signing up an email that has an account
        hatchet_api.register(api.client(), SERVER, ADMIN_EMAIL, "Admin", "An0therPassw0rd")
    assert (
        info.value.message == "POST /api/v1/users/register answered HTTP 400: registration failed"
    )
    assert info.value.exit_code == 13


def test_an_unreachable_api_says_so() -> None:
    http = answering(unreachable())
    with pytest.raises(HatchetApiError, match="ConnectError: connection refused; is the stack up"):
        hatchet_api.login(http, SERVER, "a@b.c", "x")


# --- reconciliation ------------------------------------------------------------------------


def test_up_creates_missing_tenants_and_writes_private_files(
    project: Path, api: FakeHatchetApi, team: tuple[Context, Stack]
) -> None:
    ctx, stack = team
    result = teams.reconcile(team_config(project, TEAM), stack, ctx)
    assert result.created == ["development", "staging"]
    assert result.minted == ["development", "staging"]
    team_dir = project / ".hatchet"
    assert stat.S_IMODE(team_dir.stat().st_mode) == 0o700
    names = sorted(p.name for p in team_dir.iterdir())
    assert names == ["development.dev-alice.env", "development.dev-bob.env",
                     "development.env", "staging.env"]  # fmt: skip
    for name in names:
        assert stat.S_IMODE((team_dir / name).stat().st_mode) == 0o600
    alice = (team_dir / "development.dev-alice.env").read_text()
    assert "HATCHET_CLIENT_NAMESPACE=dev-alice\n" in alice
    assert f"HATCHET_CLIENT_TENANT_ID={api.tenants['development']}\n" in alice
    assert "HATCHET_CLIENT_HOST_PORT=localhost:7077\n" in alice  # from the token's claims
    assert "NAMESPACE" not in (team_dir / "staging.env").read_text()
    kept = json.loads((stack.dir.path / "tenants.json").read_text())
    assert stat.S_IMODE((stack.dir.path / "tenants.json").stat().st_mode) == 0o600
    assert set(kept) == {"development", "staging"}


def test_a_second_run_creates_nothing_and_keeps_tokens(
    project: Path, api: FakeHatchetApi, team: tuple[Context, Stack]
) -> None:
    ctx, stack = team
    teams.reconcile(team_config(project, TEAM), stack, ctx)
    before = (project / ".hatchet" / "staging.env").read_text()
    api.requests.clear()
    again = teams.reconcile(team_config(project, TEAM), stack, ctx)
    assert (again.created, again.minted) == ([], [])
    assert not api.calls("POST", "/api/v1/tenants") and not api.calls("POST", ".*/api-tokens")
    assert (project / ".hatchet" / "staging.env").read_text() == before

    added = teams.reconcile(team_config(project, TEAM + "  qa: {}\n"), stack, ctx)
    assert (added.created, added.minted) == (["qa"], ["qa"])
    assert (project / ".hatchet" / "staging.env").read_text() == before


def test_a_revoked_token_is_replaced_and_user_lines_kept(
    project: Path, team: tuple[Context, Stack]
) -> None:
    ctx, stack = team
    config = team_config(project, "tenants:\n  staging: {}\n")
    teams.reconcile(config, stack, ctx)
    path = project / ".hatchet" / "staging.env"
    path.write_text("# mine\nFOO=1\n" + path.read_text())
    old = stack.dir.tenant_tokens()["staging"].token
    tokens.revoke_token(server.connect_config(config, ctx), str(token_claims(old)["token_id"]))
    assert "staging" not in stack.dir.tenant_tokens()  # a kept token is forgotten on revoke
    result = teams.reconcile(config, stack, ctx)
    assert result.minted == ["staging"]
    text = path.read_text()
    assert text.startswith("# mine\nFOO=1\n") and old not in text


def test_tenants_absent_from_the_file_are_left_alone(
    project: Path, api: FakeHatchetApi, team: tuple[Context, Stack]
) -> None:
    ctx, stack = team
    teams.reconcile(team_config(project, TEAM), stack, ctx)
    teams.reconcile(team_config(project, "tenants:\n  staging: {}\n"), stack, ctx)
    assert "development" in api.tenants
    assert (project / ".hatchet" / "development.env").exists()


# --- users ---------------------------------------------------------------------------------


def test_user_joins_only_the_tenants_named(
    project: Path, api: FakeHatchetApi, team: tuple[Context, Stack]
) -> None:
    ctx, stack = team
    config = team_config(project, TEAM)
    teams.reconcile(config, stack, ctx)
    password, joined = teams.create_user(config, ctx, "bob@example.com", ["development"], "member")
    assert joined == ["development"]
    assert api.users["bob@example.com"] == password
    assert api.members[api.tenants["development"]]["bob@example.com"] == "MEMBER"
    assert "bob@example.com" not in api.members[api.tenants["staging"]]
    # Again: no new sign-up, no new invite, the same password.
    api.requests.clear()
    assert teams.create_user(config, ctx, "bob@example.com", ["development"], "member") == (
        password,
        [],
    )
    assert not api.calls("POST", "/api/v1/users/register")
    assert not api.calls("POST", ".*/invites")
    rows = teams.list_users(config, ctx)
    assert {"email": "bob@example.com", "tenants": {"development": "member"}} in [
        row.as_dict() for row in rows
    ]


@pytest.mark.parametrize(
    "case",
    [
        ("not-an-email", ["development"], "member", "expected an email address"),
        ("a@example.com", [], "member", "name at least one --tenant"),
        ("a@example.com", ["development"], "owner", "--role: expected one of member, admin"),
    ],
)
def test_bad_user_requests_are_refused_before_any_call(
    tmp_path: Path, project: Path, api: FakeHatchetApi, case: tuple[str, list[str], str, str]
) -> None:
    email, tenants, role, message = case
    ctx = _context(tmp_path, api.client())
    with pytest.raises(ConfigError, match=re.escape(message)):
        teams.create_user(team_config(project, ""), ctx, email, tenants, role)
    assert api.requests == []


def test_unknown_tenant_says_how_to_make_it(project: Path, team: tuple[Context, Stack]) -> None:
    ctx, _ = team
    with pytest.raises(TenantNotFound, match="hatchet-local tenant create prod"):
        teams.tenant_token(team_config(project, ""), ctx, "prod")


def test_default_namespace_follows_the_convention() -> None:
    assert default_namespace("Alice.Smith") == "dev-alice-smith"
    with pytest.raises(ConfigError):
        default_namespace("___")


# --- ~/.hatchet/profiles.yaml --------------------------------------------------------------


def test_profile_is_added_keeping_other_profiles_and_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / ".hatchet" / "profiles.yaml"
    path.parent.mkdir()
    path.write_text("profiles:\n  cloud: {name: cloud, token: x}\ndefaultProfile: cloud\n")
    path.chmod(0o640)
    claims = {"exp": 2000000000, "server_url": SERVER, "grpc_broadcast_address": "localhost:7077"}
    assert write_profile(path, "local", "eyJ.tok", claims, "t-1") is True
    data = yaml.safe_load(path.read_text())
    assert data["defaultProfile"] == "cloud"
    assert data["profiles"]["cloud"] == {"name": "cloud", "token": "x"}
    assert data["profiles"]["local"] == {
        "tenantId": "t-1", "name": "local", "token": "eyJ.tok",
        "expiresAt": "2033-05-18T03:33:20Z", "apiServerURL": SERVER,
        "grpcHostPort": "localhost:7077", "tlsStrategy": "none",
    }  # fmt: skip
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert write_profile(path, "local", "eyJ.tok2", claims, "t-1") is False


def test_a_new_profile_file_is_private_and_becomes_the_default(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".hatchet" / "profiles.yaml"
    write_profile(path, "local", "eyJ.tok", {}, "t-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert yaml.safe_load(path.read_text())["defaultProfile"] == "local"


def test_a_broken_profile_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text("profiles: [a, b]\n")
    with pytest.raises(ConfigError, match="expected 'profiles:' as a mapping"):
        write_profile(path, "local", "eyJ.tok", {}, "t-1")
    assert path.read_text() == "profiles: [a, b]\n"


# --- the commands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tenant", "create", "Bad_Name"], "tenant 'Bad_Name': expected lowercase letters"),
        (["env", "--tenant", "Staging"], "--tenant 'Staging': expected lowercase letters"),
        (["token", "create", "--expires", "soon"], "--expires: expected a duration like 90s"),
        (["user", "create", "x", "--tenant", "dev"], "expected an email address, got 'x'"),
    ],
)
def test_team_commands_refuse_bad_input_before_touching_a_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from hatchet_local import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HATCHET_LOCAL_STATE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(cli.app, args)
    assert isinstance(result.exception, ConfigError), result.output
    assert message in result.exception.message
    assert not (tmp_path / "state" / "stacks").exists()


def test_a_user_of_wiped_data_is_signed_up_again(
    project: Path, api: FakeHatchetApi, team: tuple[Context, Stack]
) -> None:
    ctx, stack = team
    config = team_config(project, TEAM)
    teams.reconcile(config, stack, ctx)
    first, _ = teams.create_user(config, ctx, "bob@example.com", ["staging"], "admin")
    del api.users["bob@example.com"]  # as after `reset`: the stored password is of old data
    second, joined = teams.create_user(config, ctx, "bob@example.com", ["development"], "admin")
    assert second != first and api.users["bob@example.com"] == second
    assert joined == ["development"]
    assert api.members[api.tenants["development"]]["bob@example.com"] == "ADMIN"


def test_data_deleted_takes_the_team_state_with_it(tmp_path: Path) -> None:
    stack_dir = StackDir(tmp_path, "s")
    stack_dir.path.mkdir(parents=True)
    for name in ("token.json", "tenants.json", "users.json"):
        (stack_dir.path / name).write_text("{}")
    stack_dir.forget_data()
    assert sorted(p.name for p in stack_dir.path.iterdir()) == []
