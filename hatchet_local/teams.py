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
import getpass
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from hatchet_local import hatchet_api
from hatchet_local.bootstrap import TOKEN_LIFETIME, TOKEN_NAME, token_status
from hatchet_local.config import NAME_RULE, Config, valid_name
from hatchet_local.defaults import ADMIN_EMAIL
from hatchet_local.envfile import write_env_file
from hatchet_local.errors import ConfigError, HatchetApiError, HatchetLocalError, StackNotFound
from hatchet_local.fsutil import atomic_write, ensure_private_dir, read_text
from hatchet_local.hatchet_api import Session, Tenant
from hatchet_local.stack import Context, Stack, client_settings, load_stack, token_claims
from hatchet_local.state import Token, generate_password

TEAM_DIR = ".hatchet"
DEFAULT_TENANT_SLUG = "default"  # the tenant `hatchet-admin quickstart` seeds
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class TenantToken:
    """The token hatchet-local keeps for one tenant."""

    slug: str
    tenant_id: str
    token: str
    server_url: str

    def as_token(self) -> Token:
        return Token(token=self.token, tenant_id=self.tenant_id, server_url=self.server_url)


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


# --- state: tenants.json and users.json in the stack's private directory ------------------


def _tokens_file(stack: Stack) -> Path:
    return stack.dir.path / "tenants.json"


def _users_file(stack: Stack) -> Path:
    return stack.dir.path / "users.json"


def _load_json(path: Path) -> dict[str, object]:
    text = read_text(path)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: corrupt JSON at line {exc.lineno}; remove it") from exc
    return data if isinstance(data, dict) else {}


def stored_tokens(stack: Stack) -> dict[str, TenantToken]:
    tokens = {}
    for slug, entry in _load_json(_tokens_file(stack)).items():
        try:
            tokens[slug] = TenantToken(**entry)  # type: ignore[arg-type]
        except TypeError:
            continue  # an unreadable entry is re-minted, never trusted
    return tokens


def _save_tokens(stack: Stack, tokens: Mapping[str, TenantToken]) -> None:
    data = {slug: asdict(token) for slug, token in sorted(tokens.items())}
    atomic_write(_tokens_file(stack), json.dumps(data, indent=2) + "\n")


# --- sessions ------------------------------------------------------------------------------


def admin_session(stack: Stack, ctx: Context) -> Session:
    """The seeded admin's login, with the stack's generated password."""
    password = stack.secrets["HATCHET_ADMIN_PASSWORD"]
    return hatchet_api.login(ctx.http, stack.spec.server_url, ADMIN_EMAIL, password)


def running_stack(config: Config, ctx: Context) -> tuple[Stack, Session]:
    """A stack brought up before, and the admin's session on it."""
    stack = load_stack(config, ctx, create=False)
    return stack, admin_session(stack, ctx)


def check_name(name: str, what: str) -> str:
    if not valid_name(name):
        raise ConfigError(f"{what} {name!r}: expected {NAME_RULE}")
    return name


def find_tenant(session: Session, slug: str) -> Tenant:
    for tenant in session.tenants():
        if tenant.slug == slug:
            return tenant
    raise StackNotFound(
        f"no tenant {slug!r} on this stack; add it under tenants: in hatchet-local.yaml and "
        f"run `hatchet-local up`, or `hatchet-local tenant create {slug}`"
    )


# --- up: the declared tenants --------------------------------------------------------------


def reconcile(config: Config, stack: Stack, ctx: Context) -> TeamResult:
    """Make every tenant of `config.tenants` exist with a working token, and write its env
    files. Tenants missing from the file are left alone (never deleted)."""
    session = admin_session(stack, ctx)
    existing = {tenant.slug: tenant for tenant in session.tenants()}
    tokens = stored_tokens(stack)
    created, minted = [], []
    for slug in config.tenants:
        if slug not in existing:
            existing[slug] = session.create_tenant(slug)
            created.append(slug)
            ctx.console.info(f"created tenant {slug}")
        token = _working_token(session, stack, ctx, existing[slug], tokens.get(slug))
        if token is not tokens.get(slug):
            tokens[slug] = token
            _save_tokens(stack, tokens)
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
    claims = token_claims(token.token)
    grpc_address = str(claims.get("grpc_broadcast_address") or "")
    return client_settings(token.server_url, grpc_address, token.as_token(), namespace)


def write_team_file(path: Path, token: TenantToken, namespace: str | None) -> None:
    """Merge the settings into `path` (0600, other lines kept; directory made 0700)."""
    if path.parent.name == TEAM_DIR:
        ensure_private_dir(path.parent)
    write_env_file(path, settings(token, namespace))


# --- commands: tenant, token, env ----------------------------------------------------------


def create_tenant(config: Config, ctx: Context, slug: str) -> Tenant:
    check_name(slug, "tenant")
    stack, session = running_stack(config, ctx)
    if any(tenant.slug == slug for tenant in session.tenants()):
        raise HatchetLocalError(f"tenant {slug!r} exists already; `hatchet-local tenant list`")
    tenant = session.create_tenant(slug)
    tokens = stored_tokens(stack)
    tokens[slug] = _working_token(session, stack, ctx, tenant, None)
    _save_tokens(stack, tokens)
    return tenant


def list_tenants(config: Config, ctx: Context) -> list[dict[str, object]]:
    """id, slug, name and the number of live tokens of every tenant the admin belongs to."""
    _, session = running_stack(config, ctx)
    return [
        {"id": t.id, "slug": t.slug, "name": t.name, "tokens": len(session.tokens(t.id))}
        for t in session.tenants()
    ]


def tenant_token(config: Config, ctx: Context, slug: str) -> TenantToken:
    """The token kept for tenant `slug`, minted (and kept) when there is none yet."""
    stack = load_stack(config, ctx, create=False)
    tokens = stored_tokens(stack)
    if slug in tokens:
        return tokens[slug]
    session = admin_session(stack, ctx)
    tokens[slug] = _working_token(session, stack, ctx, find_tenant(session, slug), None)
    _save_tokens(stack, tokens)
    return tokens[slug]


def default_namespace(user: str | None = None) -> str:
    """`dev-<login name>`, made to follow the naming convention."""
    login = user if user is not None else getpass.getuser()
    slug = re.sub("[^a-z0-9]+", "-", login.lower()).strip("-")[:59].strip("-")
    if not slug:
        raise ConfigError(f"--namespace auto: cannot make a name from user {login!r}; name it")
    return f"dev-{slug}"


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


def list_tokens(config: Config, ctx: Context, slug: str | None) -> list[dict[str, object]]:
    """Live tokens of one tenant, or of every tenant; `in_use` marks the kept ones."""
    stack, session = running_stack(config, ctx)
    kept = {
        str(token_claims(t.token).get("token_id", ""))
        for t in [*stored_tokens(stack).values(), stack.dir.load_token()]
        if t is not None
    }
    tenants = [find_tenant(session, slug)] if slug else session.tenants()
    return [
        {"id": token.id, "tenant": tenant.slug, "name": token.name,
         "expires_at": token.expires_at, "in_use": token.id in kept}
        for tenant in tenants
        for token in session.tokens(tenant.id)
    ]  # fmt: skip


def revoke_token(config: Config, ctx: Context, token_id: str) -> None:
    """Revoke a token by id; a kept one is forgotten (the next `up` mints another)."""
    stack, session = running_stack(config, ctx)
    session.revoke_token(token_id)
    tokens = stored_tokens(stack)
    left = {
        slug: t for slug, t in tokens.items() if token_claims(t.token).get("token_id") != token_id
    }
    if left != tokens:
        _save_tokens(stack, left)


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
    users = _load_json(_users_file(stack))
    password = str(users.get(email) or "")
    server_url = stack.spec.server_url
    user = None
    if password:
        with contextlib.suppress(HatchetApiError):  # a password of data since wiped
            user = hatchet_api.login(ctx.http, server_url, email, password)
    if user is None:
        password = generate_password()
        try:
            user = hatchet_api.register(
                ctx.http, server_url, email, email.partition("@")[0], password
            )
        except HatchetApiError as exc:
            raise HatchetApiError(
                f"cannot create user {email} ({exc.message}); a user made elsewhere keeps "
                f"the password hatchet-local does not know"
            ) from exc
        atomic_write(_users_file(stack), json.dumps({**users, email: password}, indent=2) + "\n")
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


def list_users(config: Config, ctx: Context) -> list[dict[str, object]]:
    """Everyone who may log in to a tenant of this stack, with their tenants and roles."""
    _, session = running_stack(config, ctx)
    people: dict[str, dict[str, object]] = {}
    for tenant in session.tenants():
        for member in session.members(tenant.id):
            row = people.setdefault(member.email, {"email": member.email, "tenants": {}})
            tenants = row["tenants"]
            assert isinstance(tenants, dict)
            tenants[tenant.slug] = member.role
    return [people[email] for email in sorted(people)]
