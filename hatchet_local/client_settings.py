"""What a Hatchet client needs to reach a stack: the settings the SDKs read, and the
addresses a token carries."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from hatchet_local.state import Token

TOKEN_KEY = "HATCHET_CLIENT_TOKEN"
TENANT_KEY = "HATCHET_CLIENT_TENANT_ID"
SECRET_KEYS = frozenset({TOKEN_KEY})
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
        f"Next: load {env_file} into your worker's environment (in a shell: "
        f"`set -a; . {env_file}; set +a`); the Hatchet Python SDK reads only "
        f"{', '.join(SDK_ENV_FILES[:-1])} and {SDK_ENV_FILES[-1]} from its working directory "
        f"by itself."
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
    server_url: str, grpc_address: str, token: Token, namespace: str | None
) -> dict[str, str]:
    """What the Hatchet SDKs need to reach this stack."""
    settings = {
        TOKEN_KEY: token.token,
        "HATCHET_CLIENT_TLS_STRATEGY": "none",
        "HATCHET_CLIENT_HOST_PORT": grpc_address,
        "HATCHET_CLIENT_SERVER_URL": server_url,
        TENANT_KEY: token.tenant_id,
    }
    if namespace:
        settings["HATCHET_CLIENT_NAMESPACE"] = namespace
    return settings


def token_settings(token: Token, namespace: str | None, grpc_fallback: str = "") -> dict[str, str]:
    """Client settings with the addresses baked into the token (an `up --advertise` stack's
    host), `grpc_fallback` when it names none."""
    grpc_address = str(token_claims(token.token).get("grpc_broadcast_address") or grpc_fallback)
    return client_settings(token.server_url, grpc_address, token, namespace)
