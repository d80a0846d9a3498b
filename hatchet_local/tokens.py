"""Tenant tokens over a Connection: the one kept per tenant, minted and proven, rotated
(new one written everywhere the old one was handed out, old one revoked only once the new
one is proven), others created with an expiry (read-only where the server has them),
listed and revoked; and the env files they are handed out in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from hatchet_local.bootstrap import TOKEN_NAME, token_status
from hatchet_local.client_settings import server_settings, token_claims, token_settings
from hatchet_local.config import Config
from hatchet_local.envfile import write_env_file
from hatchet_local.errors import ConfigError, HatchetApiError, ServerRefuses, TenantNotFound
from hatchet_local.fsutil import ensure_private_dir, read_text, refuse_link
from hatchet_local.hatchet_api import Tenant
from hatchet_local.server import READ_ONLY_SINCE, Connection
from hatchet_local.state import now_iso
from hatchet_local.team_state import Handout, TenantToken

TEAM_DIR = ".hatchet"
ROTATE_WITHIN = 7 * 86400  # a kept token this close to its expiry is rotated by `apply`


@dataclass(frozen=True)
class TokenRow:
    """One line of `token list`."""

    id: str
    tenant: str
    name: str
    expires_at: str
    in_use: bool  # the one hatchet-local keeps for the tenant
    handed_out: int  # env files hatchet-local wrote it to
    read_only: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class RotateResult:
    tenant: str
    old_id: str
    new_id: str
    rewritten: list[str]  # files whose token was replaced
    skipped: list[str]  # handed-out files that no longer held the old token

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def token_id(token: str) -> str:
    return str(token_claims(token).get("token_id", ""))


def seconds_left(token: str, now: float | None = None) -> float | None:
    expires = token_claims(token).get("exp")
    if not isinstance(expires, int | float):
        return None
    return float(expires) - (time.time() if now is None else now)


def find_tenant(conn: Connection, slug: str) -> Tenant:
    for tenant in conn.session.tenants():
        if tenant.slug == slug:
            return tenant
    where = f"stack {conn.server.stack}" if conn.server.local else conn.server.url
    raise TenantNotFound(
        f"no tenant {slug!r} on {where} that {conn.server.email} is a member of; add it "
        f"under tenants: in hatchet-local.yaml and run `hatchet-local apply` (or `up`), or "
        f"`hatchet-local tenant create {slug}`"
    )


def settings(conn: Connection, token: TenantToken, namespace: str | None) -> dict[str, str]:
    """Client settings for one tenant (and namespace) of the connection's server."""
    server = conn.server
    if server.local:
        return token_settings(token.as_token(), namespace)
    ca = str(server.ca_bundle) if server.ca_bundle else None
    return server_settings(token.as_token(), namespace, server.grpc, ca)


def is_valid(conn: Connection, token: TenantToken) -> bool:
    conn.ctx.redact.add(token.token)
    http = conn.session.http
    return token_status(http, conn.server.url, token.token, token.tenant_id) == "valid"


def kept_state(conn: Connection, tenant: Tenant, stored: TenantToken | None) -> str:
    """`ok`, `missing`, `rejected` (revoked, expired, of wiped data) or `expiring`."""
    if stored is None or stored.tenant_id != tenant.id or stored.server_url != conn.server.url:
        return "missing"
    if not is_valid(conn, stored):
        return "rejected"
    left = seconds_left(stored.token)
    if not conn.server.local and left is not None and left < ROTATE_WITHIN:
        return "expiring"
    return "ok"


def mint(
    conn: Connection,
    tenant: Tenant,
    name: str = TOKEN_NAME,
    lifetime: str | None = None,
    *,
    read_only: bool = False,
) -> TenantToken:
    """A new token for `tenant`, proven by one authenticated call (a read-write one)."""
    if read_only and not conn.read_only_supported():
        since = ".".join(map(str, READ_ONLY_SINCE))
        raise ServerRefuses(
            f"read-only tokens need Hatchet v{since} or newer; {conn.server.url} runs "
            f"{conn.info.version or 'a release that does not say its version'}, whose API "
            f"tokens all have full access; nothing was created"
        )
    token = conn.session.create_token(
        tenant.id, name, lifetime or conn.server.token_lifetime, read_only=read_only
    )
    kept = TenantToken(tenant.slug, tenant.id, token, conn.server.url)
    if not read_only and not is_valid(conn, kept):
        raise HatchetApiError(f"the API rejects the token just minted for tenant {tenant.slug}")
    conn.ctx.redact.add(token)
    return kept


def keep(conn: Connection, token: TenantToken) -> None:
    tokens = conn.store.tenant_tokens()
    tokens[token.slug] = token
    conn.store.save_tenant_tokens(tokens)


def kept_token(conn: Connection, slug: str, *, may_mint: bool = True) -> TenantToken:
    """The token kept for tenant `slug`, minted (and kept) when there is none that works and
    `may_mint` (a production tenant's tokens change only through `apply --yes`)."""
    tenant = find_tenant(conn, slug)
    stored = conn.store.tenant_tokens().get(slug)
    if stored is not None and kept_state(conn, tenant, stored) in ("ok", "expiring"):
        return stored
    if not may_mint:
        raise ConfigError(
            f"no working token kept for production tenant {slug}; `hatchet-local apply --yes` "
            f"mints it (a production tenant's tokens change only with --yes)"
        )
    token = mint(conn, tenant)
    keep(conn, token)
    return token


# --- hand-outs -----------------------------------------------------------------------------


def team_file(config: Config, tenant: str, namespace: str | None) -> Path:
    name = f"{tenant}.{namespace}.env" if namespace else f"{tenant}.env"
    return config.project_dir / TEAM_DIR / name


def write_handout(conn: Connection, token: TenantToken, namespace: str | None, path: Path) -> None:
    """Merge the settings into `path` (0600, other lines kept; the team directory made
    0700) and remember it, so `token list` counts it and `token rotate` rewrites it. A team
    directory that is a link (a cloned repository's, say) is refused: making it 0700 would
    change its target, wherever that is."""
    if path.parent.name == TEAM_DIR:
        refuse_link(path.parent)
        ensure_private_dir(path.parent)
    write_env_file(path, settings(conn, token, namespace))
    handout = Handout(token.slug, token_id(token.token), str(path.resolve()), namespace, now_iso())
    conn.store.record_handout(handout)


def rotate(conn: Connection, slug: str) -> RotateResult:
    """A new kept token for `slug`: minted and proven, written to every file the old one was
    handed out to (a file that holds another token by now is left alone), kept, and only
    then is the old one revoked."""
    tenant = find_tenant(conn, slug)
    old = conn.store.tenant_tokens().get(slug)
    new = mint(conn, tenant)
    rewritten, skipped = [], []
    old_id = token_id(old.token) if old else ""
    for handout in conn.store.handouts():
        if handout.tenant != slug or not old or handout.token_id != old_id:
            continue
        path = Path(handout.path)
        if old.token not in (read_text(path) or ""):
            skipped.append(handout.path)
            continue
        write_handout(conn, new, handout.namespace, path)
        rewritten.append(handout.path)
    keep(conn, new)
    if old is not None and old.tenant_id == tenant.id:
        conn.session.revoke_token(old_id)
    return RotateResult(slug, old_id, token_id(new.token), rewritten, skipped)


# --- other tokens --------------------------------------------------------------------------


def create_token(
    conn: Connection, slug: str, name: str, lifetime: str, *, read_only: bool = False
) -> tuple[str, TenantToken]:
    """A new token for tenant `slug` (not the one hatchet-local keeps); (id, token)."""
    token = mint(conn, find_tenant(conn, slug), name, lifetime, read_only=read_only)
    return token_id(token.token), token


def list_tokens(conn: Connection, slug: str | None) -> list[TokenRow]:
    """Live tokens of one tenant, or of every tenant, with what hatchet-local did with them."""
    kept = {token_id(t) for t in [*conn.store.kept_tokens(), *conn.store.own_tokens()]}
    handed: dict[str, int] = {}
    for handout in conn.store.handouts():
        handed[handout.token_id] = handed.get(handout.token_id, 0) + 1
    tenants = [find_tenant(conn, slug)] if slug else conn.session.tenants()
    return [
        TokenRow(
            token.id,
            tenant.slug,
            token.name,
            token.expires_at,
            token.id in kept,
            handed.get(token.id, 0),
            token.read_only,
        )
        for tenant in tenants
        for token in conn.session.tokens(tenant.id)
    ]


def revoke_token(
    conn: Connection, revoked_id: str, production: Iterable[str] = (), *, yes: bool = True
) -> None:
    """Revoke a token by id; a kept one is forgotten (the next `apply`/`up` mints another).
    A token of a `production` tenant is revoked only with `yes`."""
    if not yes:
        for tenant in conn.session.tenants():
            if tenant.slug in production and revoked_id in {
                token.id for token in conn.session.tokens(tenant.id)
            }:
                raise ConfigError(
                    f"token {revoked_id} belongs to production tenant {tenant.slug}: add --yes "
                    f"to revoke it; nothing was changed"
                )
    conn.session.revoke_token(revoked_id)
    tokens = conn.store.tenant_tokens()
    left = {slug: t for slug, t in tokens.items() if token_id(t.token) != revoked_id}
    if left != tokens:
        conn.store.save_tenant_tokens(left)
