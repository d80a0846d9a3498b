"""Plan, then apply: the `tenants:` of hatchet-local.yaml made true on a server.

A plan reads the server and says, before anything changes, which tenants would be created,
which kept tokens minted or rotated, which members invited or given another role; steps
that take access away (a rotation revokes the old token, a lower role) are marked
destructive, and steps on a production tenant's tokens or members are marked apart: apply
does those only with `--yes`. Tenants are found by slug; a tenant on the server that the
file does not name, a member the file does not list and an invite not yet accepted are
reported, never touched. Applying a plan twice changes nothing the second time.

The checks that would make apply fail halfway run while planning, so a refused apply
changes nothing: tenant creation or invites turned off on the server, an admin who is not
a member (or only a member) of a declared tenant it used to manage. One failure cannot be
seen beforehand: a slug taken by a tenant the admin cannot see answers only to a create;
apply creates tenants before anything else and stops at the first such slug.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from hatchet_local.config import Config
from hatchet_local.errors import HatchetApiError, ServerRefuses, TenantAccessDenied
from hatchet_local.hatchet_api import Tenant, api_message
from hatchet_local.server import Connection
from hatchet_local.tokens import keep, kept_state, mint, rotate, team_file, write_handout

RANK = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}
MANAGERS = ("owner", "admin")  # roles that may manage a tenant's tokens and invites


@dataclass(frozen=True)
class Step:
    """One change a plan would make."""

    action: str  # create-tenant | mint-token | rotate-token | invite | set-role
    tenant: str
    detail: str
    email: str = ""
    role: str = ""
    member_id: str = ""
    destructive: bool = False  # takes access away: revokes a token, lowers a role
    production: bool = False  # a production tenant's token or member: needs --yes

    @property
    def needs_yes(self) -> bool:
        return self.destructive or self.production

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Note:
    """Something the plan reports and leaves alone."""

    kind: str  # pending-invite | undeclared-tenant | undeclared-member | archived
    tenant: str
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    server: str
    version: str
    admin: str
    steps: list[Step] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "server": self.server, "version": self.version, "admin": self.admin,
            "steps": [s.as_dict() for s in self.steps],
            "notes": [n.as_dict() for n in self.notes],
        }  # fmt: skip


@dataclass(frozen=True)
class ApplyResult:
    created: list[str] = field(default_factory=list)  # tenants
    minted: list[str] = field(default_factory=list)  # tenants whose kept token is new
    rotated: list[str] = field(default_factory=list)
    invited: list[str] = field(default_factory=list)  # "email -> tenant (role)"
    roles: list[str] = field(default_factory=list)
    skipped: list[Step] = field(default_factory=list)  # needs --yes
    notes: list[Note] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["skipped"] = [step.as_dict() for step in self.skipped]
        return data


def make_plan(conn: Connection, config: Config) -> Plan:
    """What apply would do on `conn`'s server; raises (changing nothing) on what would stop
    it halfway."""
    session, server = conn.session, conn.server
    on_server = {tenant.slug: tenant for tenant in session.tenants()}
    kept = conn.store.tenant_tokens()
    archived = conn.store.archived()
    plan = Plan(server.url, conn.info.version or "unknown", server.email)
    for slug, spec in config.tenants.items():
        production = spec.production(slug)
        if slug in archived:
            plan.notes.append(Note("archived", slug, f"archived {archived[slug]}; left alone"))
            continue
        tenant = on_server.get(slug)
        if tenant is None:
            if slug in kept:
                raise TenantAccessDenied(
                    f"{server.email} is no longer a member of tenant {slug} "
                    f"({kept[slug].tenant_id}) on {server.url}; ask one of its owners to "
                    f"invite {server.email} as admin; nothing was changed"
                )
            where = f" ({spec.environment})" if spec.environment else ""
            plan.steps.append(Step("create-tenant", slug, f"create tenant {slug}{where}"))
            plan.steps.append(
                Step("mint-token", slug, f"mint the token kept for {slug}", production=production)
            )
            _plan_members(plan, slug, spec.members, {}, {}, production=production)
            continue
        if tenant.role and tenant.role not in MANAGERS:
            raise TenantAccessDenied(
                f"{server.email} is only a {tenant.role} of tenant {slug} on {server.url}; "
                f"managing its tokens and members needs admin or owner; nothing was changed"
            )
        state = kept_state(conn, tenant, kept.get(slug))
        if state in ("missing", "rejected"):
            why = "none kept yet" if state == "missing" else "the kept one is refused"
            plan.steps.append(Step("mint-token", slug, f"mint the token kept for {slug} ({why})",
                                   production=production))  # fmt: skip
        elif state == "expiring":
            plan.steps.append(Step(
                "rotate-token", slug,
                f"rotate the token kept for {slug} (it expires within 7 days): the new one is "
                f"written where the old one was handed out, then the old one is revoked",
                destructive=True, production=production,
            ))  # fmt: skip
        if spec.members:
            members = {m.email: (m.role, m.id) for m in session.members(tenant.id)}
            invites = {i.email: i.role for i in session.invites(tenant.id)}
            _plan_members(plan, slug, spec.members, members, invites, production=production)
            for email, (role, _) in sorted(members.items()):
                if email not in spec.members and email != server.email:
                    text = f"{email} ({role}) is not in the file; left alone"
                    plan.notes.append(Note("undeclared-member", slug, text))
    for slug in sorted(set(on_server) - set(config.tenants) - set(archived)):
        plan.notes.append(Note(
            "undeclared-tenant", slug,
            f"tenant {slug} is not in hatchet-local.yaml; left alone (`hatchet-local tenant "
            f"archive {slug} --yes` archives it)",
        ))  # fmt: skip
    _check_server_allows(conn, plan)
    return plan


def _plan_members(
    plan: Plan,
    slug: str,
    declared: Mapping[str, str],
    members: dict[str, tuple[str, str]],
    invites: dict[str, str],
    *,
    production: bool,
) -> None:
    for email, role in declared.items():
        if email == plan.admin:
            continue  # the admin's own role is not the file's to change
        if email in members:
            current, member_id = members[email]
            if current != role:
                plan.steps.append(Step(
                    "set-role", slug, f"{email}: {current} -> {role} in {slug}", email, role,
                    member_id, destructive=RANK[role] < RANK[current], production=production,
                ))  # fmt: skip
        elif email in invites:
            plan.notes.append(Note(
                "pending-invite", slug,
                f"{email} invited as {invites[email]}, not accepted yet: they accept in their "
                f"own session (dashboard, signed in as {email})",
            ))  # fmt: skip
        else:
            plan.steps.append(Step("invite", slug, f"invite {email} to {slug} as {role}", email,
                                   role, production=production))  # fmt: skip


def _check_server_allows(conn: Connection, plan: Plan) -> None:
    creates = [s.tenant for s in plan.steps if s.action == "create-tenant"]
    if creates and not conn.can_create_tenants():
        raise ServerRefuses(
            f"{conn.server.url} does not allow creating tenants (allowCreateTenant is off, "
            f"SERVER_ALLOW_CREATE_TENANT); {', '.join(creates)} must be created there by its "
            f"operator first; nothing was changed"
        )
    invites = [s.email for s in plan.steps if s.action == "invite"]
    if invites and not conn.info.allows("allowInvites"):
        raise ServerRefuses(
            f"{conn.server.url} does not allow invites (allowInvites is off, "
            f"SERVER_ALLOW_INVITES); {len(invites)} member(s) of the file cannot be invited; "
            f"nothing was changed"
        )


def apply(conn: Connection, config: Config, plan: Plan, *, yes: bool) -> ApplyResult:
    """Do the plan: tenants first, then tokens, then members. Steps that need --yes are
    skipped without it (and listed)."""
    result = ApplyResult(notes=list(plan.notes))
    tenants = {tenant.slug: tenant for tenant in conn.session.tenants()}
    for step in plan.steps:
        if step.action == "create-tenant":
            tenants[step.tenant] = _create(conn, config, step.tenant, result)
            result.created.append(step.tenant)
    for step in plan.steps:
        if step.action == "create-tenant":
            continue
        if step.needs_yes and not yes:
            result.skipped.append(step)
            continue
        tenant = tenants[step.tenant]
        if step.action == "mint-token":
            keep(conn, mint(conn, tenant))
            result.minted.append(step.tenant)
        elif step.action == "rotate-token":
            rotate(conn, step.tenant)
            result.rotated.append(step.tenant)
        elif step.action == "invite":
            conn.session.invite(tenant.id, step.email, step.role)
            result.invited.append(f"{step.email} -> {step.tenant} ({step.role})")
        elif step.action == "set-role":
            conn.session.set_role(tenant.id, step.member_id, step.role)
            result.roles.append(f"{step.email} -> {step.role} in {step.tenant}")
    return result


def _create(conn: Connection, config: Config, slug: str, result: ApplyResult) -> Tenant:
    try:
        return conn.create_tenant(slug, config.tenants[slug].environment)
    except HatchetApiError as exc:
        if "slug already exists" not in api_message(exc):
            raise
        done = f" (created before it: {', '.join(result.created)})" if result.created else ""
        raise TenantAccessDenied(
            f"tenant slug {slug!r} is taken on {conn.server.url} by a tenant "
            f"{conn.server.email} cannot see; ask its owners to invite {conn.server.email} as "
            f"admin, or name the tenant otherwise in hatchet-local.yaml; stopped before "
            f"{slug}{done}, no token or member changed"
        ) from None


def write_team_files(conn: Connection, config: Config) -> list[tuple[str, str | None, str]]:
    """`.hatchet/<tenant>.env` and `.hatchet/<tenant>.<namespace>.env` for every declared
    tenant with a kept token: (tenant, namespace, path)."""
    kept = conn.store.tenant_tokens()
    written = []
    for slug, spec in config.tenants.items():
        if slug not in kept:
            continue
        for namespace in (None, *spec.namespaces):
            path = team_file(config, slug, namespace)
            write_handout(conn, kept[slug], namespace, path)
            written.append((slug, namespace, str(path)))
    return written
