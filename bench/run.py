#!/usr/bin/env python3
"""How fast a Hatchet stack is usable, and what it costs: one run, same images, a table.

    python bench/run.py [--repeat 3] [--json bench/results.json] [--markdown docs/benchmarks.md]

Every figure is the median, min and max of --repeat runs. "Time to usable" runs from the
command's start until a task has run through the official hatchet-sdk with the token the
command produced. The images are the test rig's (tests/e2e/images/rig.py build), so every
scenario runs the same Postgres, RabbitMQ and Hatchet build. Timings are wall clock on a busy
machine: read ratios within one run, not absolute figures across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hatchet_local.defaults import DEFAULT_TENANT_ID  # noqa: E402
from tests.e2e.helpers import (  # noqa: E402
    HATCHET_LOCAL,
    RIG_IMAGES,
    Project,
    clean_env,
    compose_command,
    run_sdk_task,
)

Figures = dict[str, float]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def summary(samples: list[float]) -> Figures:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "n": len(samples)}  # fmt: skip


class Bench:
    def __init__(self, root: Path, repeat: int) -> None:
        self.root = root
        self.repeat = repeat
        self.results: dict[str, Figures] = {}
        self.extra: dict[str, dict[str, str]] = {}

    def record(self, name: str, samples: list[float]) -> None:
        self.results[name] = summary(samples)
        figures = self.results[name]
        print(f"{name:<48}{figures['median']:8.2f}s  (min {figures['min']:.2f}, "
              f"max {figures['max']:.2f})", flush=True)  # fmt: skip

    def project(self, extra: str = "") -> Project:
        name = uuid.uuid4().hex[:6]
        return Project(self.root / f"app-{name}", self.root / "state", f"stack: b-{name}\n{extra}")

    # --- time to usable --------------------------------------------------------------------

    def hatchet_local_up(self, label: str, *flags: str) -> None:
        samples, phases = [], []
        for _ in range(self.repeat):
            project = self.project()
            try:
                started = time.perf_counter()
                up = project.hl("up", "--timings", *flags)
                project.run_task(f"bench-{uuid.uuid4().hex[:6]}")
                samples.append(time.perf_counter() - started)
                phases.append(dict(re.findall(r"timing (.+?)\s+([\d.]+)s", up.stderr)))
            finally:
                project.hl("destroy", "--yes", ok=False)
        self.record(f"time to usable: {label}", samples)
        self.extra[f"phases of {label} (median)"] = {
            phase: f"{statistics.median(float(p[phase]) for p in phases if phase in p):.1f}s"
            for phase in phases[0]
        }

    def plain_compose(self) -> None:
        """The floor: hatchet-local's own rendered file, driven by `docker compose up --wait`
        and the token step from Hatchet's docs."""
        samples = []
        for _ in range(self.repeat):
            project = self.project()
            rendered = project.dir / "stack.yaml"
            project.hl("render", "--write", str(rendered))
            stack = re.search(r"^name: (\S+)", rendered.read_text(), re.M)
            assert stack is not None
            env_file = project.dir / "secrets.env"
            env_file.write_text("".join(
                f"{name}={secrets.token_hex(12)}A1\n" for name in
                ("HATCHET_POSTGRES_PASSWORD", "HATCHET_RABBITMQ_PASSWORD", "HATCHET_ADMIN_PASSWORD")
            ))  # fmt: skip
            compose = [*compose_command(), "-f", str(rendered), "--env-file", str(env_file)]
            try:
                started = time.perf_counter()
                subprocess.run([*compose, "up", "--detach", "--wait", "hatchet-lite"],
                               check=True, capture_output=True)  # fmt: skip
                token = subprocess.run(
                    [*compose, "exec", "-T", "hatchet-lite", "/hatchet-admin", "token", "create",
                     "--config", "/config", "--tenant-id", DEFAULT_TENANT_ID],
                    check=True, capture_output=True, text=True,
                ).stdout.strip().splitlines()[-1]  # fmt: skip
                env = clean_env(HATCHET_CLIENT_TOKEN=token, HATCHET_CLIENT_TLS_STRATEGY="none")
                run_sdk_task(project.dir, env, f"bench-{uuid.uuid4().hex[:6]}")
                samples.append(time.perf_counter() - started)
            finally:
                subprocess.run([*compose, "down", "--volumes"], capture_output=True, check=False)
        self.record("time to usable: plain docker compose up --wait + token", samples)

    # --- commands on a running stack -------------------------------------------------------

    def commands(self) -> None:
        project = self.project()
        try:
            project.hl("up")
            for label, args in (("warm up (running stack)", ["up"]), ("status", ["status"]),
                                ("env", ["env"]), ("--help", ["--help"])):  # fmt: skip
                self.record(label, [timed(lambda a=args: project.hl(*a)) for _ in range(5)])
            self.footprint(project)
            resets = [timed(lambda: project.hl("reset", "--yes")) for _ in range(self.repeat)]
            self.record("reset", resets)
            cycles = [timed(lambda: (project.hl("down", "--volumes", "--yes"), project.hl("up")))
                      for _ in range(self.repeat)]  # fmt: skip
            self.record("down --volumes + up", cycles)
        finally:
            project.hl("destroy", "--yes", ok=False)

    def footprint(self, project: Project) -> None:
        stack = project.status()["stack"]
        time.sleep(10)  # let start-up work settle
        stats = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        rows = [line.split("\t") for line in stats.splitlines()]
        memory = {name: usage.split(" / ")[0] for name, usage in rows if name.startswith(stack)}
        self.extra["idle memory (default profile)"] = memory
        sizes = {}
        for key in ("postgres", "rabbitmq", "hatchet-lite"):
            size = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}",
                                   RIG_IMAGES[key]], check=True, capture_output=True,
                                  text=True).stdout  # fmt: skip
            sizes[key] = f"{int(size) / 1e6:.0f} MB"
        self.extra["image sizes"] = sizes

    def scaling(self) -> None:
        for count in (1, 2, 4):
            projects = [self.project("profile: ci\n") for _ in range(count)]
            try:
                started = time.perf_counter()
                runs = [subprocess.Popen([str(HATCHET_LOCAL), "up"], cwd=p.dir, env=p.env(),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        for p in projects]  # fmt: skip
                assert all(run.wait() == 0 for run in runs)
                self.record(
                    f"{count} ci stack(s) in parallel, all up", [time.perf_counter() - started]
                )
            finally:
                for project in projects:
                    project.hl("destroy", "--yes", ok=False)


def markdown(bench: Bench, command: str) -> str:
    floor = bench.results.get("time to usable: plain docker compose up --wait + token")
    lines = [
        "# Benchmarks", "",
        f"Machine: {platform.machine()}, {_cpus()} cores, {platform.system()} "
        f"{platform.release()}; Docker {_docker_version()}. Produced by `{command}`.", "",
        "| scenario | median | min | max | ÷ plain compose |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for name, figures in bench.results.items():
        ratio = (f"{figures['median'] / floor['median']:.2f}"
                 if floor and name.startswith("time to usable") else "")  # fmt: skip
        lines.append(f"| {name} | {figures['median']:.2f} s | {figures['min']:.2f} s | "
                     f"{figures['max']:.2f} s | {ratio} |")  # fmt: skip
    for name, value in bench.extra.items():
        lines += ["", f"**{name}**: " + ", ".join(f"{k} {v}" for k, v in value.items())]
    return "\n".join(lines) + "\n"


def _cpus() -> int:
    return os.cpu_count() or 0


def _docker_version() -> str:
    return subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                          capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--markdown", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["default", "ci", "compose", "commands", "scaling"])  # fmt: skip
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hatchet-local-bench-"))
    bench = Bench(root, args.repeat)
    steps = {
        "default": lambda: bench.hatchet_local_up("hatchet-local up (default profile)"),
        "ci": lambda: bench.hatchet_local_up("hatchet-local up --profile ci", "--profile", "ci"),
        "compose": bench.plain_compose,
        "commands": bench.commands,
        "scaling": bench.scaling,
    }
    try:
        for name, step in steps.items():
            if name not in args.skip:
                step()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    command = "python bench/run.py" + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    text = markdown(bench, command)
    print("\n" + text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"results": bench.results, "extra": bench.extra}, indent=2))
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
