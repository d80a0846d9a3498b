"""Hatchet's REST API as a dashboard user sees it: what the server is (version, meta), a
login session (cookie), tenants, API tokens, invites and members. Only what hatchet-local
needs, over an injected httpx.Client.

Token management (create, list, revoke) is refused to bearer tokens by the engine, so every
call here runs in a user's session, never with a client token. Every failure is one line:
unreachable, TLS, rate-limited (429) and refused logins each have their own error class.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx

from hatchet_local.errors import (
    HatchetApiError,
    LoginRefused,
    RateLimited,
    ServerUnreachable,
    TlsFailure,
)

SESSION_COOKIE = "hatchet"
ROLES = ("member", "admin")  # what `user create` may grant
STACK_HINT = "is the stack up (`hatchet-local status`)?"
RETRY_AFTER_DEFAULT = 10.0  # seconds, when a 429 carries no Retry-After (Hatchet's does not)


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
    read_only: bool = False


@dataclass(frozen=True)
class Member:
    email: str
    name: str
    role: str
    id: str = ""


@dataclass(frozen=True)
class Invite:
    id: str
    email: str
    role: str


@dataclass(frozen=True)
class ServerInfo:
    """What a server says about itself before anyone logs in."""

    version: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def login_schemes(self) -> list[str]:
        return list((self.meta.get("auth") or {}).get("schemes") or [])

    def allows(self, what: str) -> bool:
        """`allowCreateTenant`, `allowInvites`, `allowSignup`: on unless the server says off."""
        return self.meta.get(what) is not False

    def version_tuple(self) -> tuple[int, ...]:
        """(0, 101, 27) for `v0.101.27`; () when the server does not say."""
        match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", self.version)
        return tuple(int(part) for part in match.groups()) if match else ()


class Session:
    """One user's login to one server's API."""

    def __init__(
        self, http: httpx.Client, server_url: str, cookie: str, email: str, hint: str = STACK_HINT
    ) -> None:
        self.http = http
        self.server_url = server_url.rstrip("/")
        self.email = email
        self.cookie = cookie
        self.hint = hint

    def request(self, method: str, path: str, json: object = None) -> Any:
        """`method path` in this session; the decoded JSON body (None for 204), or
        HatchetApiError naming the call and the API's own message."""
        response = _send(
            self.http, method, f"{self.server_url}{path}", json,
            cookies={SESSION_COOKIE: self.cookie}, hint=self.hint,
        )  # fmt: skip
        return _body(response, method, path)

    def alive(self) -> bool:
        """Whether the server still accepts this session."""
        response = _send(
            self.http, "GET", f"{self.server_url}/api/v1/users/current", None,
            cookies={SESSION_COOKIE: self.cookie}, hint=self.hint,
        )  # fmt: skip
        if response.status_code in (401, 403):
            return False
        _body(response, "GET", "/api/v1/users/current")
        return True

    def logout(self) -> None:
        self.request("POST", "/api/v1/users/logout")

    # --- tenants -------------------------------------------------------------------------

    def tenants(self) -> list[Tenant]:
        """The tenants this user is a member of."""
        data = self.request("GET", "/api/v1/users/memberships")
        return [
            Tenant(
                id=row["tenant"]["metadata"]["id"],
                slug=row["tenant"]["slug"],
                name=row["tenant"]["name"],
                role=str(row.get("role", "")).lower(),
            )
            for row in data.get("rows") or []
        ]

    def create_tenant(self, slug: str, environment: str | None = None) -> Tenant:
        body: dict[str, str] = {"name": slug, "slug": slug}
        if environment:
            body["environment"] = environment
        data = self.request("POST", "/api/v1/tenants", body)
        return Tenant(id=data["metadata"]["id"], slug=data["slug"], name=data["name"], role="owner")

    def rename_tenant(self, tenant_id: str, name: str) -> None:
        self.request("PATCH", f"/api/v1/tenants/{tenant_id}", {"name": name})

    # --- API tokens ----------------------------------------------------------------------

    def create_token(
        self, tenant_id: str, name: str, expires_in: str, *, read_only: bool = False
    ) -> str:
        body: dict[str, object] = {"name": name, "expiresIn": expires_in}
        if read_only:
            body["readOnly"] = True
        data = self.request("POST", f"/api/v1/tenants/{tenant_id}/api-tokens", body)
        return str(data["token"])

    def tokens(self, tenant_id: str) -> list[ApiToken]:
        data = self.request("GET", f"/api/v1/tenants/{tenant_id}/api-tokens")
        return [
            ApiToken(
                id=row["metadata"]["id"],
                name=row["name"],
                expires_at=row["expiresAt"],
                read_only=bool(row.get("readOnly")),
            )
            for row in data.get("rows") or []
        ]

    def revoke_token(self, token_id: str) -> None:
        self.request("POST", f"/api/v1/api-tokens/{token_id}")

    # --- people --------------------------------------------------------------------------

    def invite(self, tenant_id: str, email: str, role: str) -> None:
        body = {"email": email, "role": role.upper()}
        self.request("POST", f"/api/v1/tenants/{tenant_id}/invites", body)

    def invites(self, tenant_id: str) -> list[Invite]:
        """The tenant's pending, unexpired invites."""
        data = self.request("GET", f"/api/v1/tenants/{tenant_id}/invites")
        return [
            Invite(id=row["metadata"]["id"], email=row["email"].lower(), role=row["role"].lower())
            for row in data.get("rows") or []
        ]

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
                email=row["user"]["email"].lower(),
                name=row["user"].get("name") or "",
                role=str(row["role"]).lower(),
                id=(row.get("metadata") or {}).get("id", ""),
            )
            for row in data.get("rows") or []
        ]

    def set_role(self, tenant_id: str, member_id: str, role: str) -> None:
        body = {"role": role.upper()}
        self.request("PATCH", f"/api/v1/tenants/{tenant_id}/members/{member_id}", body)


def server_info(http: httpx.Client, server_url: str, hint: str = STACK_HINT) -> ServerInfo:
    """The server's version (`/api/v1/version`) and meta (`/api/v1/meta`), no login needed."""
    base = server_url.rstrip("/")
    meta = _body(_send(http, "GET", f"{base}/api/v1/meta", hint=hint), "GET", "/api/v1/meta")
    version_response = _send(http, "GET", f"{base}/api/v1/version", hint=hint)
    version = ""
    if version_response.is_success:  # older servers have no /api/v1/version
        version = str((version_response.json() or {}).get("version", ""))
    return ServerInfo(version=version, meta=meta if isinstance(meta, dict) else {})


def login(
    http: httpx.Client, server_url: str, email: str, password: str, hint: str = STACK_HINT
) -> Session:
    """Log in with email and password; the session cookie is kept by the Session (never
    in the shared client's cookie jar, so two sessions never mix)."""
    url = f"{server_url.rstrip('/')}/api/v1/users/login"
    response = _send(http, "POST", url, {"email": email, "password": password}, hint=hint)
    if response.status_code in (400, 401) and "credential" in _api_message(response).lower():
        raise LoginRefused(
            f"{server_url}: wrong email or password for {email} (the server says "
            f"{_api_message(response)!r}); check server.email and the password"
        )
    if response.status_code == 405:
        raise LoginRefused(f"{server_url}: password login is off ({_api_message(response)})")
    _body(response, "POST", "/api/v1/users/login")
    return Session(http, server_url, _session_cookie(response, "login"), email, hint)


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
    *,
    cookies: dict[str, str] | None = None,
    hint: str = STACK_HINT,
) -> httpx.Response:
    headers = {}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    try:
        response = http.request(method, url, json=json, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise _transport_error(method, url, exc, hint) from exc
    # The shared client's jar must not keep a session: a later call that proves a bearer
    # token would carry it too, and the API would answer for the session instead.
    http.cookies.delete(SESSION_COOKIE)
    return response


def _transport_error(method: str, url: str, exc: httpx.HTTPError, hint: str) -> HatchetApiError:
    """A TLS failure says which check failed and what to do; anything else is unreachable."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    host = httpx.URL(url).host
    base = url.partition("/api/")[0]
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or str(cause)
        if cause.verify_code == 62 or "hostname" in reason.lower():  # X509_V_ERR_HOSTNAME_MISMATCH
            return TlsFailure(
                f"TLS: the certificate at {base} is not valid for host {host} "
                f"({reason}); use the host name on the certificate in server.url"
            )
        return TlsFailure(
            f"TLS: the certificate at {base} is not trusted ({reason}); give "
            f"its CA with server.ca_bundle (--ca-bundle), or --insecure to skip the check"
        )
    if isinstance(cause, ssl.SSLError):
        return TlsFailure(f"TLS with {host} failed ({cause}); is it an HTTPS port?")
    return ServerUnreachable(f"{method} {url} failed: {type(exc).__name__}: {exc}; {hint}")


def _body(response: httpx.Response, method: str, path: str) -> Any:
    if response.is_success:
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
    if response.status_code == 429:
        raise _rate_limited(response, method, path)
    raise HatchetApiError(
        f"{method} {path} answered HTTP {response.status_code}: {_api_message(response)}"
    )


def _rate_limited(response: httpx.Response, method: str, path: str) -> RateLimited:
    header = response.headers.get("retry-after", "")
    given = header.strip().isdigit()
    seconds = float(header) if given else RETRY_AFTER_DEFAULT
    how = "as the server asks" if given else "the server named no time"
    return RateLimited(
        f"{method} {path}: the server is rate-limiting these requests (HTTP 429); retry in "
        f"{seconds:.0f} s ({how}); nothing was changed",
        retry_after=seconds,
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


def api_message(error: HatchetApiError) -> str:
    """The API's words inside an error raised by `_body` (after `answered HTTP NNN: `)."""
    return error.message.partition(": ")[2].partition(": ")[2] or error.message


def _session_cookie(response: httpx.Response, what: str) -> str:
    """Read from Set-Cookie itself: the stdlib cookie jar refuses the engine's cookie domain
    (`localhost`, an IP address) for hosts it deems not to match."""
    for header in response.headers.get_list("set-cookie"):
        name, _, value = header.split(";", 1)[0].strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    raise HatchetApiError(f"the {what} answer carried no '{SESSION_COOKIE}' session cookie")
