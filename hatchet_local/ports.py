"""Host ports: free ones for new stacks, kept ones for old stacks, and who holds a port.

Every stack's ports are recorded in its stack.json; together those records are the port
registry, read and written under one lock so two stacks never pick the same port.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path

from hatchet_local.config import Config
from hatchet_local.docker import container_publishing, published_ports
from hatchet_local.docker_cli import CliEngine
from hatchet_local.errors import HatchetLocalError, PortInUse
from hatchet_local.runner import Runner
from hatchet_local.state import StackRecord, all_records

PORT_KEYS = ("dashboard", "grpc")
PORT_FLAGS = {"dashboard": "--dashboard-port", "grpc": "--grpc-port"}
_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


def pick_free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether Docker could publish `port` on `host` as far as this host's sockets go: taken
    when a socket listens on it (or is bound to it), free when only connections that have
    ended linger (TIME_WAIT after a client was connected to a stack just taken down).

    SO_REUSEADDR makes the difference, and is what Docker's own listener (Go's net.Listen)
    sets; without it the kernel refuses a port for up to a minute after every `down`."""
    with socket.socket() as sock:
        if os.name == "posix":  # elsewhere (Windows) the option lets a port be stolen
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen()
        except OSError:
            return False
    return True


def ports_taken(ports: Iterable[int], runner: Runner, host: str = "127.0.0.1") -> dict[int, str]:
    """Those of `ports` that are taken, each with who holds it in words that say how to free
    it (see `port_holder`). A port is taken when a socket listens on it or a running container
    publishes it (Docker can publish through the firewall alone, with nothing listening);
    connections that linger after their end do not take it."""
    wanted = list(ports)
    published = published_ports(CliEngine(runner)) if wanted else {}
    taken = {}
    for port in wanted:
        if port in published:
            taken[port] = _container_holds(published[port])
        elif not port_is_free(port, host):
            taken[port] = port_holder(port, runner)
    return taken


def resolve_ports(config: Config, record: StackRecord, root: Path) -> dict[str, int]:
    """Configured ports win; otherwise the stack keeps the ports it had (tokens embed the
    server URL); a new stack gets free ones no other stack has recorded. A configured port
    that another stack has recorded is refused, naming that stack."""
    others = [other for other in all_records(root) if other.name != record.name]
    owner = {port: other for other in others for port in other.ports.values()}
    ports: dict[str, int] = {}
    for key in PORT_KEYS:
        wanted = getattr(config.ports, key)
        if wanted and wanted in owner:
            raise PortInUse(
                f"{PORT_FLAGS[key]} {wanted}: port {wanted} belongs to "
                f"{describe_stack(owner[wanted])}"
            )
        port = wanted or record.ports.get(key) or pick_free_port(set(owner) | set(ports.values()))
        ports[key] = port
    return ports


def describe_stack(record: StackRecord) -> str:
    return (
        f"hatchet-local stack {record.name} (from {record.directory}); free it with "
        f"`hatchet-local destroy --stack {record.name}` or choose another port"
    )


def port_holder(port: int, runner: Runner) -> str:
    """Who listens on `port`, in words that say how to free it."""
    container = container_publishing(CliEngine(runner), port)
    if container:
        return _container_holds(container)
    process = _listening_process(port, runner)
    if process:
        return f"{process} listens on it; stop it"
    return (
        f"a program listens on it that this user cannot see (`sudo ss -ltnp 'sport = :{port}'` "
        f"names it); stop it"
    )


def _container_holds(container: str) -> str:
    return f"container {container} publishes it; stop it with `docker stop {container}`"


def _listening_process(port: int, runner: Runner) -> str | None:
    """`pid N (command)` of the process listening on port: /proc on Linux, lsof elsewhere."""
    if Path("/proc/net/tcp").exists():
        inodes = _listening_inodes(port)
        return _process_with_socket(inodes) if inodes else None
    try:
        result = runner.run(["lsof", "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-Fpc"], timeout=30)
    except HatchetLocalError:
        return None
    fields = {line[0]: line[1:] for line in result.stdout.splitlines() if line}
    return f"pid {fields['p']} ({fields.get('c', '?')})" if "p" in fields else None


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == _LISTEN
                and int(fields[1].split(":")[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


def _process_with_socket(inodes: set[str]) -> str | None:
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if str(fd.readlink()) in targets:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    return f"pid {proc.name} ({cmdline.strip()[:80]})"
        except OSError:
            continue  # gone, or not ours to read
    return None
