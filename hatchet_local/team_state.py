"""The team files of one Hatchet server, whoever started it: the admin's session, the token
kept for each tenant, the env files those tokens were handed out to, logins made, tenants
archived. All private (0600 in a 0700 directory).

A stack hatchet-local started keeps them in its own directory (state.StackDir); a server it
did not start keeps them under `<state root>/servers/<host>-<port>-<hash>/` (ServerDir):

    session.json   the admin's session cookie and email (0600)
    tenants.json   the token kept for each tenant (0600)
    handouts.json  which env file got which tenant's token, for `token list` and `rotate`
    users.json     the passwords of logins made by `user create` (0600)
    archived.json  tenants archived by `tenant archive`
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hatchet_local.errors import ConfigError
from hatchet_local.fsutil import atomic_write, check_private, ensure_private_dir, read_text


@dataclass(frozen=True)
class Token:
    token: str
    tenant_id: str
    server_url: str


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
class StoredSession:
    email: str
    cookie: str
    saved: str


@dataclass(frozen=True)
class Handout:
    """An env file (or Hatchet CLI profile file) a tenant's token was written to."""

    tenant: str
    token_id: str
    path: str
    namespace: str | None
    at: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def load_json(path: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: corrupt JSON at line {exc.lineno}; remove it to reset") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object; remove it to reset")
    return data


class TeamStore:
    """The team files in `self.path`. Every one is refused, the same way, when others may
    read it; a corrupt one is a ConfigError naming it."""

    path: Path

    @property
    def tenants_file(self) -> Path:
        return self.path / "tenants.json"

    @property
    def users_file(self) -> Path:
        return self.path / "users.json"

    @property
    def session_file(self) -> Path:
        return self.path / "session.json"

    @property
    def handouts_file(self) -> Path:
        return self.path / "handouts.json"

    @property
    def archived_file(self) -> Path:
        return self.path / "archived.json"

    def team_files(self) -> tuple[Path, ...]:
        return (
            self.tenants_file,
            self.users_file,
            self.session_file,
            self.handouts_file,
            self.archived_file,
        )

    def _write(self, path: Path, data: object) -> None:
        ensure_private_dir(self.path)
        atomic_write(path, json.dumps(data, indent=2) + "\n")

    def _secret_json(self, path: Path, *, corrupt_ok: bool = False) -> dict[str, Any]:
        """A JSON object from a file of secrets; {} when it is absent. A corrupt file is a
        ConfigError naming it, or {} with `corrupt_ok` (what it held can be made again)."""
        check_private(path)
        text = read_text(path)
        if not text:
            return {}
        try:
            return load_json(path, text)
        except ConfigError:
            if corrupt_ok:
                return {}
            raise

    # --- tokens kept per tenant ----------------------------------------------------------

    def tenant_tokens(self) -> dict[str, TenantToken]:
        """The token kept for each tenant, by slug; an unreadable entry is left out (and so
        re-minted, never trusted)."""
        tokens = {}
        for slug, entry in self._secret_json(self.tenants_file).items():
            try:
                tokens[slug] = TenantToken(**entry)
            except TypeError:
                continue
        return tokens

    def kept_tokens(self) -> list[str]:
        return [token.token for token in self.tenant_tokens().values()]

    def own_tokens(self) -> list[str]:
        """Tokens kept besides the tenants' (a stack's own client token)."""
        return []

    def save_tenant_tokens(self, tokens: dict[str, TenantToken]) -> None:
        self._write(
            self.tenants_file, {slug: asdict(token) for slug, token in sorted(tokens.items())}
        )

    # --- logins made by `user create` ----------------------------------------------------

    def user_passwords(self) -> dict[str, str]:
        """The password of each login `user create` made, by email."""
        data = self._secret_json(self.users_file)
        return {email: value for email, value in data.items() if isinstance(value, str)}

    def save_user_password(self, email: str, password: str) -> None:
        self._write(self.users_file, {**self.user_passwords(), email: password})

    # --- the admin's session -------------------------------------------------------------

    def session(self) -> StoredSession | None:
        data = self._secret_json(self.session_file, corrupt_ok=True)
        try:
            return StoredSession(**data) if data else None
        except TypeError:
            return None  # an unreadable session means logging in again

    def save_session(self, session: StoredSession) -> None:
        self._write(self.session_file, asdict(session))

    def forget_session(self) -> bool:
        existed = self.session_file.is_file()
        self.session_file.unlink(missing_ok=True)
        return existed

    # --- hand-outs and archived tenants --------------------------------------------------

    def handouts(self) -> list[Handout]:
        rows = self._secret_json(self.handouts_file, corrupt_ok=True).get("handouts") or []
        found = []
        for row in rows:
            try:
                found.append(Handout(**row))
            except TypeError:
                continue
        return found

    def record_handout(self, handout: Handout) -> None:
        """Remember `handout`, replacing an earlier one of the same file."""
        kept = [h for h in self.handouts() if h.path != handout.path]
        self._write(self.handouts_file, {"handouts": [h.as_dict() for h in [*kept, handout]]})

    def archived(self) -> dict[str, str]:
        """Tenants archived by `tenant archive`: slug -> when."""
        data = self._secret_json(self.archived_file, corrupt_ok=True)
        return {slug: str(at) for slug, at in data.items()}

    def mark_archived(self, slug: str, at: str) -> None:
        self._write(self.archived_file, {**self.archived(), slug: at})


def server_key(url: str) -> str:
    """`hatchet.example.com-443-1a2b3c`: readable, and unique per URL."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = re.sub("[^a-z0-9.-]+", "-", (parts.hostname or "server").lower())
    digest = hashlib.sha1(url.rstrip("/").encode(), usedforsecurity=False).hexdigest()[:6]
    return f"{host}-{port}-{digest}"


class ServerDir(TeamStore):
    """The team files of a server hatchet-local did not start."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.path = root / "servers" / server_key(url)

    def check_team_files(self) -> None:
        for path in self.team_files():
            check_private(path)
