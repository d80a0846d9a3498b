"""Host ports: free ones for new stacks, kept ones for old stacks, and who holds a port."""

from __future__ import annotations

import socket
from pathlib import Path

from hatchet_local.config import Config
from hatchet_local.state import StackRecord, all_records


def pick_free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def resolve_ports(config: Config, record: StackRecord, root: Path) -> dict[str, int]:
    """Configured ports win; otherwise the stack keeps the ports it had (tokens embed the
    server URL); a new stack gets free ones no other stack has recorded."""
    taken = {
        port for other in all_records(root) if other.name != record.name
        for port in other.ports.values()
    }  # fmt: skip
    ports: dict[str, int] = {}
    for key in ("dashboard", "grpc"):
        wanted = getattr(config.ports, key)
        port = wanted or record.ports.get(key) or pick_free_port(taken | set(ports.values()))
        ports[key] = port
    return ports
