"""Security review on the rig: ports, secrets per stack, file modes, no secret in any
process's command line, output or logs unless --reveal, the default admin password gone,
and secret files other users can read or git tracks.

The command-line scan reads /proc/*/cmdline of every process on the host (containers'
processes included) every 20 ms while hatchet-local works, and first proves it would see a
short-lived process with a marker in its argv. With HATCHET_LOCAL_SECURITY_OUT set, the
exposures counted (command lines, outputs, log files, rendered file) and the scan's figures
are written there as JSON (bench/reliability.py reads them).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.central import Central
from tests.support.hostwatch import CmdlineWatch, listening_sockets
from tests.support.stacks import HATCHET_LOCAL, NOTHING, Project, labelled, tenant_get

pytestmark = pytest.mark.e2e

ADMIN_EMAIL = "admin@example.com"
# Secrets found where they must not be, by place; filled by the tests, written at the end.
EXPOSURES: dict[str, int] = {}
HATCHET_DEFAULT_PASSWORD = "Admin123!!"


def stack_secrets(project: Project, name: str) -> dict[str, str]:
    """Every secret of the stack as it stands: its state directory's passwords and token,
    and the token in the project's settings file."""
    stack_dir = project.state / "stacks" / name
    found = {}
    for line in (stack_dir / "secrets.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            found[key] = value
    token_file = stack_dir / "token.json"
    if token_file.is_file():
        found["token.json"] = json.loads(token_file.read_text())["token"]
    # The team commands' secrets: each tenant's token, each login's password.
    if (stack_dir / "tenants.json").is_file():
        for slug, entry in json.loads((stack_dir / "tenants.json").read_text()).items():
            found[f"tenants.json {slug}"] = entry["token"]
    if (stack_dir / "users.json").is_file():
        for email, password in json.loads((stack_dir / "users.json").read_text()).items():
            found[f"users.json {email}"] = password
    env_file = project.dir / ".env.hatchet"
    if env_file.is_file():
        found[".env.hatchet token"] = project.env_file()["HATCHET_CLIENT_TOKEN"]
    for key, value in list(found.items()):
        if value.startswith("ey"):  # a JWT: its signature alone is a secret too
            found[f"{key} signature"] = value.rsplit(".", 1)[1]
    assert all(len(v) >= 16 for v in found.values()), "a secret too short to search for"
    return found


@dataclass
class Run:
    """What the commands printed (by label) and which secrets existed when they ran."""

    project: Project
    name: str
    outputs: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    tokens: list[str] = field(default_factory=list)
    named: dict[str, str] = field(default_factory=dict)  # every secret seen, by where it was

    def hl(self, label: str, *args: str, ok: bool = True, **env: str) -> str:
        proc = subprocess.run(
            [str(HATCHET_LOCAL), *args], cwd=self.project.dir, env=self.project.env(**env),
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if ok:
            assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stderr}"
        self.outputs[label] = proc.stdout + proc.stderr
        self.learn()
        return proc.stdout

    def learn(self) -> None:
        current = stack_secrets(self.project, self.name)
        self.secrets |= set(current.values())
        self.named.update(current)
        token = current.get("token.json")
        if token and token not in self.tokens:
            self.tokens.append(token)


@dataclass
class Scanned:
    run: Run
    watch: CmdlineWatch
    marker: str
    logs_dir: Path


@pytest.fixture(scope="module")
def scanned(
    rig_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scanned]:
    """A stack of its own, taken through up (new), reset, env, status, logs and a failing up
    with --logs-dir while every process's command line is watched; removed afterwards."""
    root = tmp_path_factory.mktemp("security")
    name = f"sec-{uuid.uuid4().hex[:6]}"
    project = Project(root / "app", root / "state", f"stack: {name}\n")
    run = Run(project, name)
    marker = f"argv-scan-self-check-{uuid.uuid4().hex}"
    logs_dir = root / "failure-logs"
    try:
        with CmdlineWatch() as watch:
            # The scan must see a process that lives only 0.1 s (`; :` keeps the shell, with
            # the marker as its $0, from exec-ing sleep in its place).
            subprocess.run(["sh", "-c", "sleep 0.1; :", marker], check=True)
            run.hl("up (new stack)", "up")
            run.hl("up --output json", "up", "--output", "json")
            run.hl("up --output env", "up", "--output", "env")
            run.hl("status", "status")
            run.hl("status --output json", "status", "--output", "json")
            run.hl("env", "env")
            run.hl("env --output json", "env", "--output", "json")
            run.hl("env --output shell", "env", "--output", "shell")
            run.hl("logs", "logs", "--tail", "100000")
            # The team commands on a stack others reach (issue #16: there logins and tenants
            # are made by the engine's admin tool, whose values travel by name only).
            run.hl("up --expose", "up", "--expose")
            run.hl("tenant create", "tenant", "create", "qa")
            run.hl("user create", "user", "create", "dev@example.com", "--tenant", "qa")
            run.hl("user create --reveal", "user", "create", "ops@example.com", "--tenant",
                   "qa", "--reveal")  # fmt: skip
            run.hl("token create", "token", "create", "--tenant", "qa", "--name", "ci",
                   "--expires", "1h")  # fmt: skip
            run.hl("env --tenant", "env", "--tenant", "qa")
            run.hl("tenant list", "tenant", "list")
            run.hl("user list", "user", "list")
            run.hl("up back on loopback", "up", "--no-expose")
            run.hl("ls", "ls", "--output", "json")
            run.hl("down", "down")
            run.hl("up after down", "up")
            run.hl("reset (keeps the token)", "reset", "--yes")
            run.hl("snapshot save", "snapshot", "save", "sec")
            run.hl("reset --new-token", "reset", "--new-token", "--yes")
            run.hl("status after reset", "status")
            # A failing up: the engine stopped, 10 ms to come back (it needs about a second),
            # full logs kept.
            subprocess.run(["docker", "stop", f"{name}-hatchet-lite-1"], check=True,
                           capture_output=True)  # fmt: skip
            run.hl("failing up --logs-dir", "up", "--logs-dir", str(logs_dir), ok=False,
                   HATCHET_LOCAL_TIMEOUTS_ENGINE="0.01")  # fmt: skip
            run.hl("up (heals)", "up")
            run.hl("env --reveal", "env", "--reveal")
            run.hl("up --reveal", "up", "--reveal")
            run.hl("status --reveal", "status", "--reveal")
        yield Scanned(run, watch, marker, logs_dir)
        write_findings(Scanned(run, watch, marker, logs_dir))
    finally:
        project.hl("destroy", "--yes", ok=False)
        assert labelled(f"io.hatchet-local.stack={name}") == NOTHING
        assert not (project.state / "stacks" / name).exists()


def write_findings(scanned: Scanned) -> None:
    out = os.environ.get("HATCHET_LOCAL_SECURITY_OUT")
    if not out:
        return
    lines = scanned.watch.command_lines()
    findings = {
        "exposures": EXPOSURES,
        "scan": {"passes": scanned.watch.passes, "command_lines_seen": len(lines),
                 "marker_seen": any(scanned.marker in line for line in lines)},
        "commands_checked": sorted(scanned.run.outputs),
        "secrets_searched": len(scanned.run.secrets),
    }  # fmt: skip
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(findings, indent=2) + "\n")


REVEALING = {"env --reveal", "up --reveal", "status --reveal", "user create --reveal"}


def test_the_scan_sees_short_lived_processes_and_hatchet_locals_own(scanned: Scanned) -> None:
    lines = scanned.watch.command_lines()
    assert any(scanned.marker in line for line in lines), "the scan missed the marker process"
    # It saw hatchet-local's compose commands and the engine's admin tool minting a token.
    name = scanned.run.name
    assert any("--env-file" in line and f"--project-name {name}" in line for line in lines)
    assert any("/hatchet-admin token create" in line for line in lines)
    assert scanned.watch.passes > 100


def test_no_secret_in_any_command_line(scanned: Scanned) -> None:
    run = scanned.run
    assert len(run.tokens) >= 2, "reset --new-token should have minted a second token"
    leaked = [
        line for line in scanned.watch.command_lines()
        if any(secret in line for secret in run.secrets)
    ]  # fmt: skip
    EXPOSURES["command lines"] = len(leaked)
    assert leaked == []


def test_no_secret_in_output_without_reveal(scanned: Scanned) -> None:
    run = scanned.run
    assert set(run.outputs) - REVEALING  # the commands ran
    exposed = {
        label: sorted(s[:6] + "..." for s in run.secrets if s in text)
        for label, text in run.outputs.items()
        if label not in REVEALING
    }
    EXPOSURES["output"] = sum(len(found) for found in exposed.values())
    assert {label: found for label, found in exposed.items() if found} == {}
    assert "********" in run.outputs["status"]
    assert (
        json.loads(run.outputs["env --output json"].strip())["HATCHET_CLIENT_TOKEN"] == "********"
    )


def test_reveal_shows_the_token_and_the_admin_password(scanned: Scanned) -> None:
    run = scanned.run
    current = stack_secrets(run.project, run.name)
    assert current["token.json"] in run.outputs["env --reveal"]
    assert current["token.json"] in run.outputs["up --reveal"]
    assert current["HATCHET_ADMIN_PASSWORD"] in run.outputs["status --reveal"]
    revealed = run.outputs["user create --reveal"].split("password ", 1)[1].split()[0]
    assert revealed in run.secrets and "*" not in revealed


def test_team_commands_keep_their_secrets_out_of_argv_and_output(scanned: Scanned) -> None:
    """`user create` and `tenant create` hand the admin tool passwords by name only: the
    scan saw the tool run, never a password; their outputs mask them."""
    lines = scanned.watch.command_lines()
    assert any("/hatchet-admin seed" in line for line in lines)
    assert any("-e ADMIN_PASSWORD" in line for line in lines)  # the name, never the value
    passwords = [v for k, v in scanned.run.named.items() if k.startswith("users.json")]
    assert passwords, "no login was made"
    assert [line for line in lines if any(p in line for p in passwords)] == []
    assert "password ********" in scanned.run.outputs["user create"]


def test_failure_logs_name_the_failure_and_hold_no_secret(scanned: Scanned) -> None:
    run = scanned.run
    failed = run.outputs["failing up --logs-dir"]
    assert "error: engine failed after" in failed or "error: engine not ready" in failed, failed
    files = sorted(scanned.logs_dir.glob("*.log"))
    assert {f.stem for f in files} >= {"postgres", "rabbitmq", "hatchet-lite"}
    assert sum(f.stat().st_size for f in files) > 0
    found = {log.name: [s[:6] for s in run.secrets if s in log.read_text(errors="replace")]
             for log in files}  # fmt: skip
    EXPOSURES["--logs-dir files"] = sum(len(v) for v in found.values())
    assert {name: v for name, v in found.items() if v} == {}


def test_secret_files_are_0600_in_a_0700_directory(scanned: Scanned) -> None:
    run = scanned.run
    stack_dir = run.project.state / "stacks" / run.name
    assert stat.S_IMODE(stack_dir.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in stack_dir.iterdir()}
    assert {"secrets.env", "token.json", "stack.json", "compose.yaml"} <= set(files)
    assert files == dict.fromkeys(files, 0o600)
    assert stat.S_IMODE((run.project.dir / ".env.hatchet").stat().st_mode) == 0o600
    # The rendered compose file interpolates the passwords, never holds them.
    compose = (stack_dir / "compose.yaml").read_text()
    EXPOSURES["rendered compose file"] = len([s for s in run.secrets if s in compose])
    assert EXPOSURES["rendered compose file"] == 0


def test_secrets_are_random_per_stack(scanned: Scanned, shared_stack: Project) -> None:
    run = scanned.run
    mine = stack_secrets(run.project, run.name)
    theirs = stack_secrets(shared_stack, shared_stack.status()["stack"])
    for key in ("HATCHET_POSTGRES_PASSWORD", "HATCHET_RABBITMQ_PASSWORD",
                "HATCHET_ADMIN_PASSWORD", "token.json"):  # fmt: skip
        assert mine[key] != theirs[key], key
    # Three different passwords within one stack too, and a new token after the reset.
    assert len({mine[k] for k in mine if k.startswith("HATCHET_")}) == 3
    assert run.tokens[0] != run.tokens[-1]


@pytest.fixture(scope="module")
def from_base(scanned: Scanned) -> Iterator[tuple[Project, str, str]]:
    """A second stack in the scanned stack's state directory: it starts from the base the
    first one kept. Removed afterwards."""
    first = scanned.run.project
    name = f"sec2-{uuid.uuid4().hex[:6]}"
    project = Project(first.dir.parent / "app2", first.state, f"stack: {name}\n")
    try:
        yield project, name, project.hl("up").stderr
    finally:
        project.hl("destroy", "--yes", ok=False)


def role_verifier(stack: str) -> str:
    """The SCRAM verifier Postgres keeps for the stack's role."""
    return subprocess.run(
        ["docker", "exec", f"{stack}-postgres-1", "psql", "-U", "hatchet", "-d", "postgres",
         "-tAc", "SELECT rolpassword FROM pg_authid WHERE rolname = 'hatchet'"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


KEYS = ("secrets:", "privateJWTKeyset:", "publicJWTKeyset:", "masterKeyset:")


def engine_keys(stack: str) -> dict[str, str]:
    """The cookie secrets and the JWT and master keysets `setup` wrote for the stack."""
    server_yaml = subprocess.run(
        ["docker", "exec", f"{stack}-hatchet-lite-1", "cat", "/config/server.yaml"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    keys = {}
    for line in server_yaml.splitlines():
        key, _, value = line.strip().partition(" ")
        if key in KEYS:
            keys[key] = value
    assert set(keys) == set(KEYS), server_yaml[:200]
    return keys


def test_no_two_stacks_share_a_password_key_or_token_through_the_base(
    scanned: Scanned, from_base: tuple[Project, str, str]
) -> None:
    """The second stack's database is a copy of the base the first made; everything secret
    is its own all the same."""
    project, name, up = from_base
    assert "-> database from base" in up
    first = scanned.run
    mine, theirs = stack_secrets(project, name), stack_secrets(first.project, first.name)
    for key in ("HATCHET_POSTGRES_PASSWORD", "HATCHET_RABBITMQ_PASSWORD",
                "HATCHET_ADMIN_PASSWORD", "token.json"):  # fmt: skip
        assert mine[key] != theirs[key], key
    assert role_verifier(name).startswith("SCRAM-SHA-256$")
    assert role_verifier(name) != role_verifier(first.name)
    # The base holds no password verifier of any stack: it was taken with none on the role.
    (base,) = (first.project.state / "bases").glob("*.tar")
    assert b"SCRAM-SHA-256$" not in base.read_bytes()
    ours, others = engine_keys(name), engine_keys(first.name)
    assert {k: v for k, v in ours.items() if others[k] == v} == {}
    # And a token of one stack opens nothing on the other.
    settings = project.env_file()
    assert tenant_get(settings, settings["HATCHET_CLIENT_TOKEN"]) == 200
    assert tenant_get(settings, theirs["token.json"]) in (401, 403)


def test_a_snapshot_is_private_and_its_secrets_stay_out_of_command_lines(
    scanned: Scanned,
) -> None:
    path = scanned.run.project.state / "snapshots" / "sec.tar"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "mode 0600, it holds the stack's token and passwords" in scanned.run.outputs[
        "snapshot save"]  # fmt: skip


def published_bindings(stack: str) -> list[tuple[str, str]]:
    label = f"label=io.hatchet-local.stack={stack}"
    ids = subprocess.run(["docker", "ps", "-q", "--filter", label],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    inspected = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True,
                                          text=True, check=True).stdout)  # fmt: skip
    bindings = []
    for container in inspected:
        for port, binds in (container["NetworkSettings"]["Ports"] or {}).items():
            bindings += [(port, f"{b['HostIp']}:{b['HostPort']}") for b in binds or []]
        for port, binds in (container["HostConfig"]["PortBindings"] or {}).items():
            bindings += [(port, f"{b['HostIp']}:{b['HostPort']}") for b in binds or []]
    return bindings


def test_ports_bind_to_loopback_only(shared_stack: Project) -> None:
    status = shared_stack.status()
    bindings = published_bindings(status["stack"])
    ports = {status["dashboard_url"].rsplit(":", 1)[1], status["grpc_address"].rsplit(":", 1)[1]}
    assert {b.split(":")[1] for _, b in bindings} == ports
    assert [b for _, b in bindings if not b.startswith("127.0.0.1:")] == []
    # And on the host: the listening sockets of those ports are on 127.0.0.1 alone.
    addresses = {addr for addr, port in listening_sockets().values() if str(port) in ports}
    assert addresses == {"0100007F"}  # 127.0.0.1 in /proc/net/tcp's byte order


def login(server_url: str, password: str) -> int:
    body = {"email": ADMIN_EMAIL, "password": password}
    response = httpx.post(f"{server_url}/api/v1/users/login", json=body, timeout=30)
    return response.status_code


def test_the_default_admin_password_is_replaced(shared_stack: Project) -> None:
    status = shared_stack.status("--reveal")
    generated = status["admin_password"]
    assert generated != HATCHET_DEFAULT_PASSWORD
    assert login(status["dashboard_url"], HATCHET_DEFAULT_PASSWORD) in (400, 401, 403)
    assert login(status["dashboard_url"], generated) == 200


def test_up_warns_about_a_token_others_could_read_and_makes_it_private(scanned: Scanned) -> None:
    project = scanned.run.project
    env_file = project.dir / ".env.hatchet"
    env_file.chmod(0o644)
    up = project.hl("up")
    assert (
        f"warning: {env_file} held a token while other users could read it (mode 0644)"
    ) in up.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_up_warns_when_git_tracks_the_env_file(scanned: Scanned) -> None:
    project = scanned.run.project
    git = ["git", "-C", str(project.dir)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-f", ".env.hatchet"], check=True)
    up = project.hl("up")
    assert "holds a token and git does not ignore it: git tracks it" in up.stderr
    subprocess.run([*git, "rm", "-q", "--cached", ".env.hatchet"], check=True)
    (project.dir / ".gitignore").write_text(".env.hatchet\n")
    assert "git does not ignore" not in project.hl("up").stderr


# --- a server hatchet-local did not start (issue #14) ----------------------------------------

CENTRAL_SEED = (
    "server:\n  url: {url}\n  email: {email}\n  ca_bundle: {ca}\n"
    "tenants:\n  development:\n    namespaces: [dev-alice]\n  staging: {{}}\n"
)


def test_central_secrets_stay_out_of_argv_output_and_others_reach(
    central: Central, tmp_path: Path
) -> None:
    """The admin password (stdin, then the environment), the session cookie and every token
    kept or handed out: never in any process's command line, never printed without
    --reveal, and only in files of mode 0600 inside 0700 directories."""
    from tests.support.central import ADMIN_EMAIL

    project = Project(tmp_path / "app", tmp_path / "state", "")
    (project.dir / "hatchet-local.yaml").write_text(
        CENTRAL_SEED.format(url=central.url, email=ADMIN_EMAIL, ca=central.ca)
    )
    outputs: dict[str, str] = {}
    tokens: set[str] = set()
    server_dir: list[Path] = []

    def hl(label: str, *args: str, stdin: str | None = None, **env: str) -> None:
        proc = subprocess.run(
            [str(HATCHET_LOCAL), *args], cwd=project.dir, env=project.env(**env), input=stdin,
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
        outputs[label] = proc.stdout + proc.stderr
        server_dir[:] = list((project.state / "servers").glob("*"))
        kept = server_dir[0] / "tenants.json" if server_dir else None
        if kept is not None and kept.is_file():
            tokens.update(entry["token"] for entry in json.loads(kept.read_text()).values())

    with CmdlineWatch() as watch:
        hl("server login", "server", "login", "--password-stdin", stdin=central.admin_password)
        cookie = json.loads((server_dir[0] / "session.json").read_text())["cookie"]
        hl("apply", "apply", "--yes")
        hl("server logout", "server", "logout")
        hl("plan (password from env)", "plan",
           HATCHET_LOCAL_SERVER_PASSWORD=central.admin_password)  # fmt: skip
        hl("env --write", "env", "--tenant", "development", "--namespace", "dev-alice",
           "--write", "alice.env")  # fmt: skip
        hl("env", "env", "--tenant", "staging")
        hl("env --output json", "env", "--tenant", "staging", "--output", "json")
        hl("token create", "token", "create", "--tenant", "staging", "--name", "sec")
        hl("token rotate", "token", "rotate", "--tenant", "development")
        hl("token list", "token", "list")
        hl("plan --output json", "plan", "--output", "json")
        hl("env --reveal", "env", "--tenant", "staging", "--reveal")
    secrets = {central.admin_password, cookie, *tokens}
    secrets |= {token.rsplit(".", 1)[1] for token in tokens}  # a signature alone too
    assert len(tokens) >= 3  # development (before and after the rotation), staging
    leaked = [line for line in watch.command_lines() if any(s in line for s in secrets)]
    EXPOSURES["central command lines"] = len(leaked)
    assert leaked == []
    exposed = {label: [s[:6] for s in secrets if s in text]
               for label, text in outputs.items() if label != "env --reveal"}  # fmt: skip
    EXPOSURES["central output"] = sum(len(found) for found in exposed.values())
    assert {label: found for label, found in exposed.items() if found} == {}
    staging = json.loads((server_dir[0] / "tenants.json").read_text())["staging"]["token"]
    assert staging in outputs["env --reveal"]
    assert central.admin_password not in "".join(
        path.read_text() for path in server_dir[0].iterdir()
    )
    for directory in (server_dir[0], project.dir / ".hatchet"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    private = [*server_dir[0].iterdir(), *(project.dir / ".hatchet").iterdir(),
               project.dir / "alice.env"]  # fmt: skip
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in private} == {
        p.name: 0o600 for p in private
    }
