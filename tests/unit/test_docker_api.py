"""The Engine API client: the endpoint resolved as the docker CLI resolves it, and the reads
it makes, over a scripted transport and over a real unix socket."""

from __future__ import annotations

import hashlib
import io
import json
import socketserver
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from hatchet_local.docker import (
    Container,
    DockerObject,
    exit_code_of,
    expand_ports,
    health_of,
    project_containers,
)
from hatchet_local.docker_api import DEFAULT_HOST, ApiEngine, Endpoint, engine_for, resolve_endpoint
from hatchet_local.docker_cli import CliEngine
from hatchet_local.errors import CommandFailed, DockerUnavailable
from hatchet_local.plainhttp import is_transport_error, plain_get
from tests.unit.fakes import FakeRunner

# --- the endpoint ----------------------------------------------------------------------------


def add_context(config: Path, name: str, host: str, *, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    body = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}
    (meta / "meta.json").write_text(json.dumps(body))
    if tls:
        (config / "contexts" / "tls" / digest / "docker").mkdir(parents=True)


def test_no_setting_at_all_is_the_default_socket(tmp_path: Path) -> None:
    endpoint = resolve_endpoint({"HOME": str(tmp_path)})  # no ~/.docker/config.json
    assert endpoint == Endpoint(DEFAULT_HOST, "default", unix_path="/var/run/docker.sock")


@pytest.mark.parametrize(
    ("host", "unix", "tcp"),
    [
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock", None),
        ("tcp://127.0.0.1:2375", None, ("127.0.0.1", 2375)),
        ("tcp://[::1]:2375", None, ("::1", 2375)),
        ("", "/var/run/docker.sock", None),  # set but empty: the default context's socket
    ],
)
def test_docker_host_wins_over_every_context(
    tmp_path: Path, host: str, unix: str | None, tcp: tuple[str, int] | None
) -> None:
    add_context(tmp_path, "remote", "tcp://10.0.0.9:2375")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    env = {"DOCKER_HOST": host, "DOCKER_CONTEXT": "remote", "DOCKER_CONFIG": str(tmp_path)}
    endpoint = resolve_endpoint(env)
    assert (endpoint.unix_path, endpoint.tcp, endpoint.source) == (unix, tcp, "DOCKER_HOST")


def test_docker_context_wins_over_the_config_file(tmp_path: Path) -> None:
    add_context(tmp_path, "colima", "unix:///home/me/.colima/docker.sock")
    add_context(tmp_path, "other", "unix:///other.sock")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "other"}))
    endpoint = resolve_endpoint({"DOCKER_CONTEXT": "colima", "DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.unix_path == "/home/me/.colima/docker.sock"
    assert endpoint.source == "context colima (DOCKER_CONTEXT)"


def test_the_current_context_of_the_config_file(tmp_path: Path) -> None:
    docker_dir = tmp_path / ".docker"
    add_context(docker_dir, "desktop-linux", "unix:///Users/me/.docker/run/docker.sock")
    (docker_dir / "config.json").write_text(json.dumps({"currentContext": "desktop-linux"}))
    endpoint = resolve_endpoint({"HOME": str(tmp_path)})
    assert endpoint.unix_path == "/Users/me/.docker/run/docker.sock"


@pytest.mark.parametrize("name", ["default", ""])
def test_the_default_context_by_name(tmp_path: Path, name: str) -> None:
    endpoint = resolve_endpoint({"DOCKER_CONTEXT": name, "DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.unix_path == "/var/run/docker.sock"


def test_endpoints_plain_http_cannot_reach_are_left_to_the_docker_cli(tmp_path: Path) -> None:
    """An unknown context, an unreadable config file, ssh and TLS: never a guess (which could
    be another engine than the one `up` uses), always the docker CLI."""
    add_context(tmp_path, "tls", "tcp://10.0.0.9:2376", tls=True)
    add_context(tmp_path, "ssh", "ssh://me@devbox")
    cases = {
        "unknown context": {"DOCKER_CONTEXT": "no-such-context"},
        "tls context": {"DOCKER_CONTEXT": "tls"},
        "ssh context": {"DOCKER_CONTEXT": "ssh"},
        "ssh host": {"DOCKER_HOST": "ssh://me@devbox"},
        "tls host": {"DOCKER_HOST": "tcp://10.0.0.9:2376", "DOCKER_TLS_VERIFY": "1"},
        "npipe": {"DOCKER_HOST": "npipe:////./pipe/docker_engine"},
    }
    for case, env in cases.items():
        endpoint = resolve_endpoint({**env, "DOCKER_CONFIG": str(tmp_path)})
        assert not endpoint.reachable, case
        assert endpoint.why_not, case
        assert isinstance(engine_for(FakeRunner(), {**env, "DOCKER_CONFIG": str(tmp_path)}),
                          CliEngine), case  # fmt: skip
    (tmp_path / "config.json").write_text("{not json")
    assert not resolve_endpoint({"DOCKER_CONFIG": str(tmp_path)}).reachable


# --- reads over a scripted transport ---------------------------------------------------------


class Script:
    """Answers GET paths by prefix; records every path asked."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, path: str) -> tuple[int, bytes]:
        self.asked.append(path)
        for prefix, answer in self.answers.items():
            if path.startswith(prefix):
                if isinstance(answer, int):
                    return answer, b'{"message": "no such thing"}'
                if isinstance(answer, bytes):
                    return 200, answer
                return 200, json.dumps(answer).encode()
        raise ConnectionRefusedError(111, "Connection refused")


def api(answers: dict[str, object]) -> tuple[ApiEngine, Script]:
    script = Script(answers)
    endpoint = Endpoint(DEFAULT_HOST, "default", unix_path="/var/run/docker.sock")
    return ApiEngine(endpoint, transport=script), script


def test_version_and_facts() -> None:
    engine, script = api(
        {
            "/version": {"Version": "20.10.24", "ApiVersion": "1.41"},
            "/info": {"MemTotal": 8589934592, "SystemTime": "2026-11-29T22:00:00Z"},
        }
    )
    assert (engine.version(), engine.api_version()) == ("20.10.24", "1.41")
    assert engine.facts().memory == "8589934592"
    assert script.asked == ["/version", "/info"]  # the version is asked once


def test_a_compose_projects_containers_in_one_request() -> None:
    rows = [
        {"Id": "a1", "Names": ["/s-postgres-1"], "State": "running",
         "Status": "Up 4 seconds (healthy)", "Labels": {"com.docker.compose.service": "postgres"},
         "Ports": []},
        {"Id": "b2", "Names": ["/s-hatchet-lite-1"], "State": "running",
         "Status": "Up 1 second (health: starting)",
         "Labels": {"com.docker.compose.service": "hatchet-lite"},
         "Ports": [{"PrivatePort": 8888, "PublicPort": 41000}, {"PrivatePort": 8888,
                   "PublicPort": 41000, "IP": "::"}, {"PrivatePort": 8733}]},
        {"Id": "c3", "Names": ["/s-rabbitmq-1"], "State": "exited",
         "Status": "Exited (137) 2 seconds ago",
         "Labels": {"com.docker.compose.service": "rabbitmq"}, "Ports": []},
    ]  # fmt: skip
    engine, script = api({"/containers/json": rows})
    assert project_containers(engine, "s") == [
        Container("s-postgres-1", "postgres", "running", "healthy", 0, (), "a1"),
        Container("s-hatchet-lite-1", "hatchet-lite", "running", "starting", 0, (41000,), "b2"),
        Container("s-rabbitmq-1", "rabbitmq", "exited", "", 137, (), "c3"),
    ]
    (asked,) = script.asked
    assert "all=1" in asked
    assert "com.docker.compose.project%3Ds" in asked and "oneoff%3DFalse" in asked


def test_one_container_by_name_and_a_missing_one() -> None:
    state = {"Status": "running", "ExitCode": 0, "StartedAt": "2026-11-29T22:00:01.5Z",
             "Health": {"Status": "healthy"}}  # fmt: skip
    engine, _ = api({"/containers/s-postgres-1/json": {"State": state},
                     "/containers/gone/json": 404})  # fmt: skip
    found = engine.container("s-postgres-1")
    assert found is not None
    assert (found.state, found.health, found.started_at) == (
        "running", "healthy", "2026-11-29T22:00:01.5Z")  # fmt: skip
    assert engine.container("gone") is None


def test_images_and_the_objects_of_stacks(tmp_path: Path) -> None:
    labels = {"io.hatchet-local.stack": "s", "io.hatchet-local.expires": "2026-01-01T00:00:00"}
    engine, script = api({
        "/images/postgres%3A15.6/json": {"Id": "sha256:1"}, "/images/": 404,
        "/containers/json": [{"Names": ["/s-postgres-1"], "State": "running", "Labels": labels}],
        "/volumes": {"Volumes": [{"Name": "s_postgres_data", "Labels": labels}]},
        "/networks": [{"Name": "s_default", "Labels": {"io.hatchet-local.stack": "s"}}],
    })  # fmt: skip
    assert engine.image_present("postgres:15.6") is True
    assert engine.image_present("rabbitmq:3") is False
    assert engine.stack_objects(tmp_path) == [
        DockerObject("container", "s-postgres-1", "s", "running", "2026-01-01T00:00:00"),
        DockerObject("volume", "s_postgres_data", "s", "", "2026-01-01T00:00:00"),
        DockerObject("network", "s_default", "s", "", None),
    ]
    assert f"io.hatchet-local.state%3D{str(tmp_path).replace('/', '%2F')}" in script.asked[-1]


def test_no_engine_is_one_message_before_and_during_a_command() -> None:
    engine, _ = api({})  # every request refused
    with pytest.raises(DockerUnavailable) as first:
        engine.version()
    assert first.value.message.startswith("no Docker engine answers (")
    assert "start Docker" in first.value.message
    with pytest.raises(DockerUnavailable) as later:
        engine.container("s-postgres-1")
    assert "during looking at s-postgres-1" in later.value.message
    assert "run the same command again" in later.value.message


def test_an_engine_error_names_the_request() -> None:
    engine, _ = api({"/containers/json": 500})
    with pytest.raises(CommandFailed) as info:
        engine.containers(["a=b"])
    assert info.value.message == "the Docker engine refused GET /containers/json (HTTP 500)"


def test_status_texts() -> None:
    assert [health_of(text) for text in ("Up 3 seconds (healthy)", "Up 1 second (unhealthy)",
            "Up 2 seconds (health: starting)", "Up 5 minutes", "Exited (0) 1 second ago")] == [
        "healthy", "unhealthy", "starting", "", ""]  # fmt: skip
    assert [exit_code_of(text) for text in ("Exited (137) 2 seconds ago", "Up 1 second")] == [
        137, 0]  # fmt: skip
    ports = "0.0.0.0:8000-8002->8000-8002/tcp, :::8000-8002->8000-8002/tcp"
    assert expand_ports(f"{ports}, 127.0.0.1:5432->5432/tcp, 8733/tcp") == (8000, 8001, 8002, 5432)


# --- a real unix socket ------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Docker engine

    def do_GET(self) -> None:
        if self.path.startswith("/containers/json"):  # chunked, as Go sends a long body
            rows = [{"Names": [f"/c{n}"], "State": "running", "Status": "Up", "Labels": {}}
                    for n in range(300)]  # fmt: skip
            body = json.dumps(rows).encode()
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 4000):
                part = body[start : start + 4000]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps({"Version": "27.3.1", "ApiVersion": "1.47", "Path": self.path}).encode()
        self.send_response(200 if self.path.startswith("/version") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/info"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[object, tuple[str, int]]:  # type: ignore[override]
        request, _ = super().get_request()
        return request, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port)


@pytest.fixture
def unix_engine(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "docker.sock"
    server = _UnixServer(str(path), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()


def test_reads_over_a_real_unix_socket_on_one_connection(unix_engine: Path) -> None:
    engine = ApiEngine(resolve_endpoint({"DOCKER_HOST": f"unix://{unix_engine}"}))
    try:
        assert engine.api_version() == "1.47"
        assert engine.container("nothing") is None  # 404, same kept-alive connection
        assert len(engine.containers([])) == 300  # a chunked body
        engine.facts()  # the engine closes this connection after answering
        assert engine.container("still") is None  # a new one is opened
        assert engine.where() == f"unix://{unix_engine}"
    finally:
        engine.close()


# --- a plain GET of the stack's own API --------------------------------------------------------


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization")})
        data = body.encode()
        self.send_response(200 if self.headers.get("Authorization") else 401)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_plain_get_carries_its_headers_and_reads_the_answer() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ApiHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/tenants/x?a=1"
        response = plain_get(url, {"Authorization": "Bearer t"}, timeout=5)
        assert response.status_code == 200
        assert response.json() == {"path": "/api/v1/tenants/x?a=1", "auth": "Bearer t"}
        assert plain_get(url, timeout=5).status_code == 401
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(OSError) as refused:
        plain_get(url, timeout=5)
    assert is_transport_error(refused.value)
    assert not is_transport_error(ValueError("a bug, not the network"))


def test_logs_over_the_api_without_frame_headers() -> None:
    frames = b"".join(
        bytes([stream, 0, 0, 0]) + len(text).to_bytes(4, "big") + text
        for stream, text in ((1, b"starting\n"), (2, b"warn\n"), (1, b"Server startup complete\n"))
    )
    asked: list[str] = []

    def transport(path: str) -> tuple[int, bytes]:
        asked.append(path)
        return 200, frames

    endpoint = Endpoint(DEFAULT_HOST, "default", unix_path="/var/run/docker.sock")
    engine = ApiEngine(endpoint, transport=transport)
    assert engine.logs("r-1", "2026-11-29T22:53:01.5Z") == (
        "starting\nwarn\nServer startup complete\n"
    )
    assert "since=1795992781.500000000" in asked[-1]  # 2026-11-29 22:53:01.5 UTC


def one_file_tar(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        member = tarfile.TarInfo(name)
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_a_file_in_a_container_is_one_archive_request() -> None:
    engine, script = api({
        "/containers/s-postgres-1/archive": one_file_tar("postmaster.pid", b"1\nready\n"),
        "/containers/gone/archive": 404,
    })  # fmt: skip
    assert engine.file("s-postgres-1", "/var/lib/postgresql/data/postmaster.pid") == b"1\nready\n"
    assert script.asked[0] == (
        "/containers/s-postgres-1/archive?path=%2Fvar%2Flib%2Fpostgresql%2Fdata%2Fpostmaster.pid"
    )
    assert engine.file("gone", "/etc/hostname") is None


def folder_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        member = tarfile.TarInfo("data")
        member.type = tarfile.DIRTYPE
        tar.addfile(member)
    return out.getvalue()


@pytest.mark.parametrize("archive", [b"", b"not a tar at all" * 40, folder_tar()])
def test_an_archive_without_a_file_reads_as_none(archive: bytes) -> None:
    engine, _ = api({"/containers/s-postgres-1/archive": archive})
    assert engine.file("s-postgres-1", "/var/lib/postgresql/data/postmaster.pid") is None
