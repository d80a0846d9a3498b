"""The Hatchet server the team commands work on, and the admin's session on it.

Two kinds, one code path: a server hatchet-local did not start (`server:` in
hatchet-local.yaml, `--server`, `HATCHET_LOCAL_SERVER_URL`), whose admin password comes from
`HATCHET_LOCAL_SERVER_PASSWORD`, `--password-stdin` or a prompt; and the project's own stack,
a server whose admin login hatchet-local already knows. Either way `connect` reads what the
server is (version, meta), reuses the session kept in the state directory while the server
accepts it, and logs in otherwise. TLS is verified (system CAs, or `server.ca_bundle`)
unless `--insecure`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hatchet_local import hatchet_api
from hatchet_local.bootstrap import TOKEN_LIFETIME, seed_tenant, seed_user
from hatchet_local.compose import Compose
from hatchet_local.config import ENV_SERVER_PASSWORD, Config
from hatchet_local.context import Context
from hatchet_local.defaults import ADMIN_EMAIL, DEFAULT_TENANT_SLUG
from hatchet_local.errors import LoginRefused, ServerRefuses
from hatchet_local.hatchet_api import ServerInfo, Session, Tenant
from hatchet_local.stack import Stack, load_stack
from hatchet_local.state import now_iso
from hatchet_local.team_state import ServerDir, StoredSession, TeamStore

READ_ONLY_SINCE = (0, 116, 0)  # the first Hatchet release with read-only API tokens
REMOTE_HINT = "is the server up, and server.url right?"


@dataclass(frozen=True)
class Server:
    """Where the team commands act, and how to log in there."""

    url: str
    email: str
    store: TeamStore
    grpc: str | None = None  # overrides the gRPC address tokens carry
    ca_bundle: Path | None = None
    insecure: bool = False
    token_lifetime: str = TOKEN_LIFETIME
    password: str | None = field(default=None, repr=False)  # known for a stack we started
    stack: str | None = None  # the hatchet-local stack's name, when it is one
    # The engine's admin tool in its container (a stack we started): it makes logins and
    # tenants where the API does not let anyone (`--advertise`, `--expose`).
    admin_tool: Compose | None = field(default=None, repr=False)

    @property
    def local(self) -> bool:
        return self.stack is not None

    @property
    def hint(self) -> str:
        return hatchet_api.STACK_HINT if self.local else REMOTE_HINT

    @property
    def verify(self) -> bool | str:
        if self.insecure:
            return False
        return str(self.ca_bundle) if self.ca_bundle else True

    @property
    def name(self) -> str:
        return f"stack {self.stack}" if self.stack else self.url


@dataclass
class Connection:
    """The admin's session on a server, and what the server said about itself."""

    server: Server
    session: Session
    info: ServerInfo
    ctx: Context

    @property
    def store(self) -> TeamStore:
        return self.server.store

    def read_only_supported(self) -> bool:
        return supports_read_only(self.info)

    def can_create_tenants(self) -> bool:
        return self.info.allows("allowCreateTenant") or self.server.admin_tool is not None

    def create_tenant(self, slug: str, environment: str | None = None) -> Tenant:
        """Tenant `slug`, owned by the admin: through the API when the server allows it, else
        (a stack of ours that others reach, whose API makes no tenant) by the engine's admin
        tool, which sets no environment."""
        tool = self.server.admin_tool
        if self.info.allows("allowCreateTenant") or tool is None or self.server.password is None:
            return self.session.create_tenant(slug, environment)
        seed_tenant(tool, str(uuid.uuid4()), slug, self.server.email, self.server.password)
        if environment:
            said = f"tenant {slug}: made by the admin tool, without its environment"
            self.ctx.console.info(f"{said} ({environment}), which only the API sets")
        return next(t for t in self.session.tenants() if t.slug == slug)

    def create_login(self, email: str, password: str) -> Session:
        """A dashboard login (email verified) and its session: signed up through the API when
        the server allows it, else made by the engine's admin tool of a stack of ours (its
        sign-up is closed to strangers); the password never travels in a command line."""
        name = email.partition("@")[0]
        tool, http = self.server.admin_tool, self.session.http
        if self.info.allows("allowSignup") or tool is None:
            return hatchet_api.register(http, self.server.url, email, name, password)
        seed_user(tool, email, name, password, DEFAULT_TENANT_SLUG)
        return hatchet_api.login(http, self.server.url, email, password, self.server.hint)


@dataclass(frozen=True)
class ServerStatus:
    """`server status`: what the server is and allows, and whether a session is kept."""

    url: str
    version: str
    login: list[str]
    allow_signup: bool
    allow_invites: bool
    allow_create_tenant: bool
    read_only_tokens: bool
    logged_in: str | None  # the email of the kept session the server still accepts
    state_dir: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def supports_read_only(info: ServerInfo) -> bool:
    version = info.version_tuple()
    return bool(version) and version >= READ_ONLY_SINCE


def target(config: Config, ctx: Context) -> Server:
    """The server of `config`: `server.url` when set, else the project's stack."""
    settings = config.server
    if settings.url:
        return Server(
            url=settings.url,
            email=settings.email,
            store=ServerDir(ctx.state_root, settings.url),
            grpc=settings.grpc,
            ca_bundle=settings.ca_bundle,
            insecure=settings.insecure,
            token_lifetime=settings.token_lifetime,
        )
    return stack_server(load_stack(config, ctx, create=False))


def stack_server(stack: Stack) -> Server:
    """A stack hatchet-local started: its URL, the seeded admin and its generated password."""
    return Server(
        url=stack.spec.server_url,
        email=ADMIN_EMAIL,
        store=stack.dir,
        password=stack.secrets["HATCHET_ADMIN_PASSWORD"],
        stack=stack.record.name,
        admin_tool=stack.compose,
    )


def check_password_login(server: Server, info: ServerInfo) -> None:
    schemes = info.login_schemes
    if schemes and "basic" not in schemes:
        raise LoginRefused(
            f"{server.url}: password login is off (the server signs in with "
            f"{', '.join(schemes)} only, says /api/v1/meta); hatchet-local needs an admin "
            f"with a password: ask the server's operator to turn on basic auth "
            f"(SERVER_AUTH_BASIC_AUTH_ENABLED) for the admin, nothing was changed"
        )


def connect(
    server: Server,
    ctx: Context,
    *,
    password_stdin: bool = False,
    fresh: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    """The admin's session on `server`: the kept one while the server accepts it (unless
    `fresh`), else a new login, kept (0600) for the next command."""
    stored = None if fresh else server.store.session()  # a widened file stops us first
    http = ctx.http if server.local else ctx.make_http(server.verify)
    info = hatchet_api.server_info(http, server.url, server.hint)
    check_password_login(server, info)
    if stored is not None and stored.email == server.email:
        ctx.redact.add(stored.cookie)
        session = Session(http, server.url, stored.cookie, server.email, server.hint)
        if session.alive():
            return Connection(server, session, info, ctx)
    password = server.password or read_password(server, ctx, password_stdin, environ)
    ctx.redact.add(password)
    session = hatchet_api.login(http, server.url, server.email, password, server.hint)
    ctx.redact.add(session.cookie)
    server.store.save_session(StoredSession(server.email, session.cookie, now_iso()))
    return Connection(server, session, info, ctx)


def read_password(
    server: Server, ctx: Context, password_stdin: bool, environ: Mapping[str, str] | None
) -> str:
    """The admin's password: standard input (`--password-stdin`), else the environment,
    else a prompt on the terminal. Never a flag or the file."""
    env = os.environ if environ is None else environ
    if password_stdin:
        password = ctx.read_stdin()
        where = "standard input"
    elif env.get(ENV_SERVER_PASSWORD):
        password, where = env[ENV_SERVER_PASSWORD], ENV_SERVER_PASSWORD
    else:
        asked = ctx.prompt_password(f"Password for {server.email} at {server.url}: ")
        if asked is None:
            raise LoginRefused(
                f"no session kept for {server.email} at {server.url} and no password to log "
                f"in with: set {ENV_SERVER_PASSWORD}, pipe it to `hatchet-local server login "
                f"--password-stdin`, or run in a terminal to be asked"
            )
        password, where = asked, "the prompt"
    if not password:
        raise LoginRefused(f"the password from {where} is empty; nothing was changed")
    return password


def connect_config(config: Config, ctx: Context, *, password_stdin: bool = False) -> Connection:
    return connect(target(config, ctx), ctx, password_stdin=password_stdin)


# --- the `server` commands -----------------------------------------------------------------


def remote(config: Config, ctx: Context, command: str) -> Server:
    server = target(config, ctx) if config.server.url else None
    if server is None:
        raise ServerRefuses(
            f"{command}: no server configured; set server.url in hatchet-local.yaml (or "
            f"--server, HATCHET_LOCAL_SERVER_URL); the project's own stack needs no login"
        )
    return server


def login(config: Config, ctx: Context, *, password_stdin: bool) -> Connection:
    """Log in afresh and keep the session (0600) under the state directory."""
    return connect(remote(config, ctx, "server login"), ctx, password_stdin=password_stdin,
                   fresh=True)  # fmt: skip


def logout(config: Config, ctx: Context) -> bool:
    """End the kept session on the server (when it still answers) and forget it here."""
    server = remote(config, ctx, "server logout")
    stored = server.store.session()
    if stored is None:
        return False
    http = ctx.make_http(server.verify)
    session = Session(http, server.url, stored.cookie, stored.email, server.hint)
    try:
        session.logout()
    finally:
        server.store.forget_session()
    return True


def status(config: Config, ctx: Context) -> ServerStatus:
    """What the server is and allows; whether the kept session still works. No login."""
    server = target(config, ctx)
    http = ctx.http if server.local else ctx.make_http(server.verify)
    info = hatchet_api.server_info(http, server.url, server.hint)
    stored = server.store.session()
    logged_in = None
    if stored is not None:
        ctx.redact.add(stored.cookie)
        if Session(http, server.url, stored.cookie, stored.email, server.hint).alive():
            logged_in = stored.email
    return ServerStatus(
        url=server.url,
        version=info.version or "unknown",
        login=info.login_schemes,
        allow_signup=info.allows("allowSignup"),
        allow_invites=info.allows("allowInvites"),
        allow_create_tenant=info.allows("allowCreateTenant"),
        read_only_tokens=supports_read_only(info),
        logged_in=logged_in,
        state_dir=str(server.store.path),
    )
