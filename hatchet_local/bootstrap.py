"""A working client token: minted by the engine's own admin tool, proven by the REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from hatchet_local.compose import Compose
from hatchet_local.defaults import ENGINE_SERVICE
from hatchet_local.errors import BootstrapFailed
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
