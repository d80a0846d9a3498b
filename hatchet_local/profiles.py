"""A profile in the Hatchet CLI's own profile file (`~/.hatchet/profiles.yaml`), so that
`hatchet` (its CLI and TUI) works against a hatchet-local stack.

The file's format is the Hatchet CLI's (`cmd/hatchet-cli/cli/internal/config/cli/profile.go`):

    profiles:
      <name>: {tenantId, name, token, expiresAt, apiServerURL, grpcHostPort, tlsStrategy}
    defaultProfile: <name>

Other profiles and keys are kept, the file keeps its mode (new files are 0600, the
directory 0700), and `defaultProfile` is set only when there is none, as the CLI does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from hatchet_local.errors import ConfigError
from hatchet_local.fsutil import PRIVATE_FILE, atomic_write, ensure_private_dir, read_text
from hatchet_local.locks import hatchet_config_lock


def profiles_file(environ: Mapping[str, str] | None = None) -> Path:
    """`$HOME/.hatchet/profiles.yaml`."""
    env = os.environ if environ is None else environ
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".hatchet" / "profiles.yaml"


def write_profile(
    path: Path,
    name: str,
    token: str,
    claims: Mapping[str, object],
    tenant_id: str,
    *,
    tls_strategy: str = "none",
) -> bool:
    """Add or replace profile `name`; True when it was new. Holds `config.lock` beside the
    file meanwhile, as Hatchet's CLI does."""
    if not path.parent.is_dir():
        ensure_private_dir(path.parent)
    with hatchet_config_lock(path.parent / "config.lock"):
        return _write_profile(path, name, token, claims, tenant_id, tls_strategy=tls_strategy)


def _write_profile(
    path: Path,
    name: str,
    token: str,
    claims: Mapping[str, object],
    tenant_id: str,
    *,
    tls_strategy: str,
) -> bool:
    text = read_text(path)
    try:
        data: Any = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc}); fix or move it away") from None
    data = data or {}
    if not isinstance(data, dict) or not isinstance(data.get("profiles") or {}, dict):
        raise ConfigError(f"{path}: expected 'profiles:' as a mapping; fix or move it away")
    profiles = data.get("profiles") or {}
    expires = claims.get("exp")
    profile = {
        "tenantId": tenant_id,
        "name": name,
        "token": token,
        "expiresAt": (
            datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z")
            if isinstance(expires, int | float)
            else ""
        ),
        "apiServerURL": str(claims.get("server_url", "")),
        "grpcHostPort": str(claims.get("grpc_broadcast_address", "")),
        "tlsStrategy": tls_strategy,
    }
    new = name not in profiles
    profiles[name] = profile
    data["profiles"] = profiles
    if not data.get("defaultProfile"):
        data["defaultProfile"] = name
    mode = PRIVATE_FILE if text is None else path.stat().st_mode & 0o777
    atomic_write(path, yaml.safe_dump(data, sort_keys=False), mode=mode)
    return new
