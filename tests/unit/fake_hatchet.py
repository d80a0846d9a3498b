"""A fake Hatchet server for the central-instance unit tests (httpx.MockTransport): meta and
version, logins (wrong password, password login off, rate-limited), sessions, tenants with
hidden ones (created by someone else), tokens with expiry, invites, members and roles."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

ADMIN = "ops@example.com"
PASSWORD = "Adm1nPassw0rdXyz"
URL = "https://hatchet.example.com"


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256'})}.{part(claims)}.sig"


def error(status: int, text: str) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{"description": text}]})


@dataclass
class FakeHatchet:
    version: str = "v0.101.27"
    meta: dict[str, Any] = field(
        default_factory=lambda: {
            "auth": {"schemes": ["basic"]},
            "allowSignup": True,
            "allowInvites": True,
            "allowCreateTenant": True,
        }
    )
    passwords: dict[str, str] = field(default_factory=lambda: {ADMIN: PASSWORD})
    tenants: dict[str, str] = field(default_factory=dict)  # slug -> id
    names: dict[str, str] = field(default_factory=dict)  # id -> name
    members: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> email -> ROLE
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # jwt -> row
    invites: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> row
    sessions: set[str] = field(default_factory=set)
    login_limit: int | None = None  # logins allowed before HTTP 429
    retry_after: str | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def add_tenant(self, slug: str, owner: str = ADMIN) -> str:
        tenant_id = str(uuid.uuid4())
        self.tenants[slug] = tenant_id
        self.names[tenant_id] = slug
        self.members[tenant_id] = {owner: "OWNER"}
        return tenant_id

    def client(self, verify: object = True) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def calls(self, method: str, pattern: str) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.method == method and re.fullmatch(pattern, r.url.path)
        ]

    def writes(self) -> list[str]:
        """Every call that changes something (logins aside)."""
        return [
            f"{r.method} {r.url.path}"
            for r in self.requests
            if r.method != "GET" and not r.url.path.startswith("/api/v1/users/log")
        ]

    def live_tokens(self, slug: str) -> list[dict[str, Any]]:
        tenant_id = self.tenants[slug]
        return [row for row in self.tokens.values() if row["tenant"] == tenant_id and row["ok"]]

    # --- the transport -------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else {}
        if path == "/api/v1/meta":
            return httpx.Response(200, json=self.meta)
        if path == "/api/v1/version":
            return httpx.Response(200, json={"version": self.version})
        if path == "/api/v1/users/login":
            return self._login(body)
        if method == "GET" and (match := re.fullmatch(r"/api/v1/tenants/([^/]+)", path)):
            auth = request.headers.get("authorization", "").removeprefix("Bearer ")
            row = self.tokens.get(auth)
            ok = row is not None and row["tenant"] == match.group(1) and row["ok"]
            return httpx.Response(200 if ok else 403, json={})
        cookie = re.search(r"hatchet=(\S+)", request.headers.get("cookie", ""))
        user = cookie.group(1).removeprefix("session-") if cookie else None
        if cookie is None or cookie.group(1) not in self.sessions or user is None:
            return error(401, "no session")
        return self._session_call(user, method, path, body)

    def _login(self, body: dict[str, str]) -> httpx.Response:
        if "basic" not in self.meta["auth"]["schemes"]:
            return error(405, "local registration is not enabled")
        if self.login_limit is not None:
            if self.login_limit <= 0:
                headers = {"retry-after": self.retry_after} if self.retry_after else {}
                return httpx.Response(429, json=None, headers=headers)
            self.login_limit -= 1
        if self.passwords.get(body["email"]) != body["password"]:
            return error(400, "invalid credentials")
        cookie = f"session-{body['email']}"
        self.sessions.add(cookie)
        headers = {"set-cookie": f"hatchet={cookie}; Path=/; Secure; HttpOnly"}
        return httpx.Response(200, json={"email": body["email"]}, headers=headers)

    def _session_call(self, user: str, method: str, path: str, body: Any) -> httpx.Response:
        if path == "/api/v1/users/current":
            return httpx.Response(200, json={"email": user})
        if path == "/api/v1/users/logout":
            self.sessions.discard(f"session-{user}")
            return httpx.Response(200, json={})
        if path == "/api/v1/users/memberships":
            rows = [
                {"tenant": {"metadata": {"id": tid}, "slug": slug, "name": self.names[tid]},
                 "role": self.members[tid][user]}
                for slug, tid in self.tenants.items() if user in self.members[tid]
            ]  # fmt: skip
            return httpx.Response(200, json={"rows": rows})
        if path == "/api/v1/tenants" and method == "POST":
            if not self.meta["allowCreateTenant"]:
                return error(400, "tenant signups are disabled")
            if body["slug"] in self.tenants:
                return error(400, "Tenant with that slug already exists.")
            tenant_id = self.add_tenant(body["slug"], user)
            data = {"metadata": {"id": tenant_id}, "slug": body["slug"], "name": body["name"]}
            return httpx.Response(200, json=data)
        if match := re.fullmatch(r"/api/v1/api-tokens/([^/]+)", path):
            for row in self.tokens.values():
                if row["id"] == match.group(1):
                    row["ok"] = False
            return httpx.Response(204)
        return self._tenant_call(user, method, path, body)

    def _tenant_call(self, user: str, method: str, path: str, body: Any) -> httpx.Response:
        match = re.fullmatch(r"/api/v1/tenants/([^/]+)(?:/([a-z-]+)(?:/([^/]+))?)?", path)
        assert match, path
        tenant_id, what, item = match.groups()
        if user not in self.members.get(tenant_id, {}):
            return error(403, "not a member")
        if what is None and method == "PATCH":
            self.names[tenant_id] = body["name"]
            return httpx.Response(200, json={})
        if what == "api-tokens" and method == "POST":
            return self._mint(tenant_id, body)
        if what == "api-tokens":
            rows = [
                {"metadata": {"id": row["id"]}, "name": row["name"], "expiresAt": "2036-01-01",
                 **({"readOnly": row["read_only"]} if self.version >= "v0.116" else {})}
                for row in self.tokens.values() if row["tenant"] == tenant_id and row["ok"]
            ]  # fmt: skip
            return httpx.Response(200, json={"rows": rows})
        if what == "invites" and method == "POST":
            if not self.meta["allowInvites"]:
                return error(400, "tenant invites are disabled")
            invite = {"tenant": tenant_id, "email": body["email"], "role": body["role"]}
            self.invites[str(uuid.uuid4())] = invite
            return httpx.Response(201, json={})
        if what == "invites":
            rows = [
                {"metadata": {"id": iid}, "email": row["email"], "role": row["role"]}
                for iid, row in self.invites.items() if row["tenant"] == tenant_id
            ]  # fmt: skip
            return httpx.Response(200, json={"rows": rows})
        if what == "members" and method == "PATCH":
            email = item.removeprefix("member-")
            self.members[tenant_id][email] = body["role"]
            return httpx.Response(200, json={})
        if what == "members":
            rows = [
                {"metadata": {"id": f"member-{email}"}, "user": {"email": email, "name": email},
                 "role": role}
                for email, role in self.members[tenant_id].items()
            ]  # fmt: skip
            return httpx.Response(200, json={"rows": rows})
        raise AssertionError(f"unexpected {method} {path}")

    def _mint(self, tenant_id: str, body: dict[str, Any]) -> httpx.Response:
        token_id = str(uuid.uuid4())
        seconds = int(str(body.get("expiresIn", "3600s")).removesuffix("s"))
        token = jwt({"sub": tenant_id, "token_id": token_id, "server_url": URL,
                     "grpc_broadcast_address": "grpc.example.com:443",
                     "exp": int(time.time()) + seconds})  # fmt: skip
        read_only = bool(body.get("readOnly"))
        self.tokens[token] = {"id": token_id, "tenant": tenant_id, "ok": True,
                              "name": body["name"], "read_only": read_only}  # fmt: skip
        return httpx.Response(200, json={"token": token})
