"""One fake of Hatchet's REST API (an httpx.MockTransport) for every unit test that talks to
Hatchet over HTTP: a stack's `up` (readiness, proving a token), the teams of a local stack and a
central instance (meta and version, logins, sessions, tenants, tokens, invites, members).

It answers only the endpoints hatchet-local calls, as Hatchet v0.101.27 answers them (status
codes and error words from its handlers); any other request fails the test, as a command no
rule answers fails it in FakeRunner.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from hatchet_local.bootstrap import TOKEN_NAME
from hatchet_local.defaults import ADMIN_EMAIL, DEFAULT_TENANT_ID, HATCHET_VERSION
from hatchet_local.runner import Result
from hatchet_local.server import READ_ONLY_SINCE

if TYPE_CHECKING:
    from tests.unit.fakes import Call

ADMIN_PASSWORD = "Adm1nPassw0rdXyz"
ADMIN_TOKEN_EXPIRY = "2036-01-01T00:00:00Z"  # of the tokens `hatchet-admin token create` makes


def jwt(claims: dict[str, Any]) -> str:
    """A token shaped like the engine's (header.claims.signature), unsigned."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256'})}.{part(claims)}.sig"


def error(status: int, description: str) -> httpx.Response:
    """An error answer in Hatchet's shape (`{"errors": [{"description": ...}]}`)."""
    return httpx.Response(status, json={"errors": [{"description": description}]})


def go_seconds(text: str) -> int | None:
    """The seconds of a Go duration (`87600h`, `2160h0m0s`, `3600s`); None if it is not one."""
    parts = re.findall(r"(\d+)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


@dataclass
class TokenRecord:
    """An API token as the server keeps it."""

    id: str
    tenant_id: str
    name: str
    expires_at: str
    read_only: bool = False
    revoked: bool = False


@dataclass(frozen=True)
class InviteRecord:
    """A pending invite as the server keeps it."""

    tenant_id: str
    email: str
    role: str


@dataclass(frozen=True)
class ApiCall:
    """One request as a route sees it: its JSON body, the path's groups, its bearer token and
    the session's user."""

    body: dict[str, Any]
    groups: tuple[str, ...]
    bearer: str = ""
    user: str = ""


PUBLIC, SESSION, MEMBER = "public", "session", "member"  # who may make a route's call
Answer = Callable[[ApiCall], httpx.Response]


@dataclass
class FakeHatchetApi:
    """The users, sessions, tenants, memberships, API tokens and invites of one Hatchet server,
    behind its REST API.

    `users` maps email to password; the first one is the admin.
    `/api/ready` answers `ready` (a list is walked one request at a time, the last one stays).
    A tenant GET with a bearer token answers 200 when `tokens` holds that token for that tenant,
    unrevoked. Logins answer 429 once `login_limit` logins are spent (with `retry_after` as the
    Retry-After header), 405 when `meta` has no basic auth scheme. Every request is kept in
    `requests`, and in `journal` too when one is given (a FakeRunner's, so that commands and
    requests share one order).
    """

    version: str = HATCHET_VERSION
    meta: dict[str, Any] = field(
        default_factory=lambda: {
            "auth": {"schemes": ["basic"]},
            "allowSignup": True,
            "allowInvites": True,
            "allowCreateTenant": True,
        }
    )
    users: dict[str, str] = field(default_factory=lambda: {ADMIN_EMAIL: ADMIN_PASSWORD})
    tenants: dict[str, str] = field(default_factory=lambda: {"default": DEFAULT_TENANT_ID})
    tenant_names: dict[str, str] = field(default_factory=dict)  # tenant id -> name
    members: dict[str, dict[str, str]] = field(default_factory=dict)  # tenant id -> email -> ROLE
    tokens: dict[str, TokenRecord] = field(default_factory=dict)  # the token itself -> its record
    invites: dict[str, InviteRecord] = field(default_factory=dict)  # invite id -> invite
    sessions: set[str] = field(default_factory=set)  # the session cookies the server knows
    login_limit: int | None = None
    retry_after: str | None = None
    ready: int | list[int] = 200
    server_url: str = "http://localhost:8080"  # what minted tokens claim
    grpc_address: str = "localhost:7077"
    requests: list[httpx.Request] = field(default_factory=list)
    journal: list[object] | None = None
    # What `hatchet-admin seed` in the engine's container was given, in order (see `seed`).
    seeds: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for slug, tenant_id in self.tenants.items():
            self.tenant_names.setdefault(tenant_id, slug)
            self.members.setdefault(tenant_id, {self.admin: "OWNER"})
        tenant, member = r"/api/v1/tenants/([^/]+)", r"/members/member-([^/]+)"
        self._routes: list[tuple[str, re.Pattern[str], str, Answer]] = [
            (method, re.compile(path), access, answer)
            for method, path, access, answer in [
                ("GET", "/api/ready", PUBLIC, lambda _: httpx.Response(self._next_ready())),
                ("GET", "/api/v1/meta", PUBLIC, lambda _: httpx.Response(200, json=self.meta)),
                ("GET", "/api/v1/version", PUBLIC, self._version),
                ("POST", "/api/v1/users/login", PUBLIC, self._login),
                ("POST", "/api/v1/users/register", PUBLIC, self._register),
                ("GET", tenant, PUBLIC, self._tenant_get),  # with a bearer token
                ("GET", "/api/v1/users/current", SESSION, self._current),
                ("POST", "/api/v1/users/logout", SESSION, self._logout),
                ("GET", "/api/v1/users/memberships", SESSION, self._memberships),
                ("POST", "/api/v1/tenants", SESSION, self._create_tenant),
                ("GET", "/api/v1/users/invites", SESSION, self._my_invites),
                ("POST", "/api/v1/users/invites/accept", SESSION, self._accept_invite),
                ("POST", r"/api/v1/api-tokens/([^/]+)", SESSION, self._revoke),
                ("PATCH", tenant, MEMBER, self._rename_tenant),
                ("POST", tenant + "/api-tokens", MEMBER, self._mint),
                ("GET", tenant + "/api-tokens", MEMBER, self._list_tokens),
                ("POST", tenant + "/invites", MEMBER, self._invite),
                ("GET", tenant + "/invites", MEMBER, self._list_invites),
                ("GET", tenant + "/members", MEMBER, self._list_members),
                ("PATCH", tenant + member, MEMBER, self._set_role),
            ]
        ]

    # --- for tests ------------------------------------------------------------------------

    def close(self) -> FakeHatchetApi:
        """As a stack other machines reach runs: no sign-up, no tenant made through the API."""
        self.meta |= {"allowSignup": False, "allowCreateTenant": False}
        return self

    def seed(self, call: Call) -> Result:
        """`hatchet-admin seed` in the engine's container, as a FakeRunner handler: the login
        ADMIN_EMAIL unless it exists, the tenant DEFAULT_TENANT_SLUG (owned by that login)
        unless it exists. The values come by name only: `-e NAME` in argv, the value in the
        command's environment."""
        env = call.env or {}
        names = [call.argv[i + 1] for i, word in enumerate(call.argv) if word == "-e"]
        values = {name: env[name] for name in names}
        assert not set(values.values()) & set(call.argv), "a value in argv"
        self.seeds.append(values)
        email = values["ADMIN_EMAIL"]
        self.users.setdefault(email, values["ADMIN_PASSWORD"])
        slug = values.get("DEFAULT_TENANT_SLUG", "default")
        if slug not in self.tenants:
            tenant_id = values.get("DEFAULT_TENANT_ID", str(uuid.uuid4()))
            self.tenants[slug] = tenant_id
            self.tenant_names[tenant_id] = values.get("DEFAULT_TENANT_NAME", slug)
            self.members[tenant_id] = {email: "OWNER"}
        return Result(call.argv, 0, "", "")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport)

    @property
    def admin(self) -> str:
        """The first of `users`: it owns the tenants the fake starts with."""
        return next(iter(self.users))

    def add_tenant(self, slug: str, owner: str = "", name: str = "") -> str:
        """A tenant `owner` (the admin unless named) made: one the admin cannot see, when
        someone else owns it."""
        tenant_id = str(uuid.uuid4())
        self.tenants[slug] = tenant_id
        self.tenant_names[tenant_id] = name or slug
        self.members[tenant_id] = {owner or self.admin: "OWNER"}
        return tenant_id

    def accept(self, token: str, tenant_id: str = DEFAULT_TENANT_ID) -> None:
        """Make `token` valid for `tenant_id`, as `hatchet-admin token create` does."""
        token_id = str(uuid.uuid4())
        self.tokens[token] = TokenRecord(token_id, tenant_id, TOKEN_NAME, ADMIN_TOKEN_EXPIRY)

    def live_tokens(self, slug: str) -> list[TokenRecord]:
        """The unrevoked tokens of tenant `slug`."""
        tenant_id = self.tenants[slug]
        return [t for t in self.tokens.values() if t.tenant_id == tenant_id and not t.revoked]

    def calls(self, method: str, pattern: str) -> list[httpx.Request]:
        """The requests of `method` whose path fully matches the regex `pattern`, in order."""
        return [
            r for r in self.requests if r.method == method and re.fullmatch(pattern, r.url.path)
        ]

    def writes(self) -> list[str]:
        """`METHOD path` of every call that changes something, logins and logouts aside."""
        return [
            f"{r.method} {r.url.path}"
            for r in self.requests
            if r.method != "GET" and not r.url.path.startswith("/api/v1/users/log")
        ]

    # --- the transport --------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.journal is not None:
            self.journal.append(request)
        for method, pattern, access, answer in self._routes:
            match = pattern.fullmatch(request.url.path)
            if request.method != method or match is None:
                continue
            call = ApiCall(
                json.loads(request.content) if request.content else {},
                match.groups(),
                bearer=request.headers.get("authorization", "").removeprefix("Bearer "),
            )
            if access == PUBLIC:
                return answer(call)
            cookie = re.search(r"hatchet=(session-\S+)", request.headers.get("cookie", ""))
            if cookie is None or cookie.group(1) not in self.sessions:
                return error(401, "no session")
            call = replace(call, user=cookie.group(1).removeprefix("session-"))
            if access == MEMBER and call.user not in self.members.get(call.groups[0], {}):
                return error(403, "not a member")
            return answer(call)
        raise AssertionError(f"FakeHatchetApi: no answer for {request.method} {request.url}")

    # --- before a login -------------------------------------------------------------------

    def _next_ready(self) -> int:
        if isinstance(self.ready, list):
            return self.ready.pop(0) if len(self.ready) > 1 else self.ready[0]
        return self.ready

    def _version(self, _: ApiCall) -> httpx.Response:
        return httpx.Response(200, json={"version": self.version})

    def _login(self, call: ApiCall) -> httpx.Response:
        if "basic" not in self.meta["auth"]["schemes"]:
            return error(405, "local registration is not enabled")
        if self.login_limit is not None:
            if self.login_limit <= 0:
                headers = {"retry-after": self.retry_after} if self.retry_after else {}
                return httpx.Response(429, headers=headers)
            self.login_limit -= 1
        if self.users.get(call.body["email"]) != call.body["password"]:
            return error(400, "invalid credentials")
        return self._session(call.body["email"])

    def _register(self, call: ApiCall) -> httpx.Response:
        if "basic" not in self.meta["auth"]["schemes"]:
            return error(405, "local registration is not enabled")
        if not self.meta["allowSignup"]:
            return error(400, "user signups are disabled")
        if call.body["email"] in self.users:
            return error(400, "registration failed")
        self.users[call.body["email"]] = call.body["password"]
        return self._session(call.body["email"])

    def _session(self, email: str) -> httpx.Response:
        cookie = f"session-{email}"
        self.sessions.add(cookie)
        url = httpx.URL(self.server_url)
        secure = "; Secure" if url.scheme == "https" else ""
        headers = {"set-cookie": f"hatchet={cookie}; Path=/; Domain={url.host}; HttpOnly{secure}"}
        return httpx.Response(200, json={"email": email}, headers=headers)

    def _tenant_get(self, call: ApiCall) -> httpx.Response:
        token = self.tokens.get(call.bearer)
        if token is None or token.tenant_id != call.groups[0] or token.revoked:
            return error(403, "forbidden")
        return httpx.Response(200, json=self._tenant_row(call.groups[0]))

    # --- a user's session -----------------------------------------------------------------

    def _current(self, call: ApiCall) -> httpx.Response:
        return httpx.Response(200, json={"email": call.user})

    def _logout(self, call: ApiCall) -> httpx.Response:
        self.sessions.discard(f"session-{call.user}")
        return httpx.Response(200, json={})

    def _tenant_row(self, tenant_id: str) -> dict[str, Any]:
        slug = next(s for s, tid in self.tenants.items() if tid == tenant_id)
        return {"metadata": {"id": tenant_id}, "slug": slug, "name": self.tenant_names[tenant_id]}

    def _memberships(self, call: ApiCall) -> httpx.Response:
        rows = [
            {"tenant": self._tenant_row(tid), "role": self.members[tid][call.user]}
            for tid in self.tenants.values() if call.user in self.members[tid]
        ]  # fmt: skip
        return httpx.Response(200, json={"rows": rows})

    def _create_tenant(self, call: ApiCall) -> httpx.Response:
        if not self.meta["allowCreateTenant"]:
            return error(400, "tenant signups are disabled")
        if call.body["slug"] in self.tenants:
            return error(400, "Tenant with that slug already exists.")
        tenant_id = self.add_tenant(call.body["slug"], call.user, call.body["name"])
        return httpx.Response(200, json=self._tenant_row(tenant_id))

    def _my_invites(self, call: ApiCall) -> httpx.Response:
        rows = [
            {"metadata": {"id": iid}, "tenantId": invite.tenant_id}
            for iid, invite in self.invites.items() if invite.email == call.user
        ]  # fmt: skip
        return httpx.Response(200, json={"rows": rows})

    def _accept_invite(self, call: ApiCall) -> httpx.Response:
        invite = self.invites[call.body["invite"]]
        if invite.email != call.user:
            return error(403, "not your invite")
        del self.invites[call.body["invite"]]
        self.members[invite.tenant_id][invite.email] = invite.role
        return httpx.Response(200)

    def _revoke(self, call: ApiCall) -> httpx.Response:
        for token in self.tokens.values():
            if token.id == call.groups[0]:
                token.revoked = True
        return httpx.Response(204)

    # --- a tenant's members ---------------------------------------------------------------

    def _rename_tenant(self, call: ApiCall) -> httpx.Response:
        self.tenant_names[call.groups[0]] = call.body["name"]
        return httpx.Response(200, json=self._tenant_row(call.groups[0]))

    def _mint(self, call: ApiCall) -> httpx.Response:
        tenant_id, token_id = call.groups[0], str(uuid.uuid4())
        seconds = go_seconds(str(call.body.get("expiresIn", "2160h")))
        if seconds is None:
            return error(400, "invalid expiresIn")
        expires = int(time.time()) + seconds
        token = jwt({"sub": tenant_id, "token_id": token_id, "server_url": self.server_url,
                     "grpc_broadcast_address": self.grpc_address, "exp": expires})  # fmt: skip
        expires_at = datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z")
        self.tokens[token] = TokenRecord(token_id, tenant_id, call.body["name"], expires_at,
                                      read_only=bool(call.body.get("readOnly")))  # fmt: skip
        return httpx.Response(200, json={"token": token})

    def _list_tokens(self, call: ApiCall) -> httpx.Response:
        has_read_only = _version_tuple(self.version) >= READ_ONLY_SINCE
        rows = [
            {"metadata": {"id": t.id}, "name": t.name, "expiresAt": t.expires_at,
             **({"readOnly": t.read_only} if has_read_only else {})}
            for t in self.tokens.values() if t.tenant_id == call.groups[0] and not t.revoked
        ]  # fmt: skip
        return httpx.Response(200, json={"rows": rows})

    def _invite(self, call: ApiCall) -> httpx.Response:
        if not self.meta["allowInvites"]:
            return error(400, "tenant invites are disabled")
        invite = InviteRecord(call.groups[0], call.body["email"], call.body["role"])
        self.invites[str(uuid.uuid4())] = invite
        return httpx.Response(201, json={})

    def _list_invites(self, call: ApiCall) -> httpx.Response:
        rows = [
            {"metadata": {"id": iid}, "email": invite.email, "role": invite.role}
            for iid, invite in self.invites.items() if invite.tenant_id == call.groups[0]
        ]  # fmt: skip
        return httpx.Response(200, json={"rows": rows})

    def _list_members(self, call: ApiCall) -> httpx.Response:
        rows = [
            {"metadata": {"id": f"member-{email}"}, "user": {"email": email, "name": email},
             "role": role}
            for email, role in self.members[call.groups[0]].items()
        ]  # fmt: skip
        return httpx.Response(200, json={"rows": rows})

    def _set_role(self, call: ApiCall) -> httpx.Response:
        tenant_id, email = call.groups
        self.members[tenant_id][email] = call.body["role"]
        return httpx.Response(200, json={})


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])
