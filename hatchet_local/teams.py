"""Teams: tenants and namespaces declared in hatchet-local.yaml, the people who may log in
to them, and the hand-out of a tenant's token to one developer.

Everything runs over a Connection (server.py): the project's own stack, whose admin login
hatchet-local knows, or a server it did not start. Hatchet isolates tenants on the server
(a token's `sub` is its tenant); a namespace is only a client-side prefix inside one tenant
(`HATCHET_CLIENT_NAMESPACE`). `up` applies the declared tenants to its stack (plan.py) and
writes one env file per tenant and per namespace under `.hatchet/` in the project.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hatchet_local import hatchet_api, plan
from hatchet_local.config import Config
from hatchet_local.config_values import EMAIL
from hatchet_local.context import Context
from hatchet_local.errors import ConfigError, HatchetApiError, HatchetLocalError
from hatchet_local.hatchet_api import Tenant
from hatchet_local.names import check_name
from hatchet_local.server import Connection, connect, connect_config, stack_server
from hatchet_local.stack import Stack
from hatchet_local.state import generate_password, now_iso
from hatchet_local.team_state import TenantToken
from hatchet_local.tokens import TEAM_DIR, find_tenant, keep, kept_token, mint, write_handout

ARCHIVED_SUFFIX = " (archived)"


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
    archived: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class UserRow:
    """One line of `user list`: a login and its role in each tenant it may see."""

    email: str
    tenants: dict[str, str] = field(default_factory=dict)  # slug -> role

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class MemberRow:
    """One line of `member list`: a member, or an invite not accepted yet."""

    tenant: str
    email: str
    role: str
    pending: bool  # invited; the invitee accepts in their own session
    declared: str | None  # the role hatchet-local.yaml gives them, if any

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ArchiveResult:
    tenant: str
    revoked: list[str]  # token ids

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# --- up: the declared tenants of a stack ---------------------------------------------------


def reconcile(config: Config, stack: Stack, ctx: Context) -> TeamResult:
    """Apply `config.tenants` to the stack (it is the user's own: no --yes needed) and write
    its env files. Tenants missing from the file are left alone (never deleted)."""
    conn = connect(stack_server(stack), ctx)
    done = plan.apply(conn, config, plan.make_plan(conn, config), yes=True)
    files = [TeamFile(t, ns, Path(p)) for t, ns, p in plan.write_team_files(conn, config)]
    ctx.console.info(
        f"{len(config.tenants)} tenant(s): {len(done.created)} created, "
        f"{len(done.minted) + len(done.rotated)} new token(s), "
        f"{len(files)} env file(s) in {config.project_dir / TEAM_DIR}"
    )
    return TeamResult(done.created, [*done.minted, *done.rotated], files)


# --- tenants -------------------------------------------------------------------------------


def create_tenant(config: Config, ctx: Context, slug: str) -> Tenant:
    check_name(slug, "tenant")
    conn = connect_config(config, ctx)
    if any(tenant.slug == slug for tenant in conn.session.tenants()):
        raise HatchetLocalError(f"tenant {slug!r} exists already; `hatchet-local tenant list`")
    spec = config.tenants.get(slug)
    tenant = conn.create_tenant(slug, spec.environment if spec else None)
    keep(conn, mint(conn, tenant))
    return tenant


def list_tenants(config: Config, ctx: Context) -> list[TenantRow]:
    """Every tenant the admin belongs to, with its number of live tokens."""
    conn = connect_config(config, ctx)
    archived = conn.store.archived()
    return [
        TenantRow(t.id, t.slug, t.name, len(conn.session.tokens(t.id)), t.slug in archived)
        for t in conn.session.tenants()
    ]


def archive_tenant(config: Config, ctx: Context, slug: str) -> ArchiveResult:
    """Hatchet has no tenant delete: revoke every token of the tenant, rename it
    `<name> (archived)` and remember it, so plan and apply leave it alone. Its data stays."""
    conn = connect_config(config, ctx)
    tenant = find_tenant(conn, check_name(slug, "tenant"))
    revoked = []
    for token in conn.session.tokens(tenant.id):
        conn.session.revoke_token(token.id)
        revoked.append(token.id)
    if not tenant.name.endswith(ARCHIVED_SUFFIX):
        conn.session.rename_tenant(tenant.id, tenant.name + ARCHIVED_SUFFIX)
    kept = {s: t for s, t in conn.store.tenant_tokens().items() if s != slug}
    conn.store.save_tenant_tokens(kept)
    conn.store.mark_archived(slug, now_iso())
    return ArchiveResult(slug, revoked)


# --- hand-out: one developer's settings ----------------------------------------------------


def check_namespace(config: Config, slug: str, namespace: str | None) -> None:
    """A namespace must follow the naming rule and, when the file lists the tenant's
    namespaces, be one of them: two developers never share one by accident."""
    if namespace is None:
        return
    check_name(namespace, "--namespace")
    spec = config.tenants.get(slug)
    if spec is not None and spec.namespaces and namespace not in spec.namespaces:
        raise ConfigError(
            f"--namespace {namespace}: not a namespace of tenant {slug} in hatchet-local.yaml "
            f"({', '.join(spec.namespaces)}); add it there first, so no two developers share "
            f"one (a namespace is only a client-side prefix inside the tenant)"
        )


def production(config: Config) -> list[str]:
    """The production tenants of the file: their tokens and members change only with --yes."""
    return [slug for slug, spec in config.tenants.items() if spec.production(slug)]


def tenant_token(config: Config, ctx: Context, slug: str) -> tuple[Connection, TenantToken]:
    """The token kept for tenant `slug` (minted and kept when there is none that works,
    unless the tenant is a production one of a server hatchet-local did not start)."""
    conn = connect_config(config, ctx)
    may_mint = conn.server.local or slug not in production(config)
    return conn, kept_token(conn, slug, may_mint=may_mint)


def hand_out(
    config: Config, ctx: Context, slug: str, namespace: str | None, path: Path
) -> TenantToken:
    """Write one developer's env file: the tenant's kept token and their namespace."""
    check_namespace(config, slug, namespace)
    conn, token = tenant_token(config, ctx, slug)
    write_handout(conn, token, namespace, path)
    return token


# --- users and members ---------------------------------------------------------------------


def create_user(
    config: Config, ctx: Context, email: str, tenants: list[str], role: str
) -> tuple[str, list[str]]:
    """A dashboard login for `email` that is a member of `tenants` only: signed up with a
    generated password, invited by the admin to each tenant, each invite accepted in the
    user's own session. Idempotent. Returns (password, tenants joined by this call)."""
    if not EMAIL.fullmatch(email):
        raise ConfigError(f"user create: expected an email address, got {email!r}")
    if role not in hatchet_api.ROLES:
        raise ConfigError(f"--role: expected one of {', '.join(hatchet_api.ROLES)}, got {role!r}")
    if not tenants:
        raise ConfigError("user create: name at least one --tenant the user may see")
    conn = connect_config(config, ctx)
    admin = conn.session
    targets = {slug: find_tenant(conn, check_name(slug, "tenant")) for slug in tenants}
    password = conn.store.user_passwords().get(email, "")
    server_url, http = conn.server.url, admin.http
    user = None
    if password:
        with contextlib.suppress(HatchetApiError):  # a password of data since wiped
            user = hatchet_api.login(http, server_url, email, password)
    if user is None:
        password = generate_password()
        ctx.redact.add(password)
        try:
            user = conn.create_login(email, password)
        except HatchetApiError as exc:
            raise HatchetApiError(
                f"cannot create user {email} ({exc.message}); a user made elsewhere keeps "
                f"the password hatchet-local does not know"
            ) from exc
        conn.store.save_user_password(email, password)
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
    """Everyone who may log in to a tenant of this server, with their tenants and roles."""
    conn = connect_config(config, ctx)
    people: dict[str, UserRow] = {}
    for tenant in conn.session.tenants():
        for member in conn.session.members(tenant.id):
            row = people.setdefault(member.email, UserRow(member.email))
            row.tenants[tenant.slug] = member.role
    return [people[email] for email in sorted(people)]


def list_members(config: Config, ctx: Context, slug: str | None) -> list[MemberRow]:
    """Members and pending invites of one tenant, or of every tenant the admin sees."""
    conn = connect_config(config, ctx)
    tenants = [find_tenant(conn, slug)] if slug else conn.session.tenants()
    rows = []
    for tenant in tenants:
        spec = config.tenants.get(tenant.slug)
        declared = dict(spec.members) if spec else {}
        for member in conn.session.members(tenant.id):
            rows.append(MemberRow(tenant.slug, member.email, member.role, False,
                                  declared.get(member.email)))  # fmt: skip
        for invite in conn.session.invites(tenant.id):
            rows.append(MemberRow(tenant.slug, invite.email, invite.role, True,
                                  declared.get(invite.email)))  # fmt: skip
    return rows
