"""One fake of Hatchet's REST API (an httpx.MockTransport) for every unit test that talks to
a stack over HTTP: `up` (readiness, proving a token) and the teams (sessions, tenants, tokens,
invites, members).

It answers only the endpoints hatchet-local calls; any other request fails the test, as a
command no rule answers fails it in FakeRunner.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from hatchet_local.defaults import DEFAULT_TENANT_ID
from hatchet_local.runner import Result

if TYPE_CHECKING:
    from tests.unit.fakes import Call

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Adm1nPassw0rdXyz"


def jwt(claims: dict[str, Any]) -> str:
    """A token shaped like the engine's (header.claims.signature), unsigned."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256'})}.{part(claims)}.sig"


def _error(status: int, description: str) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{"description": description}]})


@dataclass
class FakeHatchetApi:
    """Users, tenants, memberships, API tokens and invites of one stack, behind its REST API.

    `/api/ready` answers `ready` (a list is walked one request at a time, the last one stays).
    A tenant GET with a bearer token answers 200 when `tokens` holds that token for that
    tenant and it is not revoked. Every request is kept in `requests`, and in `journal` too
    when one is given (a FakeRunner's, so that commands and requests share one order).
    """

    users: dict[str, str] = field(default_factory=lambda: {ADMIN_EMAIL: ADMIN_PASSWORD})
    tenants: dict[str, str] = field(default_factory=lambda: {"default": DEFAULT_TENANT_ID})
    # tenant id -> email -> role
    members: dict[str, dict[str, str]] = field(default_factory=dict)
    # token -> (token id, tenant id, still valid)
    tokens: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    # invite id -> (tenant id, email, role)
    invites: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    ready: int | list[int] = 200
    server_url: str = "http://localhost:8080"  # what minted tokens claim
    requests: list[httpx.Request] = field(default_factory=list)
    journal: list[object] | None = None
    # A stack that other machines reach: sign-up and tenant creation off in the API.
    closed: bool = False
    # What `hatchet-admin seed` was given, in order (see `seed`).
    seeds: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for tenant_id in self.tenants.values():
            self.members.setdefault(tenant_id, {ADMIN_EMAIL: "OWNER"})

    # --- for tests ------------------------------------------------------------------------

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport)

    def accept(self, token: str, tenant_id: str = DEFAULT_TENANT_ID) -> None:
        """Make `token` valid for `tenant_id`, as `hatchet-admin token create` does."""
        self.tokens[token] = (str(uuid.uuid4()), tenant_id, True)

    def calls(self, method: str, pattern: str) -> list[httpx.Request]:
        """The requests of `method` whose path fully matches the regex `pattern`, in order."""
        return [
            r for r in self.requests if r.method == method and re.fullmatch(pattern, r.url.path)
        ]

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
            self.members[tenant_id] = {email: "OWNER"}
        return Result(call.argv, 0, "", "")

    # --- the API --------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.journal is not None:
            self.journal.append(request)
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else {}
        if method == "GET" and path == "/api/ready":
            return httpx.Response(self._next_ready())
        if path == "/api/v1/meta":
            meta: dict[str, object] = {"auth": {"schemes": ["basic"]}}
            if self.closed:
                meta |= {"allowSignup": False, "allowCreateTenant": False}
            return httpx.Response(200, json=meta)
        if path == "/api/v1/version":
            return httpx.Response(200, json={"version": "v0.101.27"})
        if path == "/api/v1/users/login":
            if self.users.get(body["email"]) != body["password"]:
                return _error(401, "bad login")
            return self._session(body["email"])
        if path == "/api/v1/users/register":
            if self.closed:
                return _error(400, "user signups are disabled")
            if body["email"] in self.users:
                return _error(400, "failed")
            self.users[body["email"]] = body["password"]
            return self._session(body["email"])
        if method == "GET" and (match := re.fullmatch(r"/api/v1/tenants/([^/]+)", path)):
            return self._tenant_get(request, match.group(1))
        user = self._user(request)
        if user is None:
            return _error(401, "no session")
        return self._session_call(user, method, path, body)

    def _next_ready(self) -> int:
        if isinstance(self.ready, list):
            return self.ready.pop(0) if len(self.ready) > 1 else self.ready[0]
        return self.ready

    def _tenant_get(self, request: httpx.Request, tenant_id: str) -> httpx.Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        token = self.tokens.get(bearer)
        if token is None or token[1] != tenant_id or not token[2]:
            return _error(403, "forbidden")
        slug = next((s for s, tid in self.tenants.items() if tid == tenant_id), tenant_id)
        return httpx.Response(200, json={"metadata": {"id": tenant_id}, "slug": slug, "name": slug})

    def _user(self, request: httpx.Request) -> str | None:
        match = re.search(r"hatchet=session-(\S+)", request.headers.get("cookie", ""))
        return match.group(1) if match else None

    def _session(self, email: str) -> httpx.Response:
        cookie = f"hatchet=session-{email}; Path=/; Domain=localhost; HttpOnly"
        return httpx.Response(200, json={"email": email}, headers={"set-cookie": cookie})

    def _session_call(self, user: str, method: str, path: str, body: Any) -> httpx.Response:
        by_id = {tenant_id: slug for slug, tenant_id in self.tenants.items()}
        if path == "/api/v1/users/current":
            return httpx.Response(200, json={"email": user})
        if path == "/api/v1/users/memberships":
            rows = [
                {"tenant": {"metadata": {"id": tid}, "slug": by_id[tid], "name": by_id[tid]},
                 "role": people[user]}
                for tid, people in self.members.items() if user in people
            ]  # fmt: skip
            return httpx.Response(200, json={"rows": rows})
        if path == "/api/v1/tenants" and method == "POST":
            if self.closed:
                return _error(400, "tenant signups are disabled")
            if body["slug"] in self.tenants:
                return _error(400, "slug exists")
            tenant_id = str(uuid.uuid4())
            self.tenants[body["slug"]] = tenant_id
            self.members[tenant_id] = {user: "OWNER"}
            return httpx.Response(
                200,
                json={"metadata": {"id": tenant_id}, "slug": body["slug"], "name": body["name"]},
            )
        if path == "/api/v1/users/invites":
            rows = [
                {"metadata": {"id": iid}, "tenantId": tid}
                for iid, (tid, email, _) in self.invites.items() if email == user
            ]  # fmt: skip
            return httpx.Response(200, json={"rows": rows})
        if path == "/api/v1/users/invites/accept":
            tenant_id, email, role = self.invites.pop(body["invite"])
            assert email == user
            self.members[tenant_id][email] = role
            return httpx.Response(200)
        if match := re.fullmatch(r"/api/v1/api-tokens/([^/]+)", path):
            for token, (token_id, tid, _) in list(self.tokens.items()):
                if token_id == match.group(1):
                    self.tokens[token] = (token_id, tid, False)
            return httpx.Response(204)
        return self._tenant_call(user, method, path, body)

    def _tenant_call(self, user: str, method: str, path: str, body: Any) -> httpx.Response:
        match = re.fullmatch(r"/api/v1/tenants/([^/]+)/([a-z-]+)", path)
        assert match, f"FakeHatchetApi: no answer for {method} {path}"
        tenant_id, what = match.groups()
        if user not in self.members.get(tenant_id, {}):
            return _error(403, "not a member")
        if what == "api-tokens" and method == "POST":
            token_id = str(uuid.uuid4())
            token = jwt({"sub": tenant_id, "token_id": token_id, "server_url": self.server_url,
                         "grpc_broadcast_address": "localhost:7077"})  # fmt: skip
            self.tokens[token] = (token_id, tenant_id, True)
            return httpx.Response(200, json={"token": token})
        if what == "api-tokens":
            rows = [
                {"metadata": {"id": token_id}, "name": "hatchet-local", "expiresAt": "2036"}
                for token_id, tid, ok in self.tokens.values() if tid == tenant_id and ok
            ]  # fmt: skip
            return httpx.Response(200, json={"rows": rows})
        if what == "invites" and method == "GET":
            rows = [
                {"metadata": {"id": iid}, "email": email, "role": role}
                for iid, (tid, email, role) in self.invites.items() if tid == tenant_id
            ]  # fmt: skip
            return httpx.Response(200, json={"rows": rows})
        if what == "invites":
            self.invites[str(uuid.uuid4())] = (tenant_id, body["email"], body["role"])
            return httpx.Response(201, json={})
        if what == "members":
            rows = [
                {"user": {"email": email, "name": email}, "role": role}
                for email, role in self.members[tenant_id].items()
            ]
            return httpx.Response(200, json={"rows": rows})
        raise AssertionError(f"FakeHatchetApi: no answer for {method} {path}")
