"""What a stack leaves on the host, read from Docker and /proc: objects, processes, ports,
and every command line seen while hatchet-local works (for the soak and security tests)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

KINDS = ("containers", "volumes", "networks")
_LIST = {
    "containers": ["docker", "ps", "--all", "--no-trunc"],
    "volumes": ["docker", "volume", "ls"],
    "networks": ["docker", "network", "ls", "--no-trunc"],
}


# --- /proc ---------------------------------------------------------------------------------


def parse_proc_net_tcp(text: str) -> dict[int, tuple[str, int]]:
    """Listening sockets of one /proc/net/tcp or tcp6 table: inode -> (address hex, port)."""
    listening = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":  # 0A: TCP_LISTEN
            continue
        address, port = fields[1].rsplit(":", 1)
        listening[int(fields[9])] = (address, int(port, 16))
    return listening


def listening_sockets() -> dict[int, tuple[str, int]]:
    """Every listening TCP socket of this network namespace (IPv4 and IPv6): inode ->
    (address hex, port)."""
    found: dict[int, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            found.update(parse_proc_net_tcp(Path(table).read_text()))
        except FileNotFoundError:
            continue
    return found


def listening_ports() -> set[int]:
    return {port for _, port in listening_sockets().values()}


def processes() -> dict[int, str]:
    """pid -> command line (arguments joined by spaces) of every process we can see."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:  # noqa: PTH123 (hot loop)
                raw = f.read()
        except OSError:
            continue  # gone meanwhile
        if raw:
            found[int(entry.name)] = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    return found


def socket_holders(inodes: Iterable[int]) -> dict[int, str]:
    """inode -> command line of a process holding that socket (when we may look)."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    holders: dict[int, str] = {}
    if not wanted:
        return holders
    for pid, cmdline in processes().items():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target in wanted:
                holders.setdefault(wanted[target], f"{pid} {cmdline}")
    return holders


def children_of(pid: int) -> list[str]:
    """The live child processes of `pid` (command lines)."""
    found = []
    for child, cmdline in processes().items():
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name (field 2) may hold spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(f"{child} {cmdline}")
    return found


class CmdlineWatch:
    """Reads every process's command line every `interval` seconds in a thread, keeping
    each distinct (pid, command line) seen, while the `with` block runs."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.seen: set[tuple[int, str]] = set()
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, daemon=True)

    def _scan(self) -> None:
        while not self._stop.is_set():
            self.seen.update(processes().items())
            self.passes += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> CmdlineWatch:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def command_lines(self) -> list[str]:
        return sorted({cmdline for _, cmdline in self.seen})


# --- Docker --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerObject:
    kind: str
    id: str
    name: str
    labels: dict[str, str]


def docker_objects(*filters: str) -> list[DockerObject]:
    """Containers, volumes and networks on the engine, optionally filtered (`label=k=v`)."""
    objects = []
    for kind, argv in _LIST.items():
        flags = [arg for f in filters for arg in ("--filter", f)]
        out = subprocess.run(
            [*argv, *flags, "--format", "{{json .}}"],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        for line in out.splitlines():
            row = json.loads(line)
            labels = dict(
                item.split("=", 1) for item in str(row.get("Labels", "")).split(",") if "=" in item
            )
            name = str(row.get("Names") or row.get("Name"))
            objects.append(DockerObject(kind, str(row.get("ID") or name), name, labels))
    return objects


def count(objects: Iterable[DockerObject]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for obj in objects:
        counts[obj.kind] += 1
    return counts


def mounted_volumes(stack: str) -> set[str]:
    """Names of the volumes the stack's containers mount (anonymous ones carry no label)."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.hatchet-local.stack={stack}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if not ids:
        return set()
    out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True)
    inspected = json.loads(out.stdout)
    return {m["Name"] for c in inspected for m in c.get("Mounts", []) if m.get("Type") == "volume"}


# --- one stack's footprint -----------------------------------------------------------------


@dataclass
class Owner:
    """How to tell what belongs to one stack: its name (labels, compose project, object name
    prefixes), the volumes its containers mounted (anonymous ones carry no label), its state
    and project directories, and its host ports once known."""

    stack: str
    paths: tuple[str, ...]
    ports: set[int] = field(default_factory=set)
    mounted_volumes: set[str] = field(default_factory=set)

    def owns_object(self, obj: DockerObject) -> bool:
        return (
            obj.labels.get("io.hatchet-local.stack") == self.stack
            or obj.labels.get("com.docker.compose.project") == self.stack
            or obj.name.startswith((f"{self.stack}-", f"{self.stack}_"))
            or obj.name in self.mounted_volumes
        )

    def owns_process(self, cmdline: str) -> bool:
        return (
            self.stack in cmdline
            or any(path in cmdline for path in self.paths)
            or ("docker-proxy" in cmdline and any(
                f"-host-port {port}" in cmdline for port in self.ports))
        )  # fmt: skip


def is_docker_process(cmdline: str) -> bool:
    """docker and compose CLIs, and the per-port proxies and shims the engine starts."""
    program = Path(cmdline.split(" ", 1)[0]).name
    return program in {"docker", "docker-compose", "docker-proxy", "containerd-shim-runc-v2"}


def snapshot(owner: Owner) -> dict[str, Any]:
    """Counts of everything that could leak: this stack's Docker objects and host-wide
    totals, processes (all, docker/compose ones, this stack's), listening TCP ports."""
    host = docker_objects()
    procs = processes()
    sockets = listening_sockets()
    return {
        "time": time.time(),
        "stack_objects": count(o for o in host if owner.owns_object(o)),
        "stack_labelled": count(
            o for o in host if o.labels.get("io.hatchet-local.stack") == owner.stack
        ),
        "host_objects": count(host),
        "host_object_ids": sorted(f"{o.kind}:{o.id}" for o in host),
        "processes": len(procs),
        "docker_processes": sum(1 for c in procs.values() if is_docker_process(c)),
        "stack_processes": sorted(f"{p} {c}" for p, c in procs.items() if owner.owns_process(c)),
        "listening_ports": sorted({port for _, port in sockets.values()}),
        "listening_sockets": len(sockets),
        "stack_ports_listening": sorted(
            {port for _, port in sockets.values() if port in owner.ports}
        ),
    }
