"""A stack's Postgres from inside its container: SQL as the superuser over the local socket
(which the Postgres images trust), its password, its major version, and the physical copies
bases and snapshots are made of.

SQL goes to psql on stdin, never in argv: a password travels only as a SCRAM verifier
computed here, so the password itself never leaves this process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import re
from typing import IO

from hatchet_local.compose import Compose, ServiceState
from hatchet_local.docker import Image, require_ok, unix_time

USER = "hatchet"
DATABASE = "hatchet"
PGDATA = "/var/lib/postgresql/data"
SERVICE = "postgres"
# postmaster.pid, line by line (src/include/utils/pidfile.h): the server's start time (Unix
# seconds), its first listen address ("" with listen_addresses=''), its status.
PID_START_TIME, PID_LISTEN, PID_STATUS, PID_FILE_LINES = 2, 5, 7, 8
PSQL = ("psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-U", USER)
SCRAM_ITERATIONS = 4096  # Postgres's own default


def psql(compose: Compose, sql: str, what: str, *, database: str = DATABASE) -> str:
    """Run `sql` in the stack's Postgres; its output (unaligned, tuples only)."""
    container = compose.container_name(SERVICE)
    argv = ["docker", "exec", "-i", container, *PSQL, "-d", database]
    result = compose.runner.stream(argv, source=io.BytesIO(sql.encode()), timeout=600)
    return require_ok(result, what, compose.runner).stdout.strip()


def shell(compose: Compose, script: str, what: str, timeout: float = 600) -> str:
    """Run a shell script inside the Postgres container (pg_dump piped into psql, say)."""
    container = compose.container_name(SERVICE)
    argv = ["docker", "exec", "-i", container, "sh", "-eu"]
    result = compose.runner.stream(argv, source=io.BytesIO(script.encode()), timeout=timeout)
    return require_ok(result, what, compose.runner).stdout.strip()


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802/7677): what
    ALTER ROLE accepts in place of the password itself."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_password(compose: Compose, password: str) -> None:
    """Give the stack's role its own password (before anything connects with it)."""
    sql = f"ALTER ROLE {USER} PASSWORD '{scram_verifier(password)}';\n"
    psql(compose, sql, "setting the stack's database password", database="postgres")


def clear_password(compose: Compose) -> None:
    """No password at all (nothing can log in over the network), and none left behind in
    the catalog's dead rows: what a base is copied with."""
    sql = f"ALTER ROLE {USER} PASSWORD NULL;\nVACUUM FULL pg_authid;\n"
    psql(compose, sql, "clearing the database password for a base", database="postgres")


def accepting(compose: Compose) -> bool:
    """Whether the server takes connections over TCP (an entrypoint's temporary server,
    which listens on the socket only, does not count)."""
    container = compose.container_name(SERVICE)
    argv = ["docker", "exec", container, "pg_isready", "-q", "-h", "127.0.0.1", "-U", USER]
    return compose.runner.run(argv, timeout=30).ok


def ready_in_pid_file(compose: Compose, state: ServiceState) -> bool:
    """Whether the server of a data folder hatchet-local filled (a base, a snapshot) takes
    connections over TCP, as its `postmaster.pid` says: what `pg_ctl -w` reads, in any
    language, and one Engine API request where `accepting` starts a process. It must say
    `ready`, name a listen address (an entrypoint's temporary server listens on the socket
    only) and have started with the container (a killed server's file says `ready` too):
    `state` is the running container's, as just inspected."""
    if not state.started_at:  # a listing's state: no start time to compare with
        return False
    found = compose.docker.file(compose.container_name(SERVICE), f"{PGDATA}/postmaster.pid")
    lines = found.decode("utf-8", "replace").splitlines() if found else []
    if len(lines) < PID_FILE_LINES or not lines[PID_START_TIME].strip().isdigit():
        return False
    started = int(lines[PID_START_TIME])
    return (lines[PID_STATUS].strip() == "ready" and lines[PID_LISTEN].strip() != ""
            and started >= int(float(unix_time(state.started_at))))  # fmt: skip


def server_major(compose: Compose) -> int:
    found = psql(compose, "SHOW server_version_num;\n", "asking Postgres its version")
    return int(found) // 10000


def image_major(image: Image) -> int | None:
    """The Postgres major an image runs, from its environment (PG_MAJOR in the official
    images, the server's directory on PATH in others); None when it does not say."""
    env = dict(item.partition("=")[::2] for item in image.env)
    if env.get("PG_MAJOR", "").isdigit():
        return int(env["PG_MAJOR"])
    match = re.search(r"/usr/lib/postgresql/(\d+)/bin", env.get("PATH", ""))
    return int(match.group(1)) if match else None


def database_exists(compose: Compose, name: str) -> bool:
    sql = f"SELECT 1 FROM pg_database WHERE datname = '{name}';\n"
    return psql(compose, sql, f"looking for database {name}", database="postgres") == "1"


def basebackup(compose: Compose, sink: IO[bytes]) -> None:
    """A consistent physical copy of the running cluster, as one tar (WAL included), into
    `sink`."""
    container = compose.container_name(SERVICE)
    argv = ["docker", "exec", container, "pg_basebackup", "-U", USER, "-D", "-", "-F", "t",
            "-X", "fetch", "--no-manifest", "--checkpoint=fast"]  # fmt: skip
    result = compose.runner.stream(argv, sink=sink, timeout=1800)
    if not result.ok:
        require_ok(result, "copying the database (pg_basebackup)", compose.runner)


def restore(compose: Compose, source: IO[bytes]) -> None:
    """Unpack a copy made by `basebackup` (a tar, gzipped or not) into the data volume of the
    container, which must exist and not run (`compose create`)."""
    container = compose.container_name(SERVICE)
    argv = ["docker", "cp", "--archive", "-", f"{container}:{PGDATA}"]
    result = compose.runner.stream(argv, source=source, timeout=1800)
    if not result.ok:
        require_ok(result, "unpacking the database into its volume", compose.runner)
