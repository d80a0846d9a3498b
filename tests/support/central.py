"""A central Hatchet instance that hatchet-local did not start, for the e2e tests of issue #14.

It looks like a Helm deployment: separate `hatchet-engine`, `hatchet-api` and dashboard
containers built from the same Go module as the rig, a migrate job and a setup job (the
chart's `hatchet-admin quickstart`), started with plain `docker compose`
(`tests/central/compose.yaml`) behind nginx from Debian (TLS on a host name of its own, a
private CA made with openssl, HTTPS and gRPC on their own ports). The admin password is set
by the instance's own shared config (the chart's `hatchet-shared-config` secret: `ADMIN_*`
seed variables), never by hatchet-local.

Name resolution: the host name (`hatchet.central.test`, a reserved TLD) is added to
/etc/hosts for the session and removed afterwards (exactly the line added). Both clients
resolve through it with no override: hatchet-local's httpx (glibc's getaddrinfo) and the
SDK's gRPC (c-ares reads /etc/hosts too), so both verify the certificate against the real
host name, as they would against a DNS name. Run as root (CI is); otherwise the fixture
fails saying so.

The images are built once (recipe labels, like rig.py): the three extra binaries come from
the rig's module source with the rig's warm Go build cache, the dashboard is the rig's built
frontend, the proxy is nginx on the rig's Debian base.
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hatchet_local.defaults import HATCHET_VERSION
from tests.support.stacks import compose_command, free_port, labelled  # puts rig on sys.path

# isort: split
import rig  # tests/e2e/images/rig.py

CENTRAL = Path(__file__).resolve().parents[1] / "central"
HOST = "hatchet.central.test"
ADMIN_EMAIL = "ops@central.test"
HOSTS_FILE = Path("/etc/hosts")
BINARIES = ("hatchet-engine", "hatchet-api", "hatchet-staticfileserver")
VERSION = HATCHET_VERSION
IMAGES = {
    "engine": f"{rig.PREFIX}/hatchet-engine:{VERSION}",
    "api": f"{rig.PREFIX}/hatchet-api:{VERSION}",
    "frontend": f"{rig.PREFIX}/hatchet-frontend:{VERSION}",
    "proxy": f"{rig.PREFIX}/central-proxy:{rig.DEBIAN_SUITE}",
}
PORTS = ("https", "grpc", "locked", "sso", "limited", "other_host", "unknown_ca")


# --- images ----------------------------------------------------------------------------------


def build_binaries(src: Path) -> Path:
    """hatchet-engine, hatchet-api and the static file server from the rig's module source."""
    out = rig.CACHE / "central" / "bin" / VERSION
    go_version = rig.run("central-binaries", ["go", "env", "GOVERSION"]).strip()
    ldflags = f"-s -w -X main.Version={VERSION}"
    recipe = rig.digest([VERSION, go_version, ldflags, *BINARIES])
    stamp = out / ".recipe"
    if rig.stamp_matches(stamp, recipe) and all((out / b).is_file() for b in BINARIES):
        return out
    out.mkdir(parents=True, exist_ok=True)
    rig.say("central-binaries", f"go build {', '.join(BINARIES)}")
    rig.run(
        "central-binaries",
        ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", f"{out}/",
         *(f"./cmd/{b}" for b in BINARIES)],
        cwd=src, env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    stamp.write_text(recipe)
    return out


def _context(name: str, files: dict[str, Path]) -> Path:
    ctx = rig.CACHE / "central" / "context" / name
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    for target, source in files.items():
        if source.is_dir():
            shutil.copytree(source, ctx / target)
        else:
            shutil.copy2(source, ctx / target)
    return ctx


def build_images() -> dict[str, str]:
    """The instance's images, rebuilt only when their recipe changed; the rig's images
    (Postgres, hatchet-migrate, hatchet-admin, the runtime and Debian bases) must exist."""
    missing = rig.check()
    assert not missing, f"rig images missing: {missing}; run tests/e2e/images/rig.py build"
    src = rig.module_source()
    binaries = build_binaries(src)
    dist = rig.build_frontend(src)
    images = CENTRAL / "images"
    for key, binary in (("engine", "hatchet-engine"), ("api", "hatchet-api")):
        rig.docker_build(
            f"central-{key}", IMAGES[key], _context(key, {binary: binaries / binary}),
            parent=rig.RUNTIME_IMAGE, dockerfile=images / f"{binary}.Dockerfile",
        )  # fmt: skip
    frontend = _context(
        "frontend",
        {"hatchet-staticfileserver": binaries / "hatchet-staticfileserver", "dist": dist},
    )
    rig.docker_build(
        "central-frontend", IMAGES["frontend"], frontend, parent=rig.RUNTIME_IMAGE,
        dockerfile=images / "hatchet-frontend.Dockerfile",
    )  # fmt: skip
    rig.docker_build("central-proxy", IMAGES["proxy"], images / "proxy", parent=rig.BASE_IMAGE)
    return {
        **IMAGES,
        "postgres": rig.IMAGES["postgres"],
        "migrate": rig.IMAGES["hatchet-migrate"],
        "admin": rig.IMAGES["hatchet-admin"],
    }


# --- a private CA --------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"openssl {' '.join(args[:2])}: {proc.stderr}"


def _ca(directory: Path, name: str, subject: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "30",
             "-subj", f"/CN={subject}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)  # fmt: skip


def _leaf(directory: Path, name: str, host: str, ca: str) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={host}",
             cwd=directory)  # fmt: skip
    (directory / f"{name}.ext").write_text(
        f"subjectAltName=DNS:{host}\nextendedKeyUsage=serverAuth\n"
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
    )
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "30", "-extfile", f"{name}.ext",
             cwd=directory)  # fmt: skip


def make_certs(directory: Path) -> Path:
    """ca.pem (the instance's private CA), server.pem for HOST, other-host.pem (same CA,
    another name) and unknown-ca-server.pem (HOST, signed by a CA nobody is given)."""
    directory.mkdir(parents=True, exist_ok=True)
    _ca(directory, "ca", "hatchet-local central test CA")
    _ca(directory, "unknown-ca", "a CA no client trusts")
    _leaf(directory, "server", HOST, "ca")
    _leaf(directory, "other-host", "other.central.test", "ca")
    _leaf(directory, "unknown-ca-server", HOST, "unknown-ca")
    for path in directory.iterdir():  # nginx runs as another user inside its container
        path.chmod(0o644)
    return directory / "ca.pem"


# --- name resolution -----------------------------------------------------------------------


def add_host_entry(marker: str) -> str:
    """`127.0.0.1 HOST` in /etc/hosts, tagged with `marker`; returns the line added."""
    line = f"127.0.0.1 {HOST} # hatchet-local e2e {marker}\n"
    if not os.access(HOSTS_FILE, os.W_OK):
        raise AssertionError(
            f"the central-instance tests need to add `{line.strip()}` to {HOSTS_FILE}: run them "
            f"as root (CI does), or add the line yourself"
        )
    with HOSTS_FILE.open("a") as hosts:
        hosts.write(line)
    return line


def remove_host_entry(line: str) -> None:
    """Remove exactly the line added (other lines, and other runs' lines, stay)."""
    text = HOSTS_FILE.read_text()
    if line in text:
        HOSTS_FILE.write_text(text.replace(line, "", 1))


# --- the instance --------------------------------------------------------------------------


@dataclass
class Central:
    """One running instance: where it answers, its CA, its admin login."""

    root: Path
    images: dict[str, str]
    project: str = field(default_factory=lambda: f"hl-central-{uuid.uuid4().hex[:8]}")
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in PORTS})
    admin_password: str = field(default_factory=lambda: "Ce1" + secrets.token_urlsafe(18))
    hosts_line: str = ""

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.ports['https']}"

    def url_of(self, port: str, host: str = HOST) -> str:
        return f"https://{host}:{self.ports[port]}"

    @property
    def grpc(self) -> str:
        return f"{HOST}:{self.ports['grpc']}"

    @property
    def ca(self) -> Path:
        return self.root / "certs" / "ca.pem"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HATCHET_", "CENTRAL_"))}
        env.update(
            CENTRAL_PROJECT=self.project,
            CENTRAL_SHARED_CONFIG=str(self.root / "shared-config.env"),
            CENTRAL_CERTS=str(self.root / "certs"),
            CENTRAL_POSTGRES_IMAGE=self.images["postgres"],
            CENTRAL_MIGRATE_IMAGE=self.images["migrate"],
            CENTRAL_ADMIN_IMAGE=self.images["admin"],
            CENTRAL_ENGINE_IMAGE=self.images["engine"],
            CENTRAL_API_IMAGE=self.images["api"],
            CENTRAL_FRONTEND_IMAGE=self.images["frontend"],
            CENTRAL_PROXY_IMAGE=self.images["proxy"],
            **{f"CENTRAL_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
        )
        return env

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*compose_command(), "-f", str(CENTRAL / "compose.yaml"), *args],
            env=self._env(), capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if check:
            assert proc.returncode == 0, f"compose {' '.join(args)}:\n{proc.stderr[-4000:]}"
        return proc

    def write_shared_config(self) -> None:
        """The instance's own settings, as the chart's shared-config secret holds them."""
        pg_password = secrets.token_urlsafe(18)
        lines = {
            "POSTGRES_PASSWORD": pg_password,
            "DATABASE_URL": f"postgresql://hatchet:{pg_password}@postgres:5432/hatchet?sslmode=disable",
            "SERVER_MSGQUEUE_KIND": "postgres",
            "SERVER_URL": self.url,
            "SERVER_AUTH_COOKIE_DOMAIN": HOST,
            "SERVER_AUTH_COOKIE_INSECURE": "f",
            "SERVER_AUTH_SET_EMAIL_VERIFIED": "t",
            "SERVER_GRPC_BIND_ADDRESS": "0.0.0.0",
            "SERVER_GRPC_PORT": "7070",
            "SERVER_GRPC_INSECURE": "t",  # TLS ends at the proxy, as at an ingress
            "SERVER_GRPC_BROADCAST_ADDRESS": self.grpc,
            "SERVER_INTERNAL_CLIENT_INTERNAL_GRPC_BROADCAST_ADDRESS": "hatchet-engine:7070",
            "SERVER_SECURITY_CHECK_ENABLED": "f",
            "SERVER_LOGGER_LEVEL": "warn",
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": self.admin_password,
            "ADMIN_NAME": "Ops",
        }
        path = self.root / "shared-config.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        path.chmod(0o600)

    def start(self) -> Central:
        self.root.mkdir(parents=True, exist_ok=True)
        make_certs(self.root / "certs")
        self.write_shared_config()
        self.hosts_line = add_host_entry(self.project)
        up = self.compose("up", "--detach", "--wait", "--wait-timeout", "600", check=False)
        assert up.returncode == 0, f"central up failed:\n{up.stderr[-3000:]}\n{self.logs()}"
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(verify=ssl.create_default_context(cafile=self.ca)) as http:
            while True:
                try:
                    if http.get(f"{self.url}/api/ready", timeout=5).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{self.url} not ready\n{self.logs()}"
                time.sleep(1)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "40", check=False).stdout[-6000:]

    def stop_proxy(self) -> None:
        self.compose("stop", "proxy")

    def start_proxy(self) -> None:
        self.compose("start", "proxy")
        self.wait_ready()

    def destroy(self) -> None:
        try:
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)
        finally:
            if self.hosts_line:
                remove_host_entry(self.hosts_line)
        left = labelled(f"com.docker.compose.project={self.project}")
        assert left == {"containers": [], "volumes": [], "networks": []}, left
