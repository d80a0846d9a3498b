"""The engine's own admin tool, run inside the engine's container: a working client token
(proven by the REST API), and logins and tenants made from the admin's side.

Made from the admin's side, a login or a tenant needs no open sign-up or tenant creation in
the API, which a stack that other machines reach keeps closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from hatchet_local.compose import Compose
from hatchet_local.defaults import ENGINE_SERVICE
from hatchet_local.errors import BootstrapFailed, HatchetApiError
from hatchet_local.plainhttp import is_transport_error
from hatchet_local.runner import tail

if TYPE_CHECKING:
    import httpx

TOKEN_NAME = "hatchet-local"
# Ten years: a local stack's token ends with the stack, not with a clock.
TOKEN_LIFETIME = "87600h"


def mint_token(
    compose: Compose, tenant_id: str, service: str = ENGINE_SERVICE, timeout: float = 120
) -> str:
    """`hatchet-admin token create` inside the running engine container (so the token carries
    the engine's own server URL and gRPC address)."""
    result = compose.exec(
        service,
        "/hatchet-admin", "token", "create", "--config", "/config",
        "--tenant-id", tenant_id, "--name", TOKEN_NAME, "--expiresIn", TOKEN_LIFETIME,
        timeout=timeout,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    if result.ok and lines and lines[-1].startswith("ey"):
        return lines[-1].strip()
    raise BootstrapFailed(
        f"minting a token in {service} failed (exit {result.returncode}); "
        f"see `hatchet-local logs {service}`",
        details=compose.redact(tail(result.stderr or result.stdout, 10)),
    )


def token_status(
    client: httpx.Client, server_url: str, token: str, tenant_id: str
) -> Literal["valid", "rejected"]:
    """Ask the API whether it accepts `token` for `tenant_id` (one authenticated call)."""
    url = f"{server_url}/api/v1/tenants/{tenant_id}"
    try:
        response = client.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except Exception as exc:
        if not is_transport_error(exc):
            raise
        raise BootstrapFailed(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
    if response.status_code == 200:
        return "valid"
    if response.status_code in (401, 403):
        return "rejected"
    raise BootstrapFailed(f"GET {url} answered HTTP {response.status_code}; expected 200")


def seed(compose: Compose, values: Mapping[str, str], what: str, timeout: float = 120) -> None:
    """`hatchet-admin seed` with `values` (ADMIN_*, DEFAULT_TENANT_*) in its environment:
    it makes the login ADMIN_EMAIL unless it exists, and the tenant DEFAULT_TENANT_SLUG unless
    it exists (with ADMIN_EMAIL as its owner). The values travel by name only, never in argv."""
    result = compose.exec(
        ENGINE_SERVICE, "/hatchet-admin", "seed", "--config", "/config",
        timeout=timeout, env=values,
    )  # fmt: skip
    if not result.ok:
        raise HatchetApiError(
            f"{what} failed: hatchet-admin seed exited {result.returncode}; see "
            f"`hatchet-local logs {ENGINE_SERVICE}`",
            details=compose.redact(tail(result.stderr or result.stdout, 5)),
        )


def seed_user(compose: Compose, email: str, name: str, password: str, tenant_slug: str) -> None:
    """A login for `email` (email verified) made by the admin tool; it joins no tenant
    (`tenant_slug` names one that exists, so the seed makes none)."""
    seed(compose, {
        "ADMIN_EMAIL": email, "ADMIN_NAME": name, "ADMIN_PASSWORD": password,
        "DEFAULT_TENANT_SLUG": tenant_slug,
    }, f"creating user {email}")  # fmt: skip


def seed_tenant(
    compose: Compose, tenant_id: str, slug: str, owner_email: str, owner_password: str
) -> None:
    """Tenant `slug` with id `tenant_id`, owned by the login `owner_email` (which exists: its
    password is only checked for form, never changed)."""
    seed(compose, {
        "ADMIN_EMAIL": owner_email, "ADMIN_PASSWORD": owner_password,
        "DEFAULT_TENANT_ID": tenant_id, "DEFAULT_TENANT_SLUG": slug, "DEFAULT_TENANT_NAME": slug,
    }, f"creating tenant {slug}")  # fmt: skip
