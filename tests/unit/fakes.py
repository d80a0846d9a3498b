"""Test doubles shared by the unit tests: a scripted Runner, a fake clock, and a fake
Docker + Hatchet that answers everything `startup.up` asks."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx

from hatchet_local.defaults import ENGINE_HOLD_FILE, ENGINE_SERVICE, JOB_COMMANDS
from hatchet_local.provision import PRISTINE
from hatchet_local.runner import Result
from tests.unit.fake_api import FakeHatchetApi


@dataclass(frozen=True)
class Call:
    """One command the code under test ran."""

    argv: tuple[str, ...]
    env: dict[str, str] | None
    timeout: float | None
    capture: bool
    data: bytes | None = None  # what a `stream` call was given on stdin

    def has(self, *words: str) -> bool:
        return contains(self.argv, words)

    def option(self, name: str) -> str:
        """The value after `name` in argv (e.g. `--env-file`)."""
        return self.argv[self.argv.index(name) + 1]


Handler = Callable[[Call], Result]


def contains(argv: Sequence[str], words: Sequence[str]) -> bool:
    """True when `words` appear in `argv` as consecutive arguments."""
    n = len(words)
    return any(tuple(argv[i : i + n]) == tuple(words) for i in range(len(argv) - n + 1))


def reply(call: Call, returncode: int = 0, stdout: str = "", stderr: str = "") -> Result:
    return Result(call.argv, returncode, stdout, stderr)


class FakeRunner:
    """A Runner scripted by argv.

    `on(*words, ...)` answers every command holding `words` as consecutive arguments; the
    rule added last wins, so a test overrides a default by adding a rule. A command no rule
    answers fails the test: nothing runs unnoticed.
    """

    def __init__(self) -> None:
        self.rules: list[tuple[tuple[str, ...], Handler]] = []
        self.calls: list[Call] = []
        # Every call, and whatever else a fake wired to this runner saw (HTTP requests), in
        # the order it happened: what `assert_before` reads.
        self.journal: list[object] = []

    def on(
        self,
        *words: str,
        returncode: int = 0,
        stdout: str = "",
        stderr: str = "",
        raises: BaseException | None = None,
    ) -> None:
        def handler(call: Call) -> Result:
            if raises is not None:
                raise raises
            return reply(call, returncode, stdout, stderr)

        self.rules.append((words, handler))

    def on_call(self, *words: str, handler: Handler) -> None:
        self.rules.append((words, handler))

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        capture: bool = True,
        cwd: Path | None = None,
    ) -> Result:
        call = Call(tuple(argv), dict(env) if env is not None else None, timeout, capture)
        self.calls.append(call)
        self.journal.append(call)
        for words, handler in reversed(self.rules):
            if contains(call.argv, words):
                return handler(call)
        raise AssertionError(f"FakeRunner: no answer scripted for {list(argv)}")

    def detach(self, argv: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str]) -> int:
        """Recorded as a call (its env in `Call.env`, `cwd` and `log` noted in the
        journal); nothing runs. Returns a pid no process has."""
        call = Call(tuple(argv), dict(env), None, False)
        self.calls.append(call)
        self.journal.append(call)
        self.journal.append(("detached", cwd, log))
        return 0

    def stream(
        self,
        argv: Sequence[str],
        *,
        source: IO[bytes] | None = None,
        sink: IO[bytes] | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Like `run`, with the source's bytes kept in `Call.data` and a handler's stdout
        written to the sink."""
        data = source.read() if source is not None else None
        call = Call(tuple(argv), dict(env) if env is not None else None, timeout, True, data)
        self.calls.append(call)
        self.journal.append(call)
        for words, handler in reversed(self.rules):
            if contains(call.argv, words):
                result = handler(call)
                if sink is not None:
                    sink.write(result.stdout.encode())
                    return Result(result.argv, result.returncode, "", result.stderr)
                return result
        raise AssertionError(f"FakeRunner: no answer scripted for {list(argv)}")

    def called(self, *words: str) -> list[Call]:
        """The calls whose argv holds `words` consecutively, in order."""
        return [call for call in self.calls if call.has(*words)]

    def forget(self) -> None:
        """Drop what was seen so far (the rules stay)."""
        self.calls.clear()
        self.journal.clear()


@dataclass(frozen=True)
class Http:
    """A step of `assert_before` that is an HTTP request: its method and path (a regex)."""

    method: str
    path: str


Step = tuple[str, ...] | Http


def _matches(event: object, step: Step) -> bool:
    if isinstance(step, Http):
        return (
            isinstance(event, httpx.Request)
            and event.method == step.method
            and re.fullmatch(step.path, event.url.path) is not None
        )
    return isinstance(event, Call) and event.has(*step)


def _describe(event: object) -> str:
    if isinstance(event, httpx.Request):
        return f"{event.method} {event.url.path}"
    return " ".join(event.argv) if isinstance(event, Call) else repr(event)


def assert_before(journal: Sequence[object], *steps: Step) -> None:
    """Each step happened, and every occurrence of a step came before every occurrence of the
    next one. A step is the words of a command (consecutive, as in `FakeRunner.on`) or an
    `Http` request. Only the order of these steps is checked: other commands may come and go.
    """
    for first, then in itertools.pairwise(steps):
        before = [n for n, event in enumerate(journal) if _matches(event, first)]
        after = [n for n, event in enumerate(journal) if _matches(event, then)]
        seen = "\n".join(f"  {n}: {_describe(event)}" for n, event in enumerate(journal))
        assert before, f"{first} never happened; seen:\n{seen}"
        assert after, f"{then} never happened; seen:\n{seen}"
        assert max(before) < min(after), f"{first} not all before {then}; seen:\n{seen}"


class FakeClock:
    """A monotonic clock that only moves when `sleep` is called."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class Row:
    """What `compose ps` reports for one service."""

    state: str = "running"
    health: str = "healthy"
    exit_code: int = 0
    published: tuple[int, ...] = ()


HEALTHY = Row()
TOKEN_CREATE = ("/hatchet-admin", "token", "create")  # a `docker exec` in the engine's container


def status_text(row: Row) -> str:
    """The status text a container listing shows for `row`."""
    if row.state != "running":
        return f"Exited ({row.exit_code}) 2 seconds ago" if row.state == "exited" else row.state
    health = {"healthy": " (healthy)", "unhealthy": " (unhealthy)",
              "starting": " (health: starting)"}.get(row.health, "")  # fmt: skip
    return f"Up 3 seconds{health}"


def container_rows(rows: Mapping[str, Row], project: str = "unit") -> str:
    """`docker ps --format` output in docker_cli.CONTAINER_FORMAT: one object per line."""
    return "".join(
        json.dumps({
            "id": f"id-{service}", "name": f"{project}-{service}-1", "service": service,
            "state": row.state, "status": status_text(row),
            "ports": ", ".join(f"127.0.0.1:{port}->8888/tcp" for port in row.published),
        }) + "\n"
        for service, row in rows.items()
    )  # fmt: skip


def df_output(free: int, size: int = 20 * 1024**3) -> str:
    """`df -P -k` of a file system with `free` of `size` bytes left."""
    used = (size - free) // 1024
    return (
        "Filesystem     1024-blocks   Used Available Capacity Mounted on\n"
        f"/dev/vdb {size // 1024} {used} {free // 1024} 50% /var/lib/postgresql/data\n"
    )


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key] = value
    return values


@dataclass
class FakeHatchet:
    """Docker, Compose v2 and a Hatchet stack, scripted on a FakeRunner, with `api` (the one
    fake of Hatchet's REST API) behind `transport`.

    A service reports `starts[service]` from the moment `compose up` names it: one Row, or a
    list of Rows that `ps` walks through one call at a time (the last one stays). One-shot
    jobs answer `jobs[job]`; `token create` mints the next of `tokens`, which the API then
    accepts for the default tenant. The API's requests go into the runner's journal, so a test
    can order commands and requests (`assert_before`).
    """

    runner: FakeRunner
    starts: dict[str, Row | list[Row]] = field(default_factory=dict)
    jobs: dict[str, tuple[int, str]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    tokens: list[str] = field(
        default_factory=lambda: [f"eyJhbGciOiJFUzI1NiJ9.token-{n}.signature" for n in range(1, 9)]
    )
    missing_images: set[str] = field(default_factory=set)
    git_ignored: bool = True
    api: FakeHatchetApi = field(default_factory=FakeHatchetApi)
    # What the fake observed.
    services: dict[str, list[Row]] = field(default_factory=dict)
    volumes: set[str] = field(default_factory=set)  # the stacks' data and config volumes
    pristine: bool = False  # whether a pristine copy of the database was made
    sql: list[str] = field(default_factory=list)  # what psql was given, in order
    # Each time the engine's held start was let go: whether the pristine copy existed then.
    released: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api.journal = self.runner.journal
        r = self.runner
        r.on("docker", "version", "--format", stdout="27.3.1\n")
        r.on("docker", "version", "--format", "{{.Server.APIVersion}}", stdout="1.41\n")
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        r.on("docker", "info", "--format", stdout=f"{8 * 1024**3} {now}\n")  # a fine machine
        r.on("version", "--short", stdout="2.29.7\n")
        r.on("--no-such-flag", returncode=1, stderr="unknown flag: --no-such-flag\n")
        r.on_call("docker", "image", "inspect", handler=self._image_inspect)
        r.on("docker", "ps", "--format")  # no other container publishes a port
        r.on("docker", "exec", stdout=df_output(free=10 * 1024**3))  # Postgres has disk space
        for listing in (("docker", "ps", "--all"), ("docker", "volume", "ls"),
                        ("docker", "network", "ls")):  # fmt: skip
            r.on(*listing)  # no labelled objects: nothing expired to reap
        r.on("pull", "--quiet")
        r.on_call("docker", "ps", "--all", handler=self._ps)
        r.on_call("docker", "inspect", "--type", "container", handler=self._inspect)
        r.on_call("up", "--detach", handler=self._up)
        r.on_call("docker", "start", handler=self._start)
        r.on_call("run", "--rm", handler=self._run_job)
        # The jobs run inside the engine's container, held at its start (jobs.py).
        r.on_call(*JOB_COMMANDS["migrate"], handler=self._exec_job)
        r.on_call(*JOB_COMMANDS["setup"][:2], handler=self._exec_job)
        r.on("docker", "restart")
        r.on_call("rm", "-f", ENGINE_HOLD_FILE, handler=self._release)
        r.on_call(*TOKEN_CREATE, handler=self._token_create)
        r.on_call("logs", "--no-color", handler=self._logs)
        r.on_call("git", handler=lambda call: reply(call, 0 if self.git_ignored else 1))
        r.on_call("docker", "volume", "inspect", handler=self._volume_inspect)
        r.on_call("up", "--no-start", handler=self._create)
        r.on_call("docker", "exec", "-i", handler=self.psql)
        r.on("pg_isready")
        r.on("pg_basebackup", stdout="a tar of the database")
        r.on("docker", "cp")  # a volume's files in or out
        r.on("docker", "kill")
        r.on_call("docker", "logs", "--since", handler=self._logs_of_container)

    # --- docker and compose --------------------------------------------------------------

    def _image_inspect(self, call: Call) -> Result:
        ref = call.argv[-1]
        if ref in self.missing_images:
            return reply(call, 1, stderr=f"Error: No such image: {ref}\n")
        if ".Config.Env" not in call.option("--format"):
            return reply(call, stdout="sha256:0123456789abcdef\n")
        env = ["PATH=/usr/lib/postgresql/15/bin:/usr/bin"] if "postgres" in ref else []
        image_id = hashlib.sha256(ref.encode()).hexdigest()[:16]
        return reply(call, stdout=f'"sha256:{image_id}" {json.dumps(env)}\n')

    def _ps(self, call: Call) -> Result:
        """A project's service containers (each Row walked one call at a time); no job
        containers left over; no labelled objects of other stacks."""
        project = next(
            (
                word.rpartition("=")[2]
                for word in call.argv
                if word.startswith("--filter=label=com.docker.compose.project=")
            ),
            "",
        )
        if not project or "--filter=label=com.docker.compose.oneoff=True" in call.argv:
            return reply(call)
        current = {service: states[0] for service, states in self.services.items()}
        for states in self.services.values():
            if len(states) > 1:
                states.pop(0)
        return reply(call, stdout=container_rows(current, project))

    def _volume_inspect(self, call: Call) -> Result:
        if call.argv[-1] in self.volumes:
            return reply(call, stdout=call.argv[-1] + "\n")
        return reply(call, 1, stderr=f"Error: No such volume: {call.argv[-1]}\n")

    def _create(self, call: Call) -> Result:
        project = call.option("--project-name")
        self.volumes |= {f"{project}_postgres_data", f"{project}_hatchet_config"}
        return reply(call)

    def psql(self, call: Call) -> Result:
        """psql (and shell scripts) in the Postgres container, SQL on stdin."""
        sql = (call.data or b"").decode()
        self.sql.append(sql)
        if f"CREATE DATABASE {PRISTINE}" in sql:
            self.pristine = True
        if f"datname = '{PRISTINE}'" in sql:
            return reply(call, stdout="1\n" if self.pristine else "")
        if '"SchedulerPartition"' in sql:
            return reply(call, stdout="0\n")  # every tenant is the live engine's
        if "SHOW server_version_num" in sql:
            return reply(call, stdout="150004\n")  # the stack's Postgres 15
        return reply(call)

    def _logs_of_container(self, call: Call) -> Result:
        service = next((s for s in self.logs if call.argv[-1].endswith(f"-{s}-1")), "")
        return reply(call, stdout=self.logs.get(service, ""))

    def _inspect(self, call: Call) -> Result:
        """`docker inspect` of one service's container: its Row, walked like `ps` walks."""
        name = call.argv[-1]
        service = next((s for s in self.services if name.endswith(f"-{s}-1")), None)
        if service is None:
            return reply(call, 1, stderr=f"Error: No such container: {name}\n")
        states = self.services[service]
        row = states.pop(0) if len(states) > 1 else states[0]
        health = {"Health": {"Status": row.health}} if row.health else {}
        state = {"Status": row.state, "ExitCode": row.exit_code,
                 "StartedAt": "2026-11-29T22:53:01.123456789Z", **health}  # fmt: skip
        return reply(call, stdout=json.dumps(state) + "\n")

    def _up(self, call: Call) -> Result:
        self._create(call)
        after = call.argv[call.argv.index("up") + 1 :]
        for service in (word for word in after if not word.startswith("--")):
            start = self.starts.get(service, HEALTHY)
            self.services[service] = list(start) if isinstance(start, list) else [start]
        return reply(call)

    def _start(self, call: Call) -> Result:
        """`docker start` of containers `up --no-start` made: each begins its `starts`,
        but one already running stays as it is."""
        for name in call.argv[2:]:
            service = name.removesuffix("-1").rpartition("-")[2]
            service = ENGINE_SERVICE if service == "lite" else service
            running = self.services.get(service, [Row("exited")])[0].state == "running"
            if not running:
                start = self.starts.get(service, HEALTHY)
                self.services[service] = list(start) if isinstance(start, list) else [start]
        return reply(call)

    def _run_job(self, call: Call) -> Result:
        code, output = self.jobs.get(call.argv[-1], (0, ""))
        return reply(call, code, stdout=output)

    def _exec_job(self, call: Call) -> Result:
        job = "migrate" if call.has(*JOB_COMMANDS["migrate"]) else "setup"
        code, output = self.jobs.get(job, (0, ""))
        return reply(call, code, stdout=output)

    def _release(self, call: Call) -> Result:
        self.released.append(self.pristine)
        return reply(call)

    def _token_create(self, call: Call) -> Result:
        token = self.tokens.pop(0)
        self.api.accept(token)
        return reply(call, stdout=f'level=info msg="loaded config"\n{token}\n')

    def _logs(self, call: Call) -> Result:
        return reply(call, stdout=self.logs.get(call.argv[-1], ""))

    @property
    def transport(self) -> httpx.MockTransport:
        return self.api.transport


def argv_text(calls: Iterable[Call]) -> str:
    """Every argv the runner saw, as one text to search for leaked secrets."""
    return "\n".join(" ".join(call.argv) for call in calls)


Answer = Callable[[httpx.Request], httpx.Response]


def answering(answer: Answer, seen: list[httpx.Request] | None = None) -> httpx.Client:
    """An HTTP client whose every request `answer` answers (or raises from), each kept in
    `seen` when given: for a test about one status or one failure, where FakeHatchetApi would
    say too much."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return answer(request)

    return httpx.Client(transport=httpx.MockTransport(handler))


def unreachable(cause: Exception | None = None) -> Answer:
    """An answer that fails as a server nobody listens at does (httpx.ConnectError), caused by
    `cause` (an ssl error, say) when given."""

    def fail(request: httpx.Request) -> httpx.Response:
        message = str(cause) if cause is not None else "connection refused"
        raise httpx.ConnectError(message, request=request) from cause

    return fail


def docker_rows(*rows: tuple[str, str, str]) -> str:
    """What `docker ps` prints in docker.LISTING_FORMAT for these (name, stack, state)."""
    return "".join(
        json.dumps({"name": name, "stack": stack, "expires": "", "state": state}) + "\n"
        for name, stack, state in rows
    )


def container_listing(*rows: tuple[str, str]) -> str:
    """`docker ps --format` output in docker_cli.CONTAINER_FORMAT for (name, ports)."""
    return "".join(
        json.dumps({"id": name, "name": name, "service": "", "state": "running",
                    "status": "Up 1 minute", "ports": ports}) + "\n"
        for name, ports in rows
    )  # fmt: skip
