"""What a Hatchet client needs to reach a stack: the settings the SDKs read, and the
addresses a token carries."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path

from hatchet_local.team_state import Token

TOKEN_KEY = "HATCHET_CLIENT_TOKEN"
TENANT_KEY = "HATCHET_CLIENT_TENANT_ID"
SERVER_URL_KEY = "HATCHET_CLIENT_SERVER_URL"
# The TypeScript SDK's name for the REST URL (the Python and Go SDKs read SERVER_URL).
API_URL_KEY = "HATCHET_CLIENT_API_URL"
NAMESPACE_KEY = "HATCHET_CLIENT_NAMESPACE"
SECRET_KEYS = frozenset({TOKEN_KEY})
# The order `hatchet profile env` (Hatchet's CLI) prints its variables in
# (cmd/hatchet-cli/cli/profile.go, renderProfileEnv); a namespace comes after.
HATCHET_CLI_ORDER = (
    TOKEN_KEY,
    "HATCHET_CLIENT_TLS_STRATEGY",
    "HATCHET_CLIENT_HOST_PORT",
    SERVER_URL_KEY,
    API_URL_KEY,
    TENANT_KEY,
    NAMESPACE_KEY,
)
# The files the Python SDK loads by itself, from its working directory only (pydantic
# settings, `hatchet_sdk/config.py`); the TypeScript and Go SDKs load none of them.
SDK_ENV_FILES = (".env", ".env.hatchet", ".env.dev", ".env.local")


def how_to_load(env_file: Path, workdir: Path) -> str:
    """The closing line of `up`: how a worker gets the settings written to `env_file`."""
    if env_file.name in SDK_ENV_FILES and env_file.parent == workdir:
        return (
            f"Next: run your worker from this directory; the Hatchet Python SDK reads "
            f"{env_file.name} from its working directory by itself."
        )
    return (
        f"Next: start your worker with `hatchet-local run -- CMD` (it puts the settings in the "
        f"worker's environment), or load {env_file} yourself (`set -a; . {env_file}; set +a`); "
        f"the Hatchet Python SDK reads only {', '.join(SDK_ENV_FILES[:-1])} and "
        f"{SDK_ENV_FILES[-1]} from its working directory by itself."
    )


def token_claims(token: str) -> dict[str, object]:
    """The claims of a Hatchet token (a JWT), unverified: what the SDKs read from it.
    Empty when `token` is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def client_settings(
    server_url: str, grpc_address: str, token: Token, namespace: str | None, tls: bool = False
) -> dict[str, str]:
    """What the Hatchet SDKs need to reach this stack (or, with `tls`, a server behind TLS)."""
    settings = {
        TOKEN_KEY: token.token,
        "HATCHET_CLIENT_TLS_STRATEGY": "tls" if tls else "none",
        "HATCHET_CLIENT_HOST_PORT": grpc_address,
        SERVER_URL_KEY: server_url,
        TENANT_KEY: token.tenant_id,
    }
    if namespace:
        settings[NAMESPACE_KEY] = namespace
    return settings


def for_every_sdk(settings: Mapping[str, str]) -> dict[str, str]:
    """The settings in Hatchet's CLI order, with the REST URL also under the TypeScript
    SDK's name: what a process of any language needs in its environment."""
    every = dict(settings)
    if SERVER_URL_KEY in settings:
        every[API_URL_KEY] = settings[SERVER_URL_KEY]
    return {key: every[key] for key in HATCHET_CLI_ORDER if key in every}


def token_settings(token: Token, namespace: str | None, grpc_fallback: str = "") -> dict[str, str]:
    """Client settings with the addresses baked into the token (an `up --advertise` stack's
    host), `grpc_fallback` when it names none."""
    grpc_address = str(token_claims(token.token).get("grpc_broadcast_address") or grpc_fallback)
    return client_settings(token.server_url, grpc_address, token, namespace)


def server_settings(
    token: Token, namespace: str | None, grpc_override: str | None, ca_bundle: str | None
) -> dict[str, str]:
    """Client settings for a server hatchet-local did not start: TLS verified (against
    `ca_bundle` when given, a path the SDK reads), the gRPC address from the token unless
    overridden. The namespace is only a prefix the SDK puts on names inside the tenant."""
    grpc_address = grpc_override or str(token_claims(token.token).get("grpc_broadcast_address"))
    settings = client_settings(token.server_url, grpc_address, token, namespace, tls=True)
    if ca_bundle:
        settings["HATCHET_CLIENT_TLS_ROOT_CA_FILE"] = ca_bundle
    return settings
