"""A central Hatchet instance hatchet-local did not start (issue #14), on the test instance of
tests/support/central.py: separate engine, API and dashboard behind nginx TLS on
hatchet.central.test with a private CA. Every behaviour is driven through the real CLI, and
the tokens it hands out are proven with hatchet-sdk workers.

The module's fixture walks the README's "Central instance" section from an empty file:
status, login, plan, apply, apply --yes, a second apply, three developers' env files.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.central import ADMIN_EMAIL, HOST, Central
from tests.support.clients import PROBE
from tests.support.stacks import HATCHET_LOCAL, clean_env, read_env, run_sdk_task

pytestmark = pytest.mark.e2e

DEVELOPERS = ("alice", "bob", "charlie")


def seed(central: Central, extra: str = "") -> str:
    """The seed's layout: development with three namespaces, staging, production."""
    return (
        f"server:\n  url: {central.url}\n  email: {ADMIN_EMAIL}\n  ca_bundle: {central.ca}\n"
        "tenants:\n"
        "  development:\n"
        "    namespaces: [dev-alice, dev-bob, dev-charlie]\n"
        "    members: {alice@central.test: member}\n"
        "  staging: {}\n"
        "  production:\n"
        "    members: {carol@central.test: viewer}\n" + extra
    )


@dataclass
class Admin:
    """A project directory of the team's admin, with its own state directory."""

    dir: Path
    state: Path
    central: Central
    outputs: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in clean_env().items() if not k.startswith("HATCHET_LOCAL_")}
        return {**base, "HATCHET_LOCAL_STATE_DIR": str(self.state), **extra}

    def hl(self, *args: str, code: int = 0, stdin: str | None = None,
           **env: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
        proc = subprocess.run(
            [str(HATCHET_LOCAL), *args], cwd=self.dir, env=self.env(**env), input=stdin,
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        label, again = " ".join(args), 2
        while label in self.outputs:  # the same command again: `apply --yes #2`
            label, again = f"{' '.join(args)} #{again}", again + 1
        self.outputs[label] = proc.stdout + proc.stderr
        assert proc.returncode == code, (
            f"hatchet-local {' '.join(args)} exited {proc.returncode}, not {code}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.hl(*args, "--output", "json").stdout)

    def tenants(self) -> dict[str, str]:
        return {row["slug"]: row["id"] for row in self.json("tenant", "list")}

    def server_state(self) -> tuple[dict[str, str], list[str]]:
        """What the admin sees on the server: tenants and live token ids."""
        return self.tenants(), sorted(row["id"] for row in self.json("token", "list"))


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    found = {}
    for path in sorted(root.rglob("*")):
        content = path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(root))] = (stat.S_IMODE(path.stat().st_mode), content)
    return found


def http(central: Central) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=central.ca), timeout=30)


def login_cookie(central: Central, email: str, password: str) -> dict[str, str]:
    with http(central) as client:
        response = client.post(f"{central.url}/api/v1/users/login",
                               json={"email": email, "password": password})  # fmt: skip
    assert response.status_code == 200, response.text
    return {"Cookie": response.headers["set-cookie"].split(";", 1)[0]}


def sign_up(central: Central, email: str) -> dict[str, str]:
    """A person signs up on the instance (sign-up is on there) and gets a session."""
    password = "Pw1" + uuid.uuid4().hex
    with http(central) as client:
        body = {"email": email, "name": email, "password": password}
        response = client.post(f"{central.url}/api/v1/users/register", json=body)
    assert response.status_code == 200, response.text
    return login_cookie(central, email, password)


def accept_invites(central: Central, cookie: dict[str, str]) -> int:
    with http(central) as client:
        rows = client.get(f"{central.url}/api/v1/users/invites", headers=cookie).json()["rows"]
        for row in rows or []:
            accepted = client.post(f"{central.url}/api/v1/users/invites/accept", headers=cookie,
                                   json={"invite": row["metadata"]["id"]})  # fmt: skip
            assert accepted.status_code == 200, accepted.text
    return len(rows or [])


@pytest.fixture(scope="module")
def admin(central: Central, tmp_path_factory: pytest.TempPathFactory) -> Admin:
    """The README's walk-through, from an empty file to three developers' env files."""
    root = tmp_path_factory.mktemp("central-admin")
    project = Admin(root / "team", root / "state", central)
    project.dir.mkdir()
    (project.dir / "hatchet-local.yaml").write_text(seed(central))
    project.hl("server", "status")
    project.hl("server", "login", "--password-stdin", stdin=central.admin_password + "\n")
    project.hl("plan")
    project.hl("apply")
    project.hl("apply", "--yes")
    project.hl("apply", "--yes")
    for who in DEVELOPERS:
        project.hl("env", "--tenant", "development", "--namespace", f"dev-{who}",
                   "--write", f"{who}.env")  # fmt: skip
    return project


def test_walkthrough_plans_applies_once_and_hands_out(admin: Admin) -> None:
    out = admin.outputs
    assert "Hatchet v0.101.27" in out["server status"] and "session: none" in out["server status"]
    assert "Logged in to " in out["server login --password-stdin"]
    plan = out["plan"]
    for line in ("+ create tenant development", "+ mint the token kept for staging",
                 "+ invite alice@central.test to development as member",
                 "! mint the token kept for production [production]",
                 "! invite carol@central.test to production as viewer [production]",
                 "= tenant default is not in hatchet-local.yaml; left alone"):  # fmt: skip
        assert line in plan, plan
    first = out["apply"]
    assert "created tenant production" in first
    assert "skipped (needs --yes): mint the token kept for production" in first
    assert "invited alice@central.test -> development (member): they accept in their own " \
           "session" in first  # fmt: skip
    assert "minted the kept token of production" in out["apply --yes"]
    assert "Nothing to change." in out["apply --yes #2"]  # the second run: idempotent
    assert set(admin.tenants()) == {"default", "development", "staging", "production"}
    files = sorted(p.name for p in (admin.dir / ".hatchet").iterdir())
    assert files == ["development.dev-alice.env", "development.dev-bob.env",
                     "development.dev-charlie.env", "development.env", "production.env",
                     "staging.env"]  # fmt: skip
    dev_token = read_env(admin.dir / ".hatchet" / "development.env")["HATCHET_CLIENT_TOKEN"]
    for who in DEVELOPERS:
        path = admin.dir / f"{who}.env"
        settings = read_env(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert settings["HATCHET_CLIENT_NAMESPACE"] == f"dev-{who}"
        assert settings["HATCHET_CLIENT_TOKEN"] == dev_token
        assert settings["HATCHET_CLIENT_TLS_STRATEGY"] == "tls"
        assert settings["HATCHET_CLIENT_TLS_ROOT_CA_FILE"] == str(admin.central.ca)
        assert settings["HATCHET_CLIENT_HOST_PORT"] == admin.central.grpc
        assert dev_token not in "".join(admin.outputs.values())  # never printed
    assert (
        "client-side prefix inside tenant development"
        in out["env --tenant development --namespace dev-alice --write alice.env"]
    )


def test_a_second_apply_changes_nothing(admin: Admin) -> None:
    before = admin.server_state(), snapshot(admin.dir / ".hatchet")
    out = admin.hl("apply", "--yes").stdout
    assert "Nothing to change." in out
    assert (admin.server_state(), snapshot(admin.dir / ".hatchet")) == before


def test_a_namespace_not_in_the_file_is_refused(admin: Admin) -> None:
    proc = admin.hl("env", "--tenant", "development", "--namespace", "dev-zed",
                    "--write", "zed.env", code=2)  # fmt: skip
    assert "not a namespace of tenant development in hatchet-local.yaml" in proc.stderr
    assert not (admin.dir / "zed.env").exists()


def sdk_env(settings: dict[str, str], central: Central) -> dict[str, str]:
    """The handed-out settings, plus SSL_CERT_FILE for the SDK's REST client: hatchet-sdk
    1.37.2 reads HATCHET_CLIENT_TLS_ROOT_CA_FILE for gRPC only (see README)."""
    return clean_env(**settings, SSL_CERT_FILE=str(central.ca))


def probe(cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, str(PROBE), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def runs(central: Central, settings: dict[str, str], tenant_id: str) -> httpx.Response:
    with http(central) as client:
        return client.get(
            f"{central.url}/api/v1/stable/tenants/{tenant_id}/workflow-runs",
            params={"since": "2020-01-01T00:00:00Z", "only_tasks": "false"},
            headers={"Authorization": f"Bearer {settings['HATCHET_CLIENT_TOKEN']}"},
        )


def test_sdk_workers_of_declared_namespaces_and_tenants_stay_apart(
    admin: Admin, tmp_path: Path
) -> None:
    """Alice's worker runs her task with her env file over TLS (gRPC verified against the
    private CA); Bob, in the same tenant under his namespace, cannot reach her task by its
    name and her worker never gets his trigger; staging runs a task of its own, which
    development's token cannot see."""
    central, name = admin.central, f"central-{uuid.uuid4().hex[:6]}"
    alice = read_env(admin.dir / "alice.env")
    bob = read_env(admin.dir / "bob.env")
    staging = read_env(admin.dir / ".hatchet" / "staging.env")
    log_path = tmp_path / "alice-worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, str(PROBE), "worker", name], cwd=tmp_path,
                                  env=sdk_env(alice, central), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            out = probe(tmp_path, sdk_env(alice, central), "run", name, "hello")
            assert json.loads(out.strip().splitlines()[-1]) == {"echo": "HELLO", "task": name}
            tried = json.loads(probe(tmp_path, sdk_env(bob, central), "trigger", name))
            time.sleep(3)  # room for a wrong delivery to Alice's worker
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(15)
    assert log_path.read_text().count("start step run") == 1, log_path.read_text()[-2000:]
    dev_id, staging_id = alice["HATCHET_CLIENT_TENANT_ID"], staging["HATCHET_CLIENT_TENANT_ID"]
    dev_rows = [row["status"] for row in runs(central, alice, dev_id).json()["rows"]
                if row["displayName"].startswith(name)]  # fmt: skip
    assert dev_rows == ["COMPLETED"], (tried, dev_rows)  # Bob's trigger never became a run
    auth = {"Authorization": f"Bearer {bob['HATCHET_CLIENT_TOKEN']}"}
    with http(central) as client:
        listed = client.get(f"{central.url}/api/v1/tenants/{dev_id}/workflows", headers=auth)
    names = {row["name"] for row in listed.json()["rows"] if name in row["name"]}
    assert names == {f"dev-alice_{name}"}  # the tenant holds Alice's, under her prefix only
    staged = run_sdk_task(tmp_path, sdk_env(staging, central), f"{name}-staging")
    assert staged["echo"] == "HELLO"
    assert runs(central, alice, staging_id).status_code == 403  # development cannot see staging
    staging_rows = [row["status"] for row in runs(central, staging, staging_id).json()["rows"]
                    if f"{name}-staging" in row["displayName"]]  # fmt: skip
    assert staging_rows == ["COMPLETED"]
    assert not [row for row in runs(central, alice, dev_id).json()["rows"]
                if f"{name}-staging" in row["displayName"]]  # fmt: skip


def test_token_create_list_revoke_and_read_only_refused(admin: Admin, tmp_path: Path) -> None:
    out = admin.hl("token", "create", "--tenant", "staging", "--name", "ci", "--expires", "2h",
                   "--write", str(tmp_path / "ci.env")).stdout  # fmt: skip
    token_id = out.split()[1]
    ci = read_env(tmp_path / "ci.env")
    assert ci["HATCHET_CLIENT_TOKEN"] not in out
    rows = {row["id"]: row for row in admin.json("token", "list", "--tenant", "staging")}
    assert rows[token_id]["name"] == "ci" and not rows[token_id]["in_use"]
    assert rows[token_id]["expires_at"].startswith(time.strftime("%Y-", time.gmtime()))
    assert [row["handed_out"] for row in rows.values() if row["in_use"]] == [1]
    admin.hl("token", "revoke", token_id)
    assert token_id not in {row["id"] for row in admin.json("token", "list")}
    refused = admin.hl("token", "create", "--tenant", "staging", "--read-only", code=19)
    assert "read-only tokens need Hatchet v0.116.0 or newer;" in refused.stderr
    assert "runs v0.101.27" in refused.stderr
    assert "read-only not supported" in " ".join(admin.hl("server", "status").stdout.split())


def bearer(central: Central, token: str, tenant_id: str) -> int:
    with http(central) as client:
        return client.get(f"{central.url}/api/v1/tenants/{tenant_id}",
                          headers={"Authorization": f"Bearer {token}"}).status_code  # fmt: skip


def test_rotate_writes_the_new_token_and_revokes_the_old(admin: Admin) -> None:
    production_ids = [row["id"] for row in admin.json("token", "list", "--tenant", "production")]
    kept = admin.hl("token", "revoke", production_ids[0], code=2)
    assert "belongs to production tenant production: add --yes" in kept.stderr
    assert [row["id"] for row in admin.json("token", "list", "--tenant", "production")] == (
        production_ids
    )
    refused = admin.hl("token", "rotate", "--tenant", "production", code=2)
    assert "a production tenant's tokens and members change only with --yes" in refused.stderr
    before = read_env(admin.dir / "charlie.env")
    old = before["HATCHET_CLIENT_TOKEN"]
    out = admin.hl("token", "rotate", "--tenant", "development").stdout
    assert "written to 7 file(s)" in out  # 4 team files in .hatchet/, 3 developers' files
    after = read_env(admin.dir / "charlie.env")
    assert after["HATCHET_CLIENT_TOKEN"] != old
    assert after["HATCHET_CLIENT_NAMESPACE"] == "dev-charlie"
    tenant_id = after["HATCHET_CLIENT_TENANT_ID"]
    assert bearer(admin.central, after["HATCHET_CLIENT_TOKEN"], tenant_id) == 200
    deadline = time.monotonic() + 20  # the engine caches a token's row for 5 s
    while bearer(admin.central, old, tenant_id) == 200:
        assert time.monotonic() < deadline, "the old token is still accepted"
        time.sleep(1)
    for who in ("alice", "bob"):  # handed out too: rewritten as well
        assert (
            read_env(admin.dir / f"{who}.env")["HATCHET_CLIENT_TOKEN"]
            == after["HATCHET_CLIENT_TOKEN"]
        )


def test_members_are_invited_and_accept_in_their_own_session(admin: Admin) -> None:
    pending = admin.json("member", "list", "--tenant", "development")
    assert {"tenant": "development", "email": "alice@central.test", "role": "member",
            "pending": True, "declared": "member"} in pending  # fmt: skip
    cookie = sign_up(admin.central, "alice@central.test")
    assert accept_invites(admin.central, cookie) == 1
    rows = admin.json("member", "list", "--tenant", "development")
    assert {(r["email"], r["role"], r["pending"]) for r in rows} >= {
        ("alice@central.test", "member", False)
    }
    plan = admin.hl("plan").stdout
    assert "alice@central.test" not in plan  # a member as declared: nothing to say
    with http(admin.central) as client:  # Alice sees development only
        slugs = client.get(f"{admin.central.url}/api/v1/users/memberships", headers=cookie)
    assert [row["tenant"]["slug"] for row in slugs.json()["rows"]] == ["development"]


def test_archive_revokes_tokens_and_keeps_the_data(admin: Admin) -> None:
    admin.hl("tenant", "create", "old-team")
    settings = admin.hl("env", "--tenant", "old-team", "--reveal").stdout
    token = next(line.split("=", 1)[1] for line in settings.splitlines()
                 if line.startswith("HATCHET_CLIENT_TOKEN="))  # fmt: skip
    tenant_id = admin.tenants()["old-team"]
    unconfirmed = admin.hl("tenant", "archive", "old-team", code=2)
    assert "add --yes" in unconfirmed.stderr
    out = admin.hl("tenant", "archive", "old-team", "--yes").stdout
    assert "1 token(s) revoked" in out and "its data (runs, workflows, members) stays" in out
    rows = {row["slug"]: row for row in admin.json("tenant", "list")}
    assert rows["old-team"]["archived"] and rows["old-team"]["name"] == "old-team (archived)"
    assert rows["old-team"]["tokens"] == 0
    deadline = time.monotonic() + 20
    while bearer(admin.central, token, tenant_id) == 200:
        assert time.monotonic() < deadline, "an archived tenant's token is still accepted"
        time.sleep(1)
    (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central, "  old-team: {}\n"))
    try:
        plan = admin.hl("plan").stdout
    finally:
        (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central))
    assert "archived" in plan and "create tenant old-team" not in plan


# --- every failure: one line, its exit code, nothing changed ---------------------------------


@pytest.fixture
def stranger(admin: Admin, tmp_path: Path) -> Admin:
    """Another admin project: its own state directory, no session kept."""
    other = Admin(tmp_path / "other", tmp_path / "state", admin.central)
    other.dir.mkdir()
    (other.dir / "hatchet-local.yaml").write_text(seed(admin.central))
    return other


def assert_one_line(proc: subprocess.CompletedProcess[str], culprit: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert culprit in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    ("case", "server", "culprit", "code"),
    [
        ("unknown-ca", "unknown_ca", "is not trusted (unable to get local issuer certificate)", 16),
        ("wrong-host", "other_host", f"is not valid for host {HOST} (Hostname mismatch", 16),
        ("no-ca-given", "https", "is not trusted", 16),
        ("sso-only", "sso", "password login is off (the server signs in with google only", 17),
        ("wrong-password", "https", f"wrong email or password for {ADMIN_EMAIL}", 17),
        ("rate-limited", "limited", "rate-limiting these requests (HTTP 429); retry in 10 s", 18),
    ],
)  # fmt: skip
def test_login_failures(stranger: Admin, case: str, server: str, culprit: str, code: int) -> None:
    central = stranger.central
    args = ["server", "login", "--server", central.url_of(server)]
    if case != "no-ca-given":
        args += ["--ca-bundle", str(central.ca)]
    password = "Wrong-pass-1" if case == "wrong-password" else central.admin_password
    if case == "rate-limited":  # the limit there is one login per address, then 429
        with http(central) as client:
            client.post(f"{central.url_of('limited')}/api/v1/users/login",
                        json={"email": ADMIN_EMAIL, "password": "x"})  # fmt: skip
    if case == "no-ca-given":
        (stranger.dir / "hatchet-local.yaml").write_text(f"server: {{email: {ADMIN_EMAIL}}}\n")
    before = snapshot(stranger.dir), snapshot(stranger.state) if stranger.state.exists() else {}
    proc = stranger.hl(*args, code=code, HATCHET_LOCAL_SERVER_PASSWORD=password)
    assert_one_line(proc, culprit)
    assert password not in proc.stderr
    after = snapshot(stranger.dir), snapshot(stranger.state) if stranger.state.exists() else {}
    assert after == before  # no session kept, nothing written


def test_server_unreachable_while_the_proxy_is_down(admin: Admin) -> None:
    before = admin.server_state(), snapshot(admin.state)
    admin.central.stop_proxy()
    try:
        proc = admin.hl("apply", "--yes", code=15)
    finally:
        admin.central.start_proxy()
    assert_one_line(proc, f"GET {admin.central.url}/api/v1/meta failed: ConnectError")
    assert "is the server up, and server.url right?" in proc.stderr
    assert (admin.server_state(), snapshot(admin.state)) == before


def test_tenant_creation_and_invites_off_on_the_server(admin: Admin) -> None:
    locked = admin.central.url_of("locked")
    before = admin.server_state()
    (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central, "  qa: {}\n"))
    try:
        proc = admin.hl("apply", "--yes", "--server", locked, code=19,
                        HATCHET_LOCAL_SERVER_PASSWORD=admin.central.admin_password)  # fmt: skip
        assert_one_line(proc, "does not allow creating tenants (allowCreateTenant is off")
        extra = "  staging:\n    members: {dave@central.test: member}\n"
        (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central).replace(
            "  staging: {}\n", extra))  # fmt: skip
        proc = admin.hl("apply", "--yes", "--server", locked, code=19,
                        HATCHET_LOCAL_SERVER_PASSWORD=admin.central.admin_password)  # fmt: skip
        assert_one_line(proc, "does not allow invites (allowInvites is off")
    finally:
        (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central))
    assert admin.server_state() == before


def test_a_slug_taken_by_a_tenant_the_admin_cannot_see(admin: Admin) -> None:
    cookie = sign_up(admin.central, f"erin-{uuid.uuid4().hex[:4]}@central.test")
    with http(admin.central) as client:
        made = client.post(f"{admin.central.url}/api/v1/tenants", headers=cookie,
                           json={"name": "erins", "slug": "erins"})  # fmt: skip
    assert made.status_code == 200, made.text
    before = admin.server_state(), snapshot(admin.state)
    (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central, "  erins: {}\n"))
    try:
        assert "+ create tenant erins" in admin.hl("plan").stdout  # it cannot be seen
        proc = admin.hl("apply", "--yes", code=20)
    finally:
        (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central))
    assert_one_line(proc, "tenant slug 'erins' is taken on")
    assert "no token or member changed" in proc.stderr
    assert (admin.server_state(), snapshot(admin.state)) == before


def test_an_admin_removed_from_a_declared_tenant(admin: Admin) -> None:
    """Frank, made an owner of `shared` by the file, accepts in his own session and removes
    the admin: the next plan says so and changes nothing."""
    frank = f"frank-{uuid.uuid4().hex[:4]}@central.test"
    shared = f"  shared:\n    members: {{{frank}: owner}}\n"
    (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central, shared))
    try:
        admin.hl("apply", "--yes")
        cookie = sign_up(admin.central, frank)
        assert accept_invites(admin.central, cookie) == 1
        tenant_id = admin.tenants()["shared"]
        with http(admin.central) as client:
            members = client.get(f"{admin.central.url}/api/v1/tenants/{tenant_id}/members",
                                 headers=cookie).json()["rows"]  # fmt: skip
            ops = next(m for m in members if m["user"]["email"] == ADMIN_EMAIL)
            removed = client.delete(f"{admin.central.url}/api/v1/tenants/{tenant_id}/members/"
                                    f"{ops['metadata']['id']}", headers=cookie)  # fmt: skip
        assert removed.status_code == 204, removed.text
        before = admin.server_state(), snapshot(admin.state)
        proc = admin.hl("apply", "--yes", code=20)
        assert_one_line(proc, f"{ADMIN_EMAIL} is no longer a member of tenant shared")
        assert (admin.server_state(), snapshot(admin.state)) == before
    finally:
        (admin.dir / "hatchet-local.yaml").write_text(seed(admin.central))
