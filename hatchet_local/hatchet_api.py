"""Hatchet's REST API as a dashboard user sees it: a login session (cookie), tenants,
API tokens, invites and members. Only what hatchet-local needs, over an injected httpx.Client.

Token management (create, list, revoke) is refused to bearer tokens by the engine, so every
call here runs in a user's session, never with a client token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from hatchet_local.errors import HatchetApiError

SESSION_COOKIE = "hatchet"
ROLES = ("member", "admin")


@dataclass(frozen=True)
class Tenant:
    id: str
    slug: str
    name: str
    role: str = ""


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    expires_at: str


@dataclass(frozen=True)
class Member:
    email: str
    name: str
    role: str


class Session:
    """One user's login to one stack's API."""

    def __init__(self, http: httpx.Client, server_url: str, cookie: str, email: str) -> None:
        self.http = http
        self.server_url = server_url.rstrip("/")
        self.email = email
        self._cookie = cookie

    def request(self, method: str, path: str, json: object = None) -> Any:
        """`method path` in this session; the decoded JSON body (None for 204), or
        HatchetApiError naming the call and the API's own message."""
        response = _send(
            self.http, method, f"{self.server_url}{path}", json,
            cookies={SESSION_COOKIE: self._cookie},
        )  # fmt: skip
        return _body(response, method, path)

    # --- tenants -------------------------------------------------------------------------

    def tenants(self) -> list[Tenant]:
        """The tenants this user is a member of."""
        data = self.request("GET", "/api/v1/users/memberships")
        return [
            Tenant(
                id=row["tenant"]["metadata"]["id"],
                slug=row["tenant"]["slug"],
                name=row["tenant"]["name"],
                role=row.get("role", ""),
            )
            for row in data.get("rows") or []
        ]

    def create_tenant(self, slug: str) -> Tenant:
        data = self.request("POST", "/api/v1/tenants", {"name": slug, "slug": slug})
        return Tenant(id=data["metadata"]["id"], slug=data["slug"], name=data["name"], role="OWNER")

    # --- API tokens ----------------------------------------------------------------------

    def create_token(self, tenant_id: str, name: str, expires_in: str) -> str:
        body = {"name": name, "expiresIn": expires_in}
        data = self.request("POST", f"/api/v1/tenants/{tenant_id}/api-tokens", body)
        return str(data["token"])

    def tokens(self, tenant_id: str) -> list[ApiToken]:
        data = self.request("GET", f"/api/v1/tenants/{tenant_id}/api-tokens")
        return [
            ApiToken(id=row["metadata"]["id"], name=row["name"], expires_at=row["expiresAt"])
            for row in data.get("rows") or []
        ]

    def revoke_token(self, token_id: str) -> None:
        self.request("POST", f"/api/v1/api-tokens/{token_id}")

    # --- people --------------------------------------------------------------------------

    def invite(self, tenant_id: str, email: str, role: str) -> None:
        body = {"email": email, "role": role.upper()}
        self.request("POST", f"/api/v1/tenants/{tenant_id}/invites", body)

    def pending_invites(self) -> list[tuple[str, str]]:
        """(invite id, tenant id) of the invites addressed to this user."""
        data = self.request("GET", "/api/v1/users/invites")
        return [(row["metadata"]["id"], row["tenantId"]) for row in data.get("rows") or []]

    def accept_invite(self, invite_id: str) -> None:
        self.request("POST", "/api/v1/users/invites/accept", {"invite": invite_id})

    def members(self, tenant_id: str) -> list[Member]:
        data = self.request("GET", f"/api/v1/tenants/{tenant_id}/members")
        return [
            Member(
                email=row["user"]["email"],
                name=row["user"].get("name") or "",
                role=str(row["role"]).lower(),
            )
            for row in data.get("rows") or []
        ]


def login(http: httpx.Client, server_url: str, email: str, password: str) -> Session:
    """Log in with email and password; the session cookie is kept by the Session (never
    in the shared client's cookie jar, so two sessions never mix)."""
    url = f"{server_url.rstrip('/')}/api/v1/users/login"
    response = _send(http, "POST", url, {"email": email, "password": password})
    _body(response, "POST", "/api/v1/users/login")
    return Session(http, server_url, _session_cookie(response, "login"), email)


def register(http: httpx.Client, server_url: str, email: str, name: str, password: str) -> Session:
    """Create a dashboard user (basic auth sign-up); the answer carries the new user's
    session."""
    url = f"{server_url.rstrip('/')}/api/v1/users/register"
    body = {"email": email, "name": name, "password": password}
    response = _send(http, "POST", url, body)
    _body(response, "POST", "/api/v1/users/register")
    return Session(http, server_url, _session_cookie(response, "sign-up"), email)


def _send(
    http: httpx.Client,
    method: str,
    url: str,
    json: object = None,
    cookies: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    try:
        response = http.request(method, url, json=json, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise HatchetApiError(
            f"{method} {url} failed: {type(exc).__name__}: {exc}; is the stack up "
            f"(`hatchet-local status`)?"
        ) from exc
    # The shared client's jar must not keep a session: a later call that proves a bearer
    # token would carry it too, and the API would answer for the session instead.
    http.cookies.delete(SESSION_COOKIE)
    return response


def _body(response: httpx.Response, method: str, path: str) -> Any:
    if response.is_success:
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
    raise HatchetApiError(
        f"{method} {path} answered HTTP {response.status_code}: {_api_message(response)}"
    )


def _api_message(response: httpx.Response) -> str:
    """The API's own description of the failure (`{"errors": [{"description": ...}]}`)."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("description") or errors[0])
        if data.get("description"):
            return str(data["description"])
    return str(data)[:200]


def _session_cookie(response: httpx.Response, what: str) -> str:
    """Read from Set-Cookie itself: the stdlib cookie jar refuses the engine's cookie domain
    (`localhost`, an IP address) for hosts it deems not to match."""
    for header in response.headers.get_list("set-cookie"):
        name, _, value = header.split(";", 1)[0].strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    raise HatchetApiError(f"the {what} answer carried no '{SESSION_COOKIE}' session cookie")
