"""Soak: one stack taken up and down, then reset, many times, with a real hatchet-sdk worker
connected through every cycle; nothing may grow, and every `up` must come back.

The worker stays connected while the stack goes down, so the engine's port is left with
connections in TIME_WAIT when the next `up` starts (issue #16: `up` then refused the stack's
own port for up to a minute). After each `up` and `reset` a task runs through it: the worker
reconnected and the stack is usable. A worker is started anew only when it could not go on
(a `reset` that hands out a new token); how often is reported.

Counts (this stack's containers, volumes and networks and the host's totals; processes, the
docker/compose ones and any that name this stack; listening TCP ports) are taken before the
stack exists and after it is removed, and this stack's own objects at every `up`. The number
of cycles comes from HATCHET_LOCAL_SOAK_CYCLES="UP_DOWN,RESETS" (issue #7's full soak:
"30,10"); the default keeps CI short. With HATCHET_LOCAL_RELIABILITY_OUT set, the measured
counts are written there as JSON (bench/reliability.py reads them).

The Docker daemon is shared with other stacks: host-wide totals are reported, and what grew
is attributed by this stack's labels, Compose project, object names, the anonymous volumes
its containers mounted, and its directories and ports in process command lines.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.hostwatch import (
    KINDS,
    Owner,
    children_of,
    listening_sockets,
    mounted_volumes,
    snapshot,
    socket_holders,
)
from tests.support.stacks import Project, SdkWorker, labelled, workflow_names

pytestmark = pytest.mark.e2e

DEFAULT_CYCLES = (3, 2)


# What the Python SDK's worker logs while its connection to the engine is broken.
TROUBLE = ("connection interrupted", "failed to send heartbeat", "failed heartbeat")


def logged_at(line: str) -> float | None:
    """When an SDK log line was written, in seconds since the epoch (its stamp is local time:
    `[INFO] ... -- 2026-11-30 17:31:13,179 - ...`)."""
    found = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})", line)
    if found is None:
        return None
    stamp = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").astimezone()
    return stamp.timestamp() + int(found.group(2)) / 1000


def soak_cycles() -> tuple[int, int]:
    text = os.environ.get("HATCHET_LOCAL_SOAK_CYCLES", "")
    if not text:
        return DEFAULT_CYCLES
    try:
        up_down, resets = (int(part) for part in text.split(","))
    except ValueError:
        pytest.fail(f"HATCHET_LOCAL_SOAK_CYCLES={text!r}: expected UP_DOWN,RESETS like 30,10")
    if up_down < 1 or resets < 0:
        pytest.fail(f"HATCHET_LOCAL_SOAK_CYCLES={text!r}: at least one up/down cycle")
    return up_down, resets


class Soak:
    """One stack driven through the cycles, checked at every step; `leaks` says what grew."""

    def __init__(self, tmp_path: Path) -> None:
        self.name = f"soak-{uuid.uuid4().hex[:6]}"
        self.project = Project(tmp_path / "app", tmp_path / "state", f"stack: {self.name}\n")
        self.owner = Owner(self.name, (str(self.project.dir), str(self.project.state)))
        self.leaks: list[str] = []
        self.per_cycle: list[dict[str, Any]] = []
        self.done = {"up_down": 0, "reset": 0}
        self.first_up: dict[str, int] | None = None
        self.seconds: dict[str, list[float]] = {}
        # Children this test process had before (another test's): not the soak's to count.
        self.children_before = set(children_of(os.getpid()))
        self.worker = SdkWorker(self.project.dir, f"soak{uuid.uuid4().hex[:6]}")
        self.tasks = 0
        self.worker_restarts: list[str] = []

    def hl(self, *args: str) -> str:
        """Run hatchet-local, keeping how long each command took."""
        started = time.monotonic()
        out = self.project.hl(*args).stdout
        self.seconds.setdefault(args[0], []).append(round(time.monotonic() - started, 1))
        return out

    def up_down(self, cycle: int) -> None:
        up = json.loads(self.hl("up", "--output", "json"))
        if cycle == 1:
            status = self.project.status()
            self.owner.ports = {int(status["dashboard_url"].rsplit(":", 1)[1]),
                                int(status["grpc_address"].rsplit(":", 1)[1])}  # fmt: skip
        elif not up["token_reused"]:
            self.leaks.append(f"up #{cycle}: the token was not reused after a plain down")
        self.check_up(f"up #{cycle}")
        self.through_the_worker(f"up #{cycle}")
        self.hl("down")  # with the worker connected
        down = self.check_idle(f"down #{cycle}")
        kept = down["stack_objects"]
        if kept["containers"] or kept["networks"] or down["stack_ports_listening"]:
            self.leaks.append(f"after down #{cycle}: {kept}, ports listening "
                              f"{down['stack_ports_listening']}")  # fmt: skip
        self.done["up_down"] = cycle

    def reset(self, cycle: int) -> None:
        token = self.project.env_file()["HATCHET_CLIENT_TOKEN"]
        self.hl("reset", "--yes")  # with the worker connected
        self.check_idle(f"reset #{cycle}", self.check_up(f"reset #{cycle}"))
        if self.project.env_file()["HATCHET_CLIENT_TOKEN"] != token and self.worker.alive():
            # A new token: the worker holds the old one, which the stack no longer accepts.
            self.worker_restarts.append(f"reset #{cycle}: new token")
            self.worker.start()
        self.through_the_worker(f"reset #{cycle}")
        self.done["reset"] = cycle

    def through_the_worker(self, label: str) -> None:
        """A task run through the kept worker: it reconnected by itself (or is started, the
        first time, or when it gave up), and the stack is usable."""
        if not self.worker.alive():
            if self.worker.starts:
                self.worker_restarts.append(f"{label}: the worker had ended")
            self.worker.start()
        else:
            self.wait_until_the_worker_settles()
        started = time.monotonic()
        message = f"cycle {self.tasks}"
        assert self.worker.run_task(message) == {"echo": message.upper(),
                                                 "task": self.worker.name}  # fmt: skip
        self.seconds.setdefault("task", []).append(round(time.monotonic() - started, 1))
        self.tasks += 1

    def wait_until_the_worker_settles(self, quiet: float = 8, timeout: float = 180) -> None:
        """The kept worker has had no trouble with its connection for `quiet` seconds, as its
        own log says. The Python SDK logs "connection interrupted, retrying" as it opens its
        action listener again, and ends the listener on every failed heartbeat
        (`hatchet_sdk/clients/dispatcher/action_listener.py`): after the engine came back, a
        task assigned to a stream that breaks a moment later is lost with it and only ends at
        its execution timeout. (The engine's `lastHeartbeatAt` cannot tell: the listener's
        stream refreshes it by itself.) A new attempt would come within 5 s of a failed one."""
        started = time.monotonic()
        while True:
            lines = self.worker.log.read_text(errors="replace").splitlines()
            trouble = [logged_at(line) for line in lines if any(word in line for word in TROUBLE)]
            last = next((t for t in reversed(trouble) if t is not None), None)
            if last is None or time.time() - last >= quiet:
                break
            assert time.monotonic() - started < timeout, "the kept worker never settled"
            time.sleep(0.5)
        self.seconds.setdefault("settle", []).append(round(time.monotonic() - started, 1))

    def check_up(self, label: str) -> dict[str, Any]:
        """At every `up`: the same objects as at the first, the stack's two ports held."""
        self.owner.mounted_volumes |= mounted_volumes(self.name)
        current = snapshot(self.owner)
        counts = current["stack_objects"]
        self.first_up = self.first_up or counts
        self.per_cycle.append({"after": label, "stack_objects": counts,
                               "processes": current["processes"],
                               "listening_sockets": current["listening_sockets"]})  # fmt: skip
        if counts != self.first_up:
            self.leaks.append(f"after {label}: stack objects {counts}, first up {self.first_up}")
        if current["stack_ports_listening"] != sorted(self.owner.ports):
            self.leaks.append(f"after {label}: ports listening "
                              f"{current['stack_ports_listening']}")  # fmt: skip
        return current

    def check_idle(self, label: str, current: dict[str, Any] | None = None) -> dict[str, Any]:
        """Between commands: no process naming the stack (but the engine's port proxies while
        it runs), no child of this test left running."""
        current = current or snapshot(self.owner)
        stray = [p for p in current["stack_processes"] if "docker-proxy" not in p]
        if stray:
            self.leaks.append(f"after {label}: processes left: {stray}")
        worker = f"{self.worker.pid} "
        new_children = set(children_of(os.getpid())) - self.children_before
        if children := sorted(c for c in new_children if not c.startswith(worker)):
            self.leaks.append(f"after {label}: child processes left: {children}")
        return current


def test_soak_nothing_grows(rig_images: dict[str, str], tmp_path: Path) -> None:
    up_downs, resets = soak_cycles()
    soak = Soak(tmp_path)
    started = time.monotonic()
    before = snapshot(soak.owner)
    report: dict[str, Any] = {"stack": soak.name,
                              "cycles_asked": {"up_down": up_downs, "reset": resets}}  # fmt: skip
    try:
        for cycle in range(1, up_downs + 1):
            soak.up_down(cycle)
        soak.hl("up")
        soak.check_up("up before the resets")
        soak.through_the_worker("up before the resets")
        for cycle in range(1, resets + 1):
            soak.reset(cycle)
        workflow_names(soak.project.env_file())  # still usable: the last token is accepted
        report["up_state"] = snapshot(soak.owner)
        soak.project.hl("down", "--volumes", "--yes")
    finally:
        soak.worker.stop()
        soak.project.hl("destroy", "--yes", ok=False)
        after = snapshot(soak.owner)
        soak.leaks += compare(before, after, soak.owner)
        report.update(worker={"tasks": soak.tasks, "starts": soak.worker.starts,
                              "restarts": soak.worker_restarts})  # fmt: skip
        report.update(cycles=soak.done, per_cycle=soak.per_cycle, command_seconds=soak.seconds,
                      before=before, after=after,
                      leaks=soak.leaks, seconds=round(time.monotonic() - started, 1))  # fmt: skip
        write_report(report)
    assert soak.leaks == []
    assert labelled(f"io.hatchet-local.stack={soak.name}") == {kind: [] for kind in KINDS}
    assert not (soak.project.state / "stacks" / soak.name).exists()


def compare(before: dict[str, Any], after: dict[str, Any], owner: Owner) -> list[str]:
    """What the stack left behind: its objects, processes naming it, ports it held, and new
    host-wide objects or listening sockets that can be traced back to it."""
    leaks = []
    if any(after["stack_objects"].values()) or any(after["stack_labelled"].values()):
        leaks.append(f"objects of the stack remain: {after['stack_objects']}")
    if after["stack_processes"]:
        leaks.append(f"processes naming the stack remain: {after['stack_processes']}")
    if after["stack_ports_listening"]:
        leaks.append(f"the stack's ports still listen: {after['stack_ports_listening']}")
    new_ports = set(after["listening_ports"]) - set(before["listening_ports"])
    if new_ports:
        inodes = [i for i, (_, port) in listening_sockets().items() if port in new_ports]
        ours = [h for h in socket_holders(inodes).values() if owner.owns_process(h)]
        if ours:
            leaks.append(f"new listening sockets held by the stack's processes: {ours}")
    return leaks


def write_report(report: dict[str, Any]) -> None:
    """The report as JSON at $HATCHET_LOCAL_RELIABILITY_OUT: host-wide objects that appeared
    during the run and cannot be traced to this stack (other stacks share the daemon) are
    counted, not listed."""
    out = os.environ.get("HATCHET_LOCAL_RELIABILITY_OUT")
    if not out:
        return
    before, after = report["before"], report["after"]
    new = set(after["host_object_ids"]) - set(before["host_object_ids"])
    gone = set(before["host_object_ids"]) - set(after["host_object_ids"])
    report["host_objects_other_stacks"] = {"appeared": len(new), "disappeared": len(gone)}
    for side in ("before", "after", "up_state"):
        if side in report:
            report[side].pop("host_object_ids", None)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
