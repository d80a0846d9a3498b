"""Teams: tenants and namespaces declared in hatchet-local.yaml, their tokens, and the people
who may log in to them.

Hatchet isolates tenants on the server (a token's `sub` is its tenant); a namespace is only a
client-side prefix inside one tenant (`HATCHET_CLIENT_NAMESPACE`). `up` makes every declared
tenant exist (found by slug, so a second run creates nothing), keeps one working token per
tenant in the stack's state, and writes one env file per tenant and per namespace under
`.hatchet/` in the project. Everything here runs in the admin's dashboard session: the engine
refuses token management to bearer tokens.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hatchet_local import hatchet_api
from hatchet_local.bootstrap import (
    TOKEN_LIFETIME,
    TOKEN_NAME,
    seed_tenant,
    seed_user,
    token_status,
)
from hatchet_local.client_settings import token_claims, token_settings
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import ADMIN_EMAIL, DEFAULT_TENANT_SLUG
from hatchet_local.envfile import write_env_file
from hatchet_local.errors import ConfigError, HatchetApiError, HatchetLocalError, TenantNotFound
from hatchet_local.fsutil import ensure_private_dir, refuse_link
from hatchet_local.hatchet_api import Session, Tenant
from hatchet_local.names import check_name
from hatchet_local.stack import Stack, load_stack
from hatchet_local.state import TenantToken, generate_password

TEAM_DIR = ".hatchet"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class TeamFile:
    tenant: str
    namespace: str | None
    path: Path


@dataclass(frozen=True)
class TeamResult:
    created: list[str]  # tenants created by this run
    minted: list[str]  # tenants whose token was (re)minted by this run
    files: list[TeamFile]

    def as_dict(self) -> dict[str, object]:
        return {
            "created": self.created,
            "minted": self.minted,
            "files": [str(item.path) for item in self.files],
        }


@dataclass(frozen=True)
class TenantRow:
    """One line of `tenant list`."""

    id: str
    slug: str
    name: str
    tokens: int  # live API tokens

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class TokenRow:
    """One line of `token list`."""

    id: str
    tenant: str
    name: str
    expires_at: str
    in_use: bool  # one hatchet-local keeps and hands out

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class UserRow:
    """One line of `user list`: a login and its role in each tenant it may see."""

    email: str
    tenants: dict[str, str] = field(default_factory=dict)  # slug -> role

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# --- sessions ------------------------------------------------------------------------------


def admin_session(stack: Stack, ctx: Context) -> Session:
    """The seeded admin's login, with the stack's generated password."""
    password = stack.secrets["HATCHET_ADMIN_PASSWORD"]
    return hatchet_api.login(ctx.http, stack.spec.server_url, ADMIN_EMAIL, password)


def running_stack(config: Config, ctx: Context) -> tuple[Stack, Session]:
    """A stack brought up before, and the admin's session on it."""
    stack = load_stack(config, ctx, create=False)
    return stack, admin_session(stack, ctx)


def find_tenant(session: Session, slug: str) -> Tenant:
    for tenant in session.tenants():
        if tenant.slug == slug:
            return tenant
    raise TenantNotFound(
        f"no tenant {slug!r} on this stack; add it under tenants: in hatchet-local.yaml and "
        f"run `hatchet-local up`, or `hatchet-local tenant create {slug}`"
    )


def new_tenant(stack: Stack, session: Session, slug: str) -> Tenant:
    """Tenant `slug`, owned by the admin, made by the engine's admin tool: tenant creation in
    the API stays closed on a stack that other machines reach (`--advertise`, `--expose`)."""
    owner_password = stack.secrets["HATCHET_ADMIN_PASSWORD"]
    seed_tenant(stack.compose, str(uuid.uuid4()), slug, ADMIN_EMAIL, owner_password)
    return find_tenant(session, slug)


# --- up: the declared tenants --------------------------------------------------------------


def reconcile(config: Config, stack: Stack, ctx: Context) -> TeamResult:
    """Make every tenant of `config.tenants` exist with a working token, and write its env
    files. Tenants missing from the file are left alone (never deleted)."""
    session = admin_session(stack, ctx)
    existing = {tenant.slug: tenant for tenant in session.tenants()}
    tokens = stack.dir.tenant_tokens()
    created, minted = [], []
    for slug in config.tenants:
        if slug not in existing:
            existing[slug] = new_tenant(stack, session, slug)
            created.append(slug)
            ctx.console.info(f"created tenant {slug}")
        token = _working_token(session, stack, ctx, existing[slug], tokens.get(slug))
        if token is not tokens.get(slug):
            tokens[slug] = token
            stack.dir.save_tenant_tokens(tokens)
            minted.append(slug)
    files = []
    for slug, namespaces in config.tenants.items():
        for namespace in (None, *namespaces):
            path = team_file(config, slug, namespace)
            write_team_file(path, tokens[slug], namespace)
            files.append(TeamFile(slug, namespace, path))
    ctx.console.info(
        f"{len(config.tenants)} tenant(s): {len(created)} created, {len(minted)} new token(s), "
        f"{len(files)} env file(s) in {config.project_dir / TEAM_DIR}"
    )
    return TeamResult(created, minted, files)


def _working_token(
    session: Session, stack: Stack, ctx: Context, tenant: Tenant, stored: TenantToken | None
) -> TenantToken:
    """The stored token while the API accepts it for this tenant, else a new one."""
    server_url = stack.spec.server_url
    if stored is not None and stored.tenant_id == tenant.id and stored.server_url == server_url:
        ctx.redact.add(stored.token)
        if token_status(ctx.http, server_url, stored.token, tenant.id) == "valid":
            return stored
    token = session.create_token(tenant.id, TOKEN_NAME, TOKEN_LIFETIME)
    ctx.redact.add(token)
    if token_status(ctx.http, server_url, token, tenant.id) != "valid":
        raise HatchetApiError(f"the API rejects the token just minted for tenant {tenant.slug}")
    return TenantToken(tenant.slug, tenant.id, token, server_url)


def team_file(config: Config, tenant: str, namespace: str | None) -> Path:
    name = f"{tenant}.{namespace}.env" if namespace else f"{tenant}.env"
    return config.project_dir / TEAM_DIR / name


def settings(token: TenantToken, namespace: str | None) -> dict[str, str]:
    """Client settings for one tenant (and namespace), addresses as baked into the token."""
    return token_settings(token.as_token(), namespace)


def write_team_file(path: Path, token: TenantToken, namespace: str | None) -> None:
    """Merge the settings into `path` (0600, other lines kept; directory made 0700). A
    `.hatchet` that is a link (a cloned repository's, say) is refused: making it 0700 would
    change its target, wherever that is."""
    if path.parent.name == TEAM_DIR:
        refuse_link(path.parent)
        ensure_private_dir(path.parent)
    write_env_file(path, settings(token, namespace))


# --- commands: tenant, token, env ----------------------------------------------------------


def create_tenant(config: Config, ctx: Context, slug: str) -> Tenant:
    check_name(slug, "tenant")
    stack, session = running_stack(config, ctx)
    if any(tenant.slug == slug for tenant in session.tenants()):
        raise HatchetLocalError(f"tenant {slug!r} exists already; `hatchet-local tenant list`")
    tenant = new_tenant(stack, session, slug)
    tokens = stack.dir.tenant_tokens()
    tokens[slug] = _working_token(session, stack, ctx, tenant, None)
    stack.dir.save_tenant_tokens(tokens)
    return tenant


def list_tenants(config: Config, ctx: Context) -> list[TenantRow]:
    """Every tenant the admin belongs to, with its number of live tokens."""
    _, session = running_stack(config, ctx)
    return [TenantRow(t.id, t.slug, t.name, len(session.tokens(t.id))) for t in session.tenants()]


def tenant_token(config: Config, ctx: Context, slug: str) -> TenantToken:
    """The token kept for tenant `slug`, minted (and kept) when there is none yet."""
    stack = load_stack(config, ctx, create=False)
    tokens = stack.dir.tenant_tokens()
    if slug in tokens:
        return tokens[slug]
    session = admin_session(stack, ctx)
    tokens[slug] = _working_token(session, stack, ctx, find_tenant(session, slug), None)
    stack.dir.save_tenant_tokens(tokens)
    return tokens[slug]


def create_token(
    config: Config, ctx: Context, slug: str, name: str, expires_in: str
) -> tuple[str, TenantToken]:
    """A new token for tenant `slug` (not the one hatchet-local keeps); (id, token)."""
    stack, session = running_stack(config, ctx)
    tenant = find_tenant(session, slug)
    token = session.create_token(tenant.id, name, expires_in)
    ctx.redact.add(token)
    token_id = str(token_claims(token).get("token_id", ""))
    return token_id, TenantToken(slug, tenant.id, token, stack.spec.server_url)


def list_tokens(config: Config, ctx: Context, slug: str | None) -> list[TokenRow]:
    """Live tokens of one tenant, or of every tenant; `in_use` marks the kept ones."""
    stack, session = running_stack(config, ctx)
    kept = {
        str(token_claims(t.token).get("token_id", ""))
        for t in [*stack.dir.tenant_tokens().values(), stack.dir.load_token()]
        if t is not None
    }
    tenants = [find_tenant(session, slug)] if slug else session.tenants()
    return [
        TokenRow(token.id, tenant.slug, token.name, token.expires_at, token.id in kept)
        for tenant in tenants
        for token in session.tokens(tenant.id)
    ]


def revoke_token(config: Config, ctx: Context, token_id: str) -> None:
    """Revoke a token by id; a kept one is forgotten (the next `up` mints another)."""
    stack, session = running_stack(config, ctx)
    session.revoke_token(token_id)
    tokens = stack.dir.tenant_tokens()
    left = {
        slug: t for slug, t in tokens.items() if token_claims(t.token).get("token_id") != token_id
    }
    if left != tokens:
        stack.dir.save_tenant_tokens(left)


# --- users ---------------------------------------------------------------------------------


def create_user(
    config: Config, ctx: Context, email: str, tenants: list[str], role: str
) -> tuple[str, list[str]]:
    """A dashboard login for `email` that is a member of `tenants` only: signed up with a
    generated password, invited by the admin to each tenant, each invite accepted in the
    user's own session. Idempotent. Returns (password, tenants joined by this call)."""
    if not _EMAIL.fullmatch(email):
        raise ConfigError(f"user create: expected an email address, got {email!r}")
    if role not in hatchet_api.ROLES:
        raise ConfigError(f"--role: expected one of {', '.join(hatchet_api.ROLES)}, got {role!r}")
    if not tenants:
        raise ConfigError("user create: name at least one --tenant the user may see")
    stack, admin = running_stack(config, ctx)
    targets = {slug: find_tenant(admin, check_name(slug, "tenant")) for slug in tenants}
    password = stack.dir.user_passwords().get(email, "")
    server_url = stack.spec.server_url
    user = None
    if password:
        with contextlib.suppress(HatchetApiError):  # a password of data since wiped
            user = hatchet_api.login(ctx.http, server_url, email, password)
    if user is None:
        password = generate_password()
        ctx.redact.add(password)
        # Made by the admin tool: the API's sign-up stays closed on a stack others reach.
        seed_user(stack.compose, email, email.partition("@")[0], password, DEFAULT_TENANT_SLUG)
        try:
            user = hatchet_api.login(ctx.http, server_url, email, password)
        except HatchetApiError as exc:
            raise HatchetApiError(
                f"cannot create user {email} ({exc.message}); a user made elsewhere keeps "
                f"the password hatchet-local does not know"
            ) from exc
        stack.dir.save_user_password(email, password)
    ctx.redact.add(password)
    joined = []
    for slug, tenant in targets.items():
        if any(m.email == email for m in admin.members(tenant.id)):
            continue
        admin.invite(tenant.id, email, role)
        joined.append(slug)
    for invite_id, tenant_id in user.pending_invites():
        if any(t.id == tenant_id for t in targets.values()):
            user.accept_invite(invite_id)
    return password, joined


def list_users(config: Config, ctx: Context) -> list[UserRow]:
    """Everyone who may log in to a tenant of this stack, with their tenants and roles."""
    _, session = running_stack(config, ctx)
    people: dict[str, UserRow] = {}
    for tenant in session.tenants():
        for member in session.members(tenant.id):
            row = people.setdefault(member.email, UserRow(member.email))
            row.tenants[tenant.slug] = member.role
    return [people[email] for email in sorted(people)]
