"""A Hatchet server hatchet-local did not start (issue #14), without Docker: the `server:`
settings, the admin's session, plan and apply, tokens (rotate, read-only), members,
archiving, and every refusal, over the fake Hatchet API (tests/unit/fake_api.py)."""

from __future__ import annotations

import io
import ssl
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchet_local import hatchet_api, plan, server, teams, tokens
from hatchet_local.config import Config, load_config
from hatchet_local.console import Console
from hatchet_local.context import Context
from hatchet_local.errors import (
    ConfigError,
    LoginRefused,
    RateLimited,
    ServerRefuses,
    ServerUnreachable,
    TenantAccessDenied,
    TlsFailure,
)
from tests.unit.fake_api import ADMIN_PASSWORD, FakeHatchetApi
from tests.unit.fakes import FakeRunner, answering, unreachable

URL = "https://hatchet.example.com"
ADMIN = "ops@example.com"  # server.email in SEED

SEED = """
server:
  url: https://hatchet.example.com
  email: ops@example.com
tenants:
  development:
    namespaces: [dev-alice, dev-bob, dev-charlie]
    members: {alice@example.com: member, bob@example.com: admin}
  staging: {}
  production:
    members: {carol@example.com: viewer}
"""


class World:
    """A project whose hatchet-local.yaml points at the fake server; a Context over it."""

    def __init__(self, tmp_path: Path, fake: FakeHatchetApi, text: str = SEED) -> None:
        self.fake = fake
        self.project = tmp_path / "project"
        self.project.mkdir(exist_ok=True)
        (self.project / "hatchet-local.yaml").write_text(text)
        self.verify: list[object] = []
        self.asked: list[str] = []
        self.stdin = ""
        self.prompt_answer: str | None = None

        def make_http(verify: bool | str) -> httpx.Client:
            self.verify.append(verify)
            return fake.client()

        def prompt(text: str) -> str | None:
            self.asked.append(text)
            return self.prompt_answer

        self.ctx = Context(
            runner=FakeRunner(), console=Console(io.StringIO()), http=fake.client(),
            state_root=tmp_path / "state", make_http=make_http, prompt_password=prompt,
            read_stdin=lambda: self.stdin,
        )  # fmt: skip

    def config(self, **flags: object) -> Config:
        return load_config(self.project, environ={}, flags=flags)

    def connect(self, **kwargs: Any) -> server.Connection:
        env = kwargs.pop("environ", {"HATCHET_LOCAL_SERVER_PASSWORD": ADMIN_PASSWORD})
        return server.connect(server.target(self.config(), self.ctx), self.ctx, environ=env,
                              **kwargs)  # fmt: skip

    def apply(self, *, yes: bool = False) -> plan.ApplyResult:
        conn, config = self.connect(), self.config()
        return plan.apply(conn, config, plan.make_plan(conn, config), yes=yes)


@pytest.fixture
def fake() -> FakeHatchetApi:
    """A central instance: its admin, no tenants yet, tokens that claim its addresses."""
    return FakeHatchetApi(users={ADMIN: ADMIN_PASSWORD}, tenants={}, server_url=URL,
                          grpc_address="grpc.example.com:443")  # fmt: skip


@pytest.fixture
def world(tmp_path: Path, fake: FakeHatchetApi) -> World:
    return World(tmp_path, fake)


# --- settings ------------------------------------------------------------------------------


def test_server_settings_follow_the_usual_precedence(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "hatchet-local.yaml").write_text(
        "server: {url: 'https://file.example.com/', email: A@Example.com, ca_bundle: ca.pem}\n"
    )
    config = load_config(tmp_path, environ={})
    assert config.server.url == "https://file.example.com"
    assert config.server.email == "a@example.com"
    assert config.server.ca_bundle == tmp_path / "ca.pem"
    assert config.server.token_lifetime == "7776000s" and not config.server.insecure
    env = {
        "HATCHET_LOCAL_SERVER_URL": "https://env.example.com",
        "HATCHET_LOCAL_SERVER_INSECURE": "true",
        "HATCHET_LOCAL_SERVER_PASSWORD": "x",
    }
    config = load_config(tmp_path, environ=env)
    assert (config.server.url, config.server.insecure) == ("https://env.example.com", True)
    config = load_config(tmp_path, environ=env, flags={"server.url": "https://flag.example.com"})
    assert config.server.url == "https://flag.example.com"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server: {password: hunter2}\n", "server.password: a password never goes in the file"),
        ("server: {url: 'hatchet.example.com'}\n", "server.url: expected an https:// (or"),
        ("server: {ca_bundle: nope.pem}\n", "server.ca_bundle: expected a PEM file"),
        ("server: {grpc: 'grpc.example.com'}\n", "server.grpc: expected host:port"),
        ("server: {email: ops}\n", "server.email: expected an email address"),
        ("server: {token_lifetime: forever}\n", "server.token_lifetime: expected a duration"),
        ("tenants: {dev: {members: {bob@x.io: boss}}}\n", "expected a role: owner, admin"),
        ("tenants: {dev: {members: {bob: member}}}\n", "tenants.dev.members.bob: expected an"),
        ("tenants: {dev: {environment: prod}}\n", "tenants.dev.environment: expected one of"),
        ("tenants: {dev: {users: [x]}}\n", "tenants.dev.users: expected one of namespaces, "),
    ],
)
def test_bad_server_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "hatchet-local.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ={})
    assert message in info.value.message and "\n" not in info.value.message
    assert "hunter2" not in info.value.message


def test_production_is_by_name_or_environment(tmp_path: Path) -> None:
    (tmp_path / "hatchet-local.yaml").write_text(
        "tenants: {production: {}, live: {environment: production}, staging: {}}\n"
    )
    tenants = load_config(tmp_path, environ={}).tenants
    assert [slug for slug, spec in tenants.items() if spec.production(slug)] == [
        "production", "live",
    ]  # fmt: skip


# --- the session ---------------------------------------------------------------------------


def test_login_keeps_a_private_session_per_server_and_reuses_it(world: World) -> None:
    conn = world.connect()
    assert world.verify == [True]  # TLS verified against the system's CAs
    session_file = conn.store.session_file
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(session_file.parent.stat().st_mode) == 0o700
    assert session_file.parent.name.startswith("hatchet.example.com-443-")
    assert ADMIN_PASSWORD not in session_file.read_text()
    logins = len(world.fake.calls("POST", "/api/v1/users/login"))
    world.connect(environ={})  # no password needed while the session works
    assert len(world.fake.calls("POST", "/api/v1/users/login")) == logins
    world.fake.sessions.clear()  # the server forgot it: log in again
    world.connect()
    assert len(world.fake.calls("POST", "/api/v1/users/login")) == logins + 1


def test_password_from_stdin_or_a_prompt_never_a_flag(world: World) -> None:
    world.stdin = ADMIN_PASSWORD
    world.connect(environ={}, password_stdin=True)
    world.ctx.state_root.joinpath("servers").rename(world.ctx.state_root / "old")
    world.prompt_answer = ADMIN_PASSWORD
    world.connect(environ={})
    assert world.asked == [f"Password for {ADMIN} at {URL}: "]


def test_no_password_and_no_terminal_says_how(world: World) -> None:
    with pytest.raises(LoginRefused, match="set HATCHET_LOCAL_SERVER_PASSWORD, pipe it to") as info:
        world.connect(environ={})
    assert info.value.exit_code == 17
    assert not world.fake.calls("POST", "/api/v1/users/login")


def test_wrong_password_is_one_line_and_keeps_nothing(world: World) -> None:
    with pytest.raises(LoginRefused, match=r"wrong email or password for ops@example\.com"):
        world.connect(environ={"HATCHET_LOCAL_SERVER_PASSWORD": "Wrong1234567"})
    assert not (world.ctx.state_root / "servers").exists()


def test_sso_only_server_is_refused_before_asking_a_password(world: World) -> None:
    world.fake.meta["auth"] = {"schemes": ["google"]}
    with pytest.raises(LoginRefused, match=r"password login is off .* google only"):
        world.connect()
    assert world.asked == [] and not world.fake.calls("POST", "/api/v1/users/login")


@pytest.mark.parametrize(
    ("header", "said"),
    [("42", "retry in 42 s (as the server asks)"),
     (None, "retry in 10 s (the server named no time)")],
)  # fmt: skip
def test_rate_limited_login_says_when_to_retry(world: World, header: str | None, said: str) -> None:
    world.fake.login_limit, world.fake.retry_after = 0, header
    with pytest.raises(RateLimited) as info:
        world.connect()
    assert said in info.value.message and info.value.exit_code == 18


def test_ca_bundle_and_insecure_reach_the_http_client(world: World, tmp_path: Path) -> None:
    ca = world.project / "ca.pem"
    ca.write_text("x")
    env = {"HATCHET_LOCAL_SERVER_PASSWORD": ADMIN_PASSWORD}
    for flags in ({"server.ca_bundle": Path("ca.pem")}, {"server.insecure": True}):
        server.connect(server.target(world.config(**flags), world.ctx), world.ctx, environ=env)
    assert world.verify == [str(ca), False]


def _cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, message)
    error.verify_code, error.verify_message = code, message
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "message"),
    [
        (_cert_error(20, "unable to get local issuer certificate"), TlsFailure,
         "is not trusted (unable to get local issuer certificate); give its CA with server.ca"),
        (_cert_error(62, "Hostname mismatch, certificate is not valid for 'x'"), TlsFailure,
         "is not valid for host hatchet.example.com"),
        (ConnectionRefusedError(111, "Connection refused"), ServerUnreachable,
         "failed: ConnectError: [Errno 111] Connection refused; is the server up"),
    ],
)  # fmt: skip
def test_transport_failures_are_one_line_each(
    exc: Exception, kind: type[Exception], message: str
) -> None:
    with pytest.raises(kind) as info:
        hatchet_api.server_info(answering(unreachable(exc)), URL, server.REMOTE_HINT)
    assert message in str(info.value) and "\n" not in str(info.value)


# --- plan and apply ------------------------------------------------------------------------


def test_plan_shows_everything_and_changes_nothing(world: World) -> None:
    world.fake.add_tenant("legacy")
    made = plan.make_plan(world.connect(), world.config())
    actions = [(s.action, s.tenant, s.email, s.production) for s in made.steps]
    assert actions == [
        ("create-tenant", "development", "", False), ("mint-token", "development", "", False),
        ("invite", "development", "alice@example.com", False),
        ("invite", "development", "bob@example.com", False),
        ("create-tenant", "staging", "", False), ("mint-token", "staging", "", False),
        ("create-tenant", "production", "", False), ("mint-token", "production", "", True),
        ("invite", "production", "carol@example.com", True),
    ]  # fmt: skip
    assert [n.kind for n in made.notes] == ["undeclared-tenant"]
    assert world.fake.writes() == []


def test_apply_is_idempotent_and_production_waits_for_yes(world: World) -> None:
    first = world.apply()
    assert first.created == ["development", "staging", "production"]
    assert first.minted == ["development", "staging"]
    assert [s.detail for s in first.skipped] == [
        "mint the token kept for production", "invite carol@example.com to production as viewer",
    ]  # fmt: skip
    assert world.fake.live_tokens("production") == []
    second = world.apply(yes=True)
    assert (second.created, second.minted) == ([], ["production"])
    assert second.invited == ["carol@example.com -> production (viewer)"]
    writes = len(world.fake.writes())
    third = world.apply(yes=True)
    assert (third.created, third.minted, third.invited, third.skipped) == ([], [], [], [])
    assert len(world.fake.writes()) == writes  # nothing changed the third time
    assert {n.kind for n in third.notes} == {"pending-invite"}


def test_role_changes_lowering_is_destructive(world: World) -> None:
    world.apply(yes=True)
    dev = world.fake.tenants["development"]
    world.fake.invites.clear()
    world.fake.members[dev].update({"alice@example.com": "ADMIN", "bob@example.com": "MEMBER"})
    made = plan.make_plan(world.connect(), world.config())
    roles = {(s.email, s.role, s.destructive) for s in made.steps if s.action == "set-role"}
    assert roles == {("alice@example.com", "member", True), ("bob@example.com", "admin", False)}
    done = world.apply()
    assert done.roles == ["bob@example.com -> admin in development"]
    assert world.fake.members[dev]["alice@example.com"] == "ADMIN"  # lowering waits for --yes


def test_refusals_are_found_while_planning(world: World) -> None:
    world.fake.meta["allowCreateTenant"] = False
    with pytest.raises(ServerRefuses, match="does not allow creating tenants") as info:
        world.apply(yes=True)
    assert info.value.exit_code == 19
    world.fake.meta["allowCreateTenant"] = True
    world.fake.meta["allowInvites"] = False
    with pytest.raises(ServerRefuses, match="does not allow invites"):
        world.apply(yes=True)
    assert world.fake.writes() == []


def test_a_slug_taken_by_a_tenant_the_admin_cannot_see(world: World) -> None:
    world.fake.add_tenant("development", owner="someone@else.com")
    with pytest.raises(TenantAccessDenied, match=r"'development' is taken .* cannot see") as info:
        world.apply(yes=True)
    assert info.value.exit_code == 20
    assert world.fake.writes() == ["POST /api/v1/tenants"]  # the create that found out
    assert world.fake.tokens == {} and world.fake.invites == {}


def test_an_admin_no_longer_member_of_a_declared_tenant(world: World) -> None:
    world.apply(yes=True)
    writes = len(world.fake.writes())
    del world.fake.members[world.fake.tenants["staging"]][ADMIN]
    with pytest.raises(TenantAccessDenied, match="no longer a member of tenant staging"):
        world.apply(yes=True)
    assert len(world.fake.writes()) == writes


# --- tokens, hand-outs, archive ------------------------------------------------------------


def test_hand_out_writes_tls_settings_and_checks_the_namespace(
    world: World, tmp_path: Path
) -> None:
    world.apply(yes=True)
    target = tmp_path / "alice.env"
    config = world.config(**{"server.grpc": "grpc-lb.example.com:443"})
    with pytest.raises(ConfigError, match="not a namespace of tenant development"):
        teams.hand_out(config, world.ctx, "development", "dev-zed", target)
    teams.check_namespace(config, "staging", "dev-zed")  # no namespaces listed: the rule only
    teams.hand_out(config, world.ctx, "development", "dev-alice", target)
    text = target.read_text()
    assert "HATCHET_CLIENT_TLS_STRATEGY=tls\n" in text
    assert "HATCHET_CLIENT_HOST_PORT=grpc-lb.example.com:443\n" in text
    assert f"HATCHET_CLIENT_SERVER_URL={URL}\n" in text
    assert "HATCHET_CLIENT_NAMESPACE=dev-alice\n" in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    rows = tokens.list_tokens(world.connect(), "development")
    assert [(r.in_use, r.handed_out) for r in rows] == [(True, 1)]


def test_rotate_writes_the_new_token_then_revokes_the_old(world: World, tmp_path: Path) -> None:
    world.apply(yes=True)
    config = world.config()
    alice, mine = tmp_path / "alice.env", tmp_path / "mine.env"
    teams.hand_out(config, world.ctx, "development", "dev-alice", alice)
    teams.hand_out(config, world.ctx, "development", "dev-bob", mine)
    mine.write_text("HATCHET_CLIENT_TOKEN=eyJ.someone-elses.token\n")
    conn = world.connect()
    old = conn.store.tenant_tokens()["development"].token
    result = tokens.rotate(conn, "development")
    new = conn.store.tenant_tokens()["development"].token
    assert new != old and new in alice.read_text() and old not in alice.read_text()
    assert result.rewritten == [str(alice.resolve())] and result.skipped == [str(mine.resolve())]
    assert world.fake.tokens[old].revoked and not world.fake.tokens[new].revoked
    order = [f"{r.method} {r.url.path}" for r in world.fake.requests]
    revoke = order.index(f"POST /api/v1/api-tokens/{result.old_id}")
    assert order.index(f"GET /api/v1/tenants/{world.fake.tenants['development']}") < revoke


def test_read_only_tokens_only_where_the_server_has_them(world: World) -> None:
    world.apply(yes=True)
    refusal = r"need Hatchet v0\.116\.0 or newer; .* runs v0\.101\.27"
    with pytest.raises(ServerRefuses, match=refusal):
        tokens.create_token(world.connect(), "staging", "dash", "3600s", read_only=True)
    world.fake.version = "v0.116.0"
    _, token = tokens.create_token(world.connect(), "staging", "dash", "3600s", read_only=True)
    assert world.fake.tokens[token.token].read_only
    rows = tokens.list_tokens(world.connect(), "staging")
    assert [r.read_only for r in rows if r.name == "dash"] == [True]


def test_archive_revokes_marks_and_plan_leaves_it_alone(world: World) -> None:
    world.apply(yes=True)
    result = teams.archive_tenant(world.config(), world.ctx, "staging")
    assert len(result.revoked) == 1 and world.fake.live_tokens("staging") == []
    assert world.fake.tenant_names[world.fake.tenants["staging"]] == "staging (archived)"
    made = plan.make_plan(world.connect(), world.config())
    assert not [s for s in made.steps if s.tenant == "staging"]
    assert [n.kind for n in made.notes if n.tenant == "staging"] == ["archived"]


def test_members_and_pending_invites_are_listed(world: World) -> None:
    world.apply(yes=True)
    rows = teams.list_members(world.config(), world.ctx, "development")
    assert {(r.email, r.role, r.pending) for r in rows} == {
        (ADMIN, "owner", False), ("alice@example.com", "member", True),
        ("bob@example.com", "admin", True),
    }  # fmt: skip


def test_production_tokens_change_only_with_yes(world: World) -> None:
    world.apply()  # production created, its token skipped
    config = world.config()
    with pytest.raises(ConfigError, match="apply --yes` mints it"):
        teams.tenant_token(config, world.ctx, "production")
    assert world.fake.live_tokens("production") == []
    world.apply(yes=True)
    conn = world.connect()
    kept = conn.store.tenant_tokens()["production"]
    production_id = tokens.token_id(kept.token)
    with pytest.raises(ConfigError, match="belongs to production tenant production: add --yes"):
        tokens.revoke_token(conn, production_id, teams.production(config), yes=False)
    assert world.fake.live_tokens("production") != []
    tokens.revoke_token(conn, production_id, teams.production(config), yes=True)
    assert world.fake.live_tokens("production") == []
