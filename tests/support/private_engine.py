"""A Docker engine of the test's own, to restart at will: the machine's engine is shared (with
other test runs, other people's stacks) and must never be restarted.

It runs in a network namespace of its own (`ip netns`), so its bridges, firewall rules and
published ports never meet the shared engine's; its data root, exec root, pid file and socket
live in one temporary directory. Commands that talk to its stacks' ports (hatchet-local's
readiness checks, SDK workers) run in that namespace too (`prefix`); docker and compose reach
it through DOCKER_HOST. The rig's images are copied in with `docker save | docker load`.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType


class PrivateEngine:
    def __init__(self, images: list[str]) -> None:
        self.images = images
        self.root = Path(tempfile.mkdtemp(prefix="hl-dr-", dir="/tmp"))  # short: socket paths
        self.netns = f"hl-dr-{uuid.uuid4().hex[:6]}"
        self.socket = self.root / "docker.sock"
        self.log = self.root / "dockerd.log"
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def prefix(self) -> tuple[str, ...]:
        """Run a command in the engine's network namespace (its published ports are there)."""
        return ("nsenter", f"--net=/run/netns/{self.netns}")

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "-H", self.docker_host, *args], capture_output=True, text=True,
            timeout=600, check=check,
        )  # fmt: skip

    def __enter__(self) -> PrivateEngine:
        setup = [
            ["ip", "netns", "add", self.netns],
            ["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"],
        ]
        for argv in setup:
            run = subprocess.run(argv, capture_output=True, text=True, check=False)
            if run.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)}: {run.stderr.strip()}")
        self.start()
        self._load_images()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if self.running():
                for container in self.docker("ps", "-aq").stdout.split():
                    self.docker("rm", "--force", "--volumes", container, check=False)
                self.stop()
        finally:
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True, check=False)
            shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        """Start the engine and wait until it answers (it restarts the containers whose
        restart policy says so, as any engine does when it comes back)."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, "dockerd", "--data-root", str(self.root / "data"),
                 "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"),
                 "-H", self.docker_host, "--default-address-pool", "base=10.213.0.0/16,size=24"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while self.docker("version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the private dockerd did not answer:\n{self._log_tail()}")
            time.sleep(0.2)
        self.starts += 1

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the engine as `systemctl stop docker` does (SIGTERM; it stops its containers
        first), and wait until it is gone (`nsenter` execs dockerd: the child is dockerd)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the private dockerd did not stop:\n{self._log_tail()}") from None
        self.proc = None

    def _load_images(self) -> None:
        save = subprocess.Popen(["docker", "save", *self.images], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "-H", self.docker_host, "load"], stdin=save.stdout,
                              capture_output=True, text=True, check=False)  # fmt: skip
        if save.stdout is not None:
            save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"loading the rig's images failed: {load.stderr.strip()}")

    def _log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
