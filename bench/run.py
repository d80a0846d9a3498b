#!/usr/bin/env python3
"""How fast a Hatchet stack is usable, and what it costs: one run, same images, a table.

    python bench/run.py [--repeat 3] [--json bench/results.json] [--markdown docs/benchmarks.md]
                        [--skip default ci first compose compose-ci hatchet-cli commands
                                snapshots scaling]

Every figure is the median, min and max of --repeat runs. "Time to usable" runs from the
command's start until a task has run through the official hatchet-sdk with the token the
command produced. The images are the test rig's (tests/e2e/images/rig.py build), so every
scenario runs the same Postgres, RabbitMQ and Hatchet build; Hatchet's own CLI is built from
the same module version (`rig.py hatchet-cli`) and given the rig's images under the names it
asks for. Timings are wall clock on a busy
machine: read ratios within one run, not absolute figures across machines.
"""

from __future__ import annotations

import argparse
import compileall
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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hatchet_local.defaults import DEFAULT_TENANT_ID, HATCHET_VERSION  # noqa: E402
from tests.support.stacks import (  # noqa: E402
    E2E,
    HATCHET_LOCAL,
    RIG_IMAGES,
    Project,
    SdkWorker,
    clean_env,
    compose_command,
    free_port,
    probe,
)

Figures = dict[str, float]


def task_done(cwd: Path, env: dict[str, str] | None = None) -> float:
    """Start an SDK worker in `cwd`, run one task through it; the clock when its result
    arrived (the worker's own shutdown after that is no part of "usable")."""
    with SdkWorker(cwd, f"bench-{uuid.uuid4().hex[:6]}", env).start() as worker:
        worker.run_task("hello")
        return time.perf_counter()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Startup:
    """One start: the command's own time, the time until an SDK task had run, and phases."""

    command: float
    usable: float
    phases: dict[str, str] = field(default_factory=dict)


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

    def project(self, extra: str = "", state: Path | None = None) -> Project:
        name = uuid.uuid4().hex[:6]
        return Project(self.root / f"app-{name}", state or self.root / "state",
                       f"stack: b-{name}\n{extra}")  # fmt: skip

    def prime_bases(self) -> None:
        """The first stack of each kind keeps the base the later ones start from: made once
        here, before anything is timed, as on a machine that has run a stack before."""
        for extra in ("", "profile: ci\n"):
            project = self.project(extra)
            try:
                project.hl("up")
            finally:
                project.hl("destroy", "--yes", ok=False)

    # --- time to usable --------------------------------------------------------------------

    def startups(self, scenarios: dict[str, Callable[[int], Startup]]) -> None:
        """Every scenario once per round, `repeat` rounds: a drift in the machine's state
        (caches, other load) touches them all alike."""
        runs: dict[str, list[Startup]] = {label: [] for label in scenarios}
        for n in range(self.repeat):
            for label, once in scenarios.items():
                runs[label].append(once(n))
        for label, samples in runs.items():
            self.record(f"time to usable: {label}", [s.usable for s in samples])
            self.record(f"command alone: {label}", [s.command for s in samples])
            if samples[0].phases:
                self.extra[f"phases of {label} (median)"] = {
                    phase: f"{statistics.median(float(s.phases[phase]) for s in samples):.1f}s"
                    for phase in samples[0].phases
                    if all(phase in s.phases for s in samples)
                }

    def hatchet_local_up(
        self, label: str, *flags: str, first: bool = False, spare: bool = False
    ) -> Callable[[int], Startup]:
        """`up` of a new stack; with `first`, in a state directory of its own (no base: the
        first stack on a machine, which keeps one); with `spare`, a spare of its kind started
        (untimed) before by `hatchet-local spare` in another directory."""

        def once(n: int) -> Startup:
            state = self.root / f"state-first-{n}" if first else None
            project = self.project(state=state)
            try:
                if spare:
                    self.project(state=state).hl("spare", *flags)
                started = time.perf_counter()
                up = project.hl("up", "--timings", *flags)
                command = time.perf_counter() - started
                usable = task_done(project.dir) - started
                if n == 0:
                    self.footprint(label, project.status()["stack"])
                return Startup(
                    command, usable, dict(re.findall(r"timing (.+?)\s+([\d.]+)s", up.stderr))
                )
            finally:
                project.hl("destroy", "--yes", ok=False)

        return once

    def plain_compose(self, extra_config: str = "") -> Callable[[int], Startup]:
        """The floor: hatchet-local's own rendered file, driven by `docker compose up --wait`
        and the token step from Hatchet's docs."""

        def once(n: int) -> Startup:
            project = self.project(extra_config)
            rendered = project.dir / "stack.yaml"
            project.hl("render", "--write", str(rendered))
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
                command = time.perf_counter() - started
                env = clean_env(HATCHET_CLIENT_TOKEN=token, HATCHET_CLIENT_TLS_STRATEGY="none")
                return Startup(command, task_done(project.dir, env) - started)
            finally:
                subprocess.run([*compose, "down", "--volumes"], capture_output=True, check=False)

        return once

    def hatchet_cli(self, binary: Path) -> Callable[[int], Startup]:
        """Hatchet's own `hatchet server start` (Postgres + hatchet-lite, Postgres as the
        queue), built from the same module version, on the rig's images."""

        def once(n: int) -> Startup:
            project = f"hcli-{uuid.uuid4().hex[:6]}"
            home = self.root / project
            home.mkdir()
            try:
                started = time.perf_counter()
                subprocess.run(
                    [str(binary), "server", "start", "--pull-policy", "never",
                     "--tag", HATCHET_VERSION, "--project-name", project, "--profile", project,
                     "--dashboard-port", str(free_port()), "--grpc-port", str(free_port())],
                    check=True, capture_output=True, stdin=subprocess.DEVNULL,
                    env={**clean_env(), "HOME": str(home)},
                )  # fmt: skip
                profiles = yaml.safe_load((home / ".hatchet" / "profiles.yaml").read_text())
                command = time.perf_counter() - started
                token = profiles["profiles"][project]["token"]
                env = clean_env(HATCHET_CLIENT_TOKEN=token, HATCHET_CLIENT_TLS_STRATEGY="none")
                usable = task_done(home, env) - started
                if n == 0:
                    self.footprint(HATCHET_CLI, project)
                return Startup(command, usable)
            finally:
                remove_compose_project(project)

        return once

    # --- commands on a running stack -------------------------------------------------------

    def commands(self) -> None:
        project = self.project()
        try:
            project.hl("up")
            for label, args in (("warm up (running stack)", ["up"]), ("status", ["status"]),
                                ("env", ["env"]), ("--help", ["--help"]),
                                ("version", ["version"])):  # fmt: skip
                self.record(label, [timed(partial(project.hl, *args)) for _ in range(5)])
            sdk_alone = []
            for _ in range(self.repeat):
                started = time.perf_counter()
                sdk_alone.append(task_done(project.dir) - started)
            self.record(SDK_ALONE, sdk_alone)
            name = f"bench-{uuid.uuid4().hex[:6]}"
            with SdkWorker(project.dir, name).start():
                probe(project.dir, "run", name, "warm")
                resets, firsts = [], []
                for _ in range(self.repeat):
                    started = time.perf_counter()
                    project.hl("reset", "--yes")
                    resets.append(time.perf_counter() - started)
                    probe(project.dir, "run", name, "after")  # the same worker, still running
                    firsts.append(time.perf_counter() - started)
                self.record(RESET, resets)
                self.record(f"first task after: {RESET} (worker kept running)", firsts)
                restarts = []
                for _ in range(self.repeat):
                    started = time.perf_counter()
                    docker("kill", f"{project.status()['stack']}-hatchet-lite-1")
                    project.hl("up")
                    probe(project.dir, "run", name, "after")
                    restarts.append(time.perf_counter() - started)
                self.record("first task after: engine killed, then up (worker kept running)",
                            restarts)  # fmt: skip
            new_token = [timed(lambda: project.hl("reset", "--new-token", "--yes"))
                         for _ in range(self.repeat)]  # fmt: skip
            self.record(RESET_NEW, new_token)
            cycles = [timed(lambda: (project.hl("down", "--volumes", "--yes"), project.hl("up")))
                      for _ in range(self.repeat)]  # fmt: skip
            self.record("down --volumes + up", cycles)
        finally:
            project.hl("destroy", "--yes", ok=False)

    def snapshots(self, runs: int = 1000) -> None:
        """`snapshot save` of a stack with `runs` finished runs, and `up --snapshot` of it."""
        origin = self.project()
        made: list[Project] = []
        try:
            origin.hl("up")
            name = f"bench-{uuid.uuid4().hex[:6]}"
            with SdkWorker(origin.dir, name).start():
                probe(origin.dir, "many", name, str(runs), timeout=1800)
            saves = [timed(lambda: origin.hl("snapshot", "save", "bench", "--force"))
                     for _ in range(self.repeat)]  # fmt: skip
            self.record(f"snapshot save ({runs} finished runs)", saves)
            size = (self.root / "state" / "snapshots" / "bench.tar").stat().st_size
            self.extra["snapshot file"] = {"size": f"{size / 1e6:.1f} MB", "runs": str(runs)}
            commands, usable = [], []
            for _ in range(self.repeat):
                project = self.project()
                made.append(project)
                started = time.perf_counter()
                project.hl("up", "--snapshot", "bench")
                commands.append(time.perf_counter() - started)
                # Its worker starts here, as a developer's would.
                usable.append(task_done(project.dir) - started)
            self.record(f"command alone: {UP_SNAPSHOT}", commands)
            self.record(f"time to usable: {UP_SNAPSHOT}", usable)
        finally:
            for project in [origin, *made]:
                project.hl("destroy", "--yes", ok=False)

    def footprint(self, label: str, project: str) -> None:
        """Idle memory of a project's containers, and what its volumes hold after boot."""
        time.sleep(10)  # let start-up work settle
        memory = project_memory(project)
        self.extra[f"idle memory: {label}"] = {
            **{name: f"{mib:.0f} MiB" for name, mib in memory.items()},
            "total": f"{sum(memory.values()):.0f} MiB",
        }
        volumes = docker(
            "volume", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={project}"
        ).split()
        self.extra[f"volumes after boot: {label}"] = {
            volume.removeprefix(f"{project}_"): volume_size(volume) for volume in volumes
        }

    def image_sizes(self) -> None:
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
                time.sleep(10)
                total = sum(sum(project_memory(p.status()["stack"]).values()) for p in projects)
                self.extra.setdefault("idle memory of n ci stacks", {})[str(count)] = (
                    f"{total:.0f} MiB"
                )
            finally:
                for project in projects:
                    project.hl("destroy", "--yes", ok=False)


UP_DEFAULT = "hatchet-local up (default profile)"
UP_CI = "hatchet-local up --profile ci"
UP_FIRST = "hatchet-local up, first stack on the machine (no base)"
UP_SPARE = "hatchet-local up (default profile), a spare ready"
UP_SPARE_CI = "hatchet-local up --profile ci, a spare ready"
SDK_ALONE = "time to usable: a stack already running (the SDK's own part)"
UP_SNAPSHOT = "hatchet-local up --snapshot (1000 finished runs)"
RESET = "reset (keeps the token)"
RESET_NEW = "reset --new-token"
FLOOR = "plain docker compose up --wait + token"
FLOOR_CI = "plain docker compose up --wait + token, ci file"


def floor_of(name: str) -> str:
    """The plain-compose row a hatchet-local row compares with: the same stack file."""
    return FLOOR_CI if "--profile ci" in name or name.endswith(FLOOR_CI) else FLOOR


HATCHET_CLI = "hatchet server start (Hatchet's CLI)"
# The names under which Hatchet's CLI asks for its images, and the rig image standing in.
HATCHET_CLI_IMAGES = {
    "postgres:17": RIG_IMAGES["postgres"],
    f"ghcr.io/hatchet-dev/hatchet/hatchet-lite:{HATCHET_VERSION}": RIG_IMAGES["hatchet-lite"],
}


PROJECT_LABEL = "com.docker.compose.project"


def docker(*args: str, check: bool = True) -> str:
    """stdout of one docker CLI command."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout


def hatchet_cli_binary() -> Path:
    """Hatchet's CLI built from the pinned module version (cached by the rig)."""
    out = subprocess.run([sys.executable, str(E2E / "images" / "rig.py"), "hatchet-cli"],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return Path(out.strip().splitlines()[-1])


def tag_for_hatchet_cli() -> list[str]:
    """Tag the rig's images under the CLI's names; return the tags added (removed after).
    A name already taken by another image stops the run: the comparison would not be on
    the same images."""
    added = []
    for name, rig_image in HATCHET_CLI_IMAGES.items():
        have = docker("image", "inspect", "--format", "{{.Id}}", name, check=False).strip()
        want = docker("image", "inspect", "--format", "{{.Id}}", rig_image).strip()
        if have and have != want:
            raise SystemExit(f"{name} is another image here; remove it or --skip hatchet-cli")
        if not have:
            subprocess.run(["docker", "tag", rig_image, name], check=True)
            added.append(name)
    return added


def remove_compose_project(project: str) -> None:
    """What `hatchet server stop` leaves: stopped containers, volumes and the network."""
    label = f"label={PROJECT_LABEL}={project}"
    for kind, listing in (("container", ["ps", "-aq"]), ("volume", ["volume", "ls", "-q"])):
        ids = docker(*listing, "--filter", label, check=False).split()
        if ids:
            docker(kind, "rm", "-f", *ids, check=False)
    docker("network", "rm", f"{project}_default", check=False)


_UNITS = {"B": 1 / 2**20, "KiB": 1 / 1024, "kB": 1 / 1024, "MiB": 1.0, "MB": 1.0, "GiB": 1024.0}


def project_memory(project: str) -> dict[str, float]:
    """MiB in use per container of a compose project (`docker stats`, one sample)."""
    names = docker("ps", "-q", "--filter", f"label={PROJECT_LABEL}={project}").split()
    if not names:
        return {}
    stats = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *names)
    memory = {}
    for line in stats.splitlines():
        name, usage = line.split("\t")
        number = re.match(r"([\d.]+)\s*([A-Za-z]+)", usage.split(" / ")[0])
        if number:
            service = name.removeprefix(f"{project}-").removesuffix("-1")
            memory[service] = float(number[1]) * _UNITS.get(number[2], 0.0)
    return memory


def volume_size(volume: str) -> str:
    """Bytes a volume holds, read where a local engine keeps it (root on the rig)."""
    where = docker("volume", "inspect", "--format", "{{.Mountpoint}}", volume, check=False)
    du = subprocess.run(["du", "-sb", where.strip()], capture_output=True, text=True, check=False)
    if du.returncode != 0 or not du.stdout:
        return "n/a"
    size = int(du.stdout.split()[0])
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


NOTES = """\
How to read it: *time to usable* runs from the command's start until the result of a task run
through the official hatchet-sdk, with the token the command handed out, has arrived (a new
worker started for it; the worker's own shutdown afterwards is not counted); *command alone*
stops when the command returns with its token. *Plain compose* is the floor a wrapper can approach:
hatchet-local's own rendered file (the same stack file as the hatchet-local row beside it)
started with `docker compose up --detach --wait hatchet-lite`, then the token step from
Hatchet's docs (`hatchet-admin token create` in the engine). *Hatchet's CLI* is `hatchet
server start --pull-policy never` built from the same module version, on the rig's images
under the names it asks for; its stack is Postgres (queue too) and hatchet-lite with the
dashboard, closest to `--profile ci` plus the dashboard. It binds its ports on 0.0.0.0 and
keeps Hatchet's default admin password; its Postgres healthcheck runs every 10 s, which is
most of its extra start time. Every figure is the median (min, max) of the runs; start-up
scenarios run round-robin, one of each per round.

The hatchet-local rows start from a base (a stack of each kind ran once before anything was
timed, as on a machine that has run a stack before); *first stack on the machine* runs each time
in a state directory of its own, so it runs initdb and every migration and keeps the base. *A
spare ready* means `hatchet-local spare` started a spare of the stack's kind, in another
directory, before the clock started (its own start is not timed: it is paid ahead, while nobody
waits), and `up` took it over. *reset (keeps the token)* is the command alone; *first task
after* adds a task run by an SDK worker that was started before and kept running across it (no
restart). *engine killed, then up* is `docker kill` of the engine, `up`, and a task through that
same worker. The snapshot rows save a stack holding 1000 finished runs and start new stacks from
it; their *time to usable* includes starting a worker, as a developer would. Warm `up`,
`status`, `env`, `--help` and `version` are medians of 5. *A stack already running* is the
worker's start and the task alone, on a stack that was up before the clock started: the part of
every *time to usable* that no start of a stack can shorten."""


def machine() -> str:
    return (f"{platform.machine()}, {_cpus()} cores, {platform.system()} {platform.release()}; "
            f"Docker {_docker_version()}")  # fmt: skip


def markdown(bench: Bench, command: str, where: str) -> str:
    lines = [
        "# Benchmarks", "",
        f"Machine: {where}. Produced by `{command}`.", "", NOTES, "",
        "| scenario | median | min | max | ÷ plain compose | ÷ Hatchet CLI |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, figures in bench.results.items():
        kind, _, _ = name.partition(": ")
        bases = (floor_of(name), HATCHET_CLI)
        ratios = [ratio(bench, name, f"{kind}: {base}") for base in bases]
        lines.append(f"| {name} | {figures['median']:.2f} s | {figures['min']:.2f} s | "
                     f"{figures['max']:.2f} s | {ratios[0]} | {ratios[1]} |")  # fmt: skip
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {target} | {measured} | {met} |" for target, measured, met in targets(bench)]
    lines += ["", "## Footprint and phases"]
    for name, value in bench.extra.items():
        lines += ["", f"**{name}**: " + ", ".join(f"{k} {v}" for k, v in value.items())]
    return "\n".join(lines) + "\n"


# (target, row, limit): a median under `limit` seconds, or a ratio to the floor under `limit`.
TARGETS = [
    ("time to usable, default profile, a base present: at most 0.5x plain compose",
     f"time to usable: {UP_DEFAULT}", 0.5),
    ("time to usable, `--profile ci`, a base present: at most 0.5x its plain compose",
     f"time to usable: {UP_CI}", 0.5),
    ("the same, default profile, a spare ready (`hatchet-local spare`): at most 0.5x",
     f"time to usable: {UP_SPARE}", 0.5),
    ("the same, `--profile ci`, a spare ready: at most 0.5x its plain compose",
     f"time to usable: {UP_SPARE_CI}", 0.5),
    ("time to usable, the first stack (no base): within 10% of plain compose, as before",
     f"time to usable: {UP_FIRST}", 1.10),
    ("`reset` (token kept) at most 3 s", RESET, 3.0),
    ("`snapshot save` (1000 runs) at most 5 s", "snapshot save (1000 finished runs)", 5.0),
    ("`up --snapshot` (1000 runs) at most 5 s", f"command alone: {UP_SNAPSHOT}", 5.0),
    ("warm `up` at most 0.35 s", "warm up (running stack)", 0.35),
    ("`status` at most 0.25 s", "status", 0.25),
    ("`--help` at most 0.2 s", "--help", 0.2),
    ("`version` at most 0.2 s", "version", 0.2),
]  # fmt: skip


def targets(bench: Bench) -> list[tuple[str, str, str]]:
    rows = []
    for target, name, limit in TARGETS:
        if name not in bench.results:
            continue
        value = bench.results[name]["median"]
        if name.startswith("time to usable"):
            floor = bench.results.get(f"time to usable: {floor_of(name)}")
            if floor is None:
                continue
            value /= floor["median"]
            measured = f"{value:.2f} x floor"
        else:
            measured = f"{value:.2f} s"
        rows.append((target, measured, "yes" if value <= limit else "**no**"))
    return rows


def ratio(bench: Bench, name: str, base: str) -> str:
    """median ÷ base's median, for the start-up rows that have that base in this run."""
    if not name.startswith(("time to usable", "command alone")) or base not in bench.results:
        return ""
    return f"{bench.results[name]['median'] / bench.results[base]['median']:.2f}"


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
    parser.add_argument(
        "--report",
        type=Path,
        help="re-render the table of an earlier run's --json file; run nothing",
    )
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["default", "ci", "spare", "spare-ci", "first", "compose",
                                 "compose-ci",
                                 "hatchet-cli", "commands", "snapshots", "scaling"])  # fmt: skip
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        bench = Bench(Path(), 0)
        bench.results, bench.extra = saved["results"], saved["extra"]
        text = markdown(bench, saved["command"], saved["machine"])
        print(text)
        args.markdown.write_text(text)
        return 0
    # As pip installs it: byte-compiled (PYTHONDONTWRITEBYTECODE, set on some machines, would
    # otherwise make every command compile the package from source again).
    compileall.compile_dir(str(REPO / "hatchet_local"), quiet=1)
    root = Path(tempfile.mkdtemp(prefix="hatchet-local-bench-"))
    bench = Bench(root, args.repeat)
    startups: dict[str, tuple[str, Callable[[], Callable[[int], Startup]]]] = {
        "default": (UP_DEFAULT, lambda: bench.hatchet_local_up(UP_DEFAULT)),
        "first": (UP_FIRST, lambda: bench.hatchet_local_up(UP_FIRST, first=True)),
        "compose": (FLOOR, bench.plain_compose),
        "ci": (UP_CI, lambda: bench.hatchet_local_up(UP_CI, "--profile", "ci")),
        "spare": (UP_SPARE, lambda: bench.hatchet_local_up(UP_SPARE, spare=True)),
        "spare-ci": (
            UP_SPARE_CI,
            lambda: bench.hatchet_local_up(UP_SPARE_CI, "--profile", "ci", spare=True),
        ),
        "compose-ci": (FLOOR_CI, lambda: bench.plain_compose("profile: ci\n")),
        "hatchet-cli": (HATCHET_CLI, lambda: bench.hatchet_cli(hatchet_cli_binary())),
    }
    tagged: list[str] = []
    command = "python bench/run.py" + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    try:
        bench.image_sizes()
        if "hatchet-cli" not in args.skip:
            tagged = tag_for_hatchet_cli()
        if not {"default", "ci", "spare", "spare-ci", "commands", "snapshots"} <= set(args.skip):
            bench.prime_bases()
        bench.startups({label: make() for key, (label, make) in startups.items()
                        if key not in args.skip})  # fmt: skip
        if "commands" not in args.skip:
            bench.commands()
        if "snapshots" not in args.skip:
            bench.snapshots()
        if "scaling" not in args.skip:
            bench.scaling()
    finally:
        for tag in tagged:
            docker("image", "rm", tag, check=False)
        shutil.rmtree(root, ignore_errors=True)
        # What was measured is kept even when a later part fails.
        saved = {"command": command, "machine": machine(), "results": bench.results,
                 "extra": bench.extra}  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(saved, indent=2))
    where = machine()
    text = markdown(bench, command, where)
    print("\n" + text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    saved = {"command": command, "machine": where, "results": bench.results, "extra": bench.extra}
    args.json.write_text(json.dumps(saved, indent=2))
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
