#!/usr/bin/env python3
"""Reliability and security figures of issues #7 and #16: bad input, faults (signals at every
phase, SIGKILL recoveries, a Docker engine restart), soak, secrets; one table.

    python bench/reliability.py [--quick] [--only GROUP ...] [--json FILE] [--markdown FILE]
    python bench/reliability.py --report bench/reliability.json    # the table of a past run

Runs pytest on each group (tests/test_bad_input.py; tests/e2e/test_faults.py with
tests/e2e/test_docker_restart.py; tests/e2e/test_soak.py; tests/e2e/test_security.py) with a
JUnit XML report each, reads the groups' own JSON (the soak's counts, the signals tried per
phase, the restart's timings, the security review's findings), and prints one Markdown table.
Unless --quick (the CI sizes): the soak runs issue #7's 30 up/down and 10 reset cycles, and the
fault matrix sends every signal (SIGINT, SIGTERM, SIGHUP, SIGKILL) at every phase of `up`,
`reset` and `down` (HATCHET_LOCAL_SIGNAL_WALK=full) instead of rotating them. A group whose
test file is not there yet is reported as "not present". Needs the test rig's images
(scripts/test builds them), root (loop devices, a private dockerd), and the venv's pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FULL_SOAK = "30,10"
QUICK_SOAK = "3,2"


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    path: str  # test files, separated by spaces
    # What one test case is, and what passing means, in the table's words.
    unit: str
    passed_word: str

    @property
    def paths(self) -> list[str]:
        return self.path.split()


FAULT_FILES = "tests/e2e/test_faults.py tests/e2e/test_docker_restart.py"
GROUPS = (
    Group("bad_input", "Bad input", "tests/test_bad_input.py", "cases", "passed"),
    Group("faults", "Faults", FAULT_FILES, "faults", "survived"),
    Group("soak", "Soak", "tests/e2e/test_soak.py", "tests", "passed"),
    Group("security", "Security review", "tests/e2e/test_security.py", "checks", "passed"),
)
# The groups' own JSON reports, by the environment variable that names where to write them.
REPORTS = {
    "soak": "HATCHET_LOCAL_RELIABILITY_OUT",
    "security": "HATCHET_LOCAL_SECURITY_OUT",
    "signals": "HATCHET_LOCAL_FAULTS_OUT",
    "restart": "HATCHET_LOCAL_RESTART_OUT",
}


@dataclass
class Outcome:
    """One group's pytest run as its JUnit report tells it."""

    present: bool
    ran: bool = True  # False: left out with --only
    tests: int = 0
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    # The table's cases: parametrized tests (one per row of CASES or FAULTS).
    cases: int = 0
    cases_passed: int = 0
    seconds: float = 0.0
    exit_code: int | None = None


def parse_junit(text: str) -> Outcome:
    """Counts and failing test names from a pytest JUnit XML report."""
    root = ET.fromstring(text)
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    outcome = Outcome(present=True)
    for suite in suites:
        outcome.seconds += float(suite.get("time") or 0)
        for case in suite.iter("testcase"):
            outcome.tests += 1
            name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
            if case.find("skipped") is not None:
                outcome.skipped += 1
            elif case.find("failure") is not None or case.find("error") is not None:
                outcome.failed.append(name)
            else:
                outcome.passed += 1
            if "[" in name:
                outcome.cases += 1
                outcome.cases_passed += name not in outcome.failed and case.find("skipped") is None
    return outcome


def run_group(group: Group, workdir: Path, soak_cycles: str, full: bool = False) -> Outcome:
    paths = [path for path in group.paths if (REPO / path).is_file()]
    if not paths:
        return Outcome(present=False)
    junit = workdir / f"{group.key}.xml"
    env = {**os.environ, "HATCHET_LOCAL_SOAK_CYCLES": soak_cycles,
           "HATCHET_LOCAL_SIGNAL_WALK": "full" if full else "quick",
           **{var: str(workdir / f"{key}.json") for key, var in REPORTS.items()}}  # fmt: skip
    command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}"]  # fmt: skip
    print(f"-> {group.title}: {shlex.join(command[2:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, env=env, check=False)
    if not junit.is_file():  # pytest could not even collect: count it as one failure
        failure = f"{group.path} (pytest exit {proc.returncode}, no report)"
        return Outcome(present=True, tests=1, failed=[failure],
                       seconds=time.monotonic() - started, exit_code=proc.returncode)  # fmt: skip
    outcome = parse_junit(junit.read_text())
    outcome.exit_code = proc.returncode
    return outcome


def read_report(path: Path) -> dict[str, Any]:
    """A test group's own JSON report (the soak's counts, the security review's findings)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def secret_exposures(security: dict[str, Any]) -> int | None:
    """Secrets the security review found in command lines, outputs, log files or the
    rendered compose file (None when it did not report)."""
    exposures = security.get("exposures")
    if not isinstance(exposures, dict) or not exposures:
        return None
    return sum(int(n) for n in exposures.values())


def cell(outcome: Outcome, group: Group) -> str:
    if not outcome.ran:
        return "not run"
    if not outcome.present:
        return "not present"
    if group.key in ("bad_input", "faults") and outcome.cases:
        text = f"{outcome.cases} {group.unit} tried, {outcome.cases_passed} {group.passed_word}"
        others = outcome.tests - outcome.cases
        if others:
            passed = outcome.passed - outcome.cases_passed
            text += f" (+{others} other test{'s' * (others > 1)}, {passed} passed)"
    else:
        text = f"{outcome.tests} {group.unit} tried, {outcome.passed} {group.passed_word}"
    if outcome.skipped:
        text += f", {outcome.skipped} skipped"
    return text


def soak_cell(outcome: Outcome, cycles: dict[str, int] | None) -> str:
    if cycles:
        return f"{cycles['up_down']}, {cycles['reset']}"
    if outcome.ran and outcome.present:
        return "no soak report"  # the soak failed before it could write one
    return cell(outcome, GROUPS[2])


def soak_counts(soak: dict[str, Any]) -> list[tuple[str, str]]:
    """The soak's measured counts as rows: the stack's own objects before, at every up and
    after; the host's totals before and after (other jobs share the host: these move)."""
    before, after = soak.get("before"), soak.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []

    def objects(counts: dict[str, int]) -> str:
        return "/".join(str(counts[kind]) for kind in ("containers", "volumes", "networks"))

    at_up = sorted({objects(c["stack_objects"]) for c in soak.get("per_cycle", [])})
    host = ", ".join(
        f"{what} {before[key]} → {after[key]}"
        for what, key in (("processes", "processes"), ("docker/compose", "docker_processes"),
                          ("listening sockets", "listening_sockets"))
    )  # fmt: skip
    return [
        ("soak: the stack's containers/volumes/networks before, at every up, after",
         f"{objects(before['stack_objects'])}, {' or '.join(at_up) or '-'}, "
         f"{objects(after['stack_objects'])}"),
        ("soak: processes and ports naming the stack after",
         f"{len(after['stack_processes'])}, {len(after['stack_ports_listening'])}"),
        ("soak: host totals before → after (shared host)", host),
    ]  # fmt: skip


def signal_rows(signals: dict[str, Any]) -> list[tuple[str, str]]:
    """The signal walks' outcomes as rows: per command, the strikes tried and survived, per
    signal; then the SIGKILL recoveries alone."""
    tried = signals.get("signals")
    if not isinstance(tried, dict) or not tried:
        return []
    cells, kills = [], [0, 0]
    for command, phases in tried.items():
        by_signal: dict[str, list[int]] = {}
        for outcomes in phases.values():
            for name, outcome in outcomes.items():
                counts = by_signal.setdefault(name, [0, 0])
                counts[0] += 1
                counts[1] += outcome == "survived"
        total = [sum(c[0] for c in by_signal.values()), sum(c[1] for c in by_signal.values())]
        detail = ", ".join(f"{n} {c[1]}/{c[0]}" for n, c in sorted(by_signal.items()))
        cells.append(f"{command}: {total[1]} of {total[0]} at {len(phases)} phases ({detail})")
        kills = [kills[0] + by_signal.get("SIGKILL", [0, 0])[0],
                 kills[1] + by_signal.get("SIGKILL", [0, 0])[1]]  # fmt: skip
    scope = "every signal at every phase" if signals.get("full") else "signals rotated over phases"
    return [
        (f"signals tried and survived ({scope})", "; ".join(cells)),
        ("SIGKILL recoveries (the next command finishes the job)", f"{kills[1]} of {kills[0]}"),
    ]


def restart_row(results: Outcome, restart: dict[str, Any]) -> list[tuple[str, str]]:
    """The Docker restart test's outcome: the stacks brought back, with data and tokens."""
    if not results.ran or not results.present:
        return []
    ours = [name for name in results.failed if "test_docker_restart" in name]
    firsts = restart.get("first_task_seconds") or []
    first = f"; first task after it {', '.join(f'{s:.0f} s' for s in firsts)}" if firsts else ""
    verdict = "survived" if not ours else f"failed ({len(ours)} checks)"
    return [("Docker engine restarts (2 running stacks, 1 stopped)",
             f"1 tried, {verdict}: data, tokens and the stopped stack checked{first}")]  # fmt: skip


def worker_row(soak: dict[str, Any]) -> list[tuple[str, str]]:
    worker = soak.get("worker")
    if not isinstance(worker, dict):
        return []
    restarts = worker.get("restarts") or []
    said = f"{len(restarts)}: {'; '.join(restarts)}" if restarts else "0"
    return [("soak: tasks run through an SDK worker kept connected (worker restarts)",
             f"{worker.get('tasks', 0)} ({said})")]  # fmt: skip


def markdown(
    results: dict[str, Outcome], reports: dict[str, dict[str, Any]], meta: dict[str, str]
) -> str:
    bad, faults = results["bad_input"], results["faults"]
    soak_run, security = results["soak"], results["security"]
    soak = reports["soak"]
    cycles = soak.get("cycles")
    cycles = cycles if isinstance(cycles, dict) else None
    leaks = soak.get("leaks")
    exposures = secret_exposures(reports["security"])
    rows = [
        ("bad-input cases", cell(bad, GROUPS[0])),
        ("faults", cell(faults, GROUPS[1])),
        *signal_rows(reports.get("signals") or {}),
        *restart_row(faults, reports.get("restart") or {}),
        ("soak cycles run (up/down, reset)", soak_cell(soak_run, cycles)),
        *worker_row(soak),
        ("leaks found (objects, processes, ports grown)",
         str(len(leaks)) if isinstance(leaks, list) else "n/a"),
        *soak_counts(soak),
        ("security checks", cell(security, GROUPS[3])),
        ("secret exposures found (argv, output, logs, files)",
         "n/a" if exposures is None else str(exposures)),
    ]  # fmt: skip
    lines = [
        "| measure | result |", "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows), "",
        f"Machine: {meta['machine']}. Produced by `{meta['command']}` in {meta['seconds']} s.",
    ]  # fmt: skip
    failed = [f"- {g.title}: {name}" for g in GROUPS for name in results[g.key].failed]
    if failed:
        lines += ["", "Failed:", *failed]
    if isinstance(leaks, list) and leaks:
        lines += ["", "Leaks:", *(f"- {leak}" for leak in leaks)]
    return "\n".join(lines) + "\n"


def machine() -> str:
    def output(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()

    docker = output("docker", "version", "--format", "{{.Server.Version}}")
    compose = output("docker", "compose", "version", "--short")
    return (f"{platform.machine()}, {os.cpu_count() or 0} cores, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, "
            f"Docker {docker or 'unreachable'}, Compose {compose or 'missing'}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick_help = (f"CI sizes: soak cycles {QUICK_SOAK} (up/down,reset), not {FULL_SOAK}; "
                  "signals rotated over phases, not every signal at every phase")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "reliability.json")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--only", nargs="*", choices=[g.key for g in GROUPS],
                        help="run only these groups (the others show as not run)")  # fmt: skip
    report_help = "print the table of an earlier run's --json file; run nothing"
    parser.add_argument("--report", type=Path, metavar="JSON", help=report_help)
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        groups = {key: Outcome(**value) for key, value in saved["groups"].items()}
        meta = {key: saved[key] for key in ("machine", "command", "seconds")}
        print(markdown(groups, {k: saved.get(k) or {} for k in REPORTS}, meta))
        return 0
    started = time.monotonic()
    results: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="hatchet-local-reliability-") as tmp:
        workdir = Path(tmp)
        for group in GROUPS:
            if args.only and group.key not in args.only:
                present = any((REPO / path).is_file() for path in group.paths)
                results[group.key] = Outcome(present=present, ran=False)
                continue
            cycles = QUICK_SOAK if args.quick else FULL_SOAK
            results[group.key] = run_group(group, workdir, cycles, full=not args.quick)
        reports = {key: read_report(workdir / f"{key}.json") for key in REPORTS}
    command = "python bench/reliability.py" + " ".join(
        ["", *(["--quick"] if args.quick else []), *(["--only", *args.only] if args.only else [])]
    )
    meta = {"machine": machine(), "command": command,
            "seconds": f"{time.monotonic() - started:.0f}"}  # fmt: skip
    text = markdown(results, reports, meta)
    print("\n" + text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "groups": {key: asdict(outcome) for key, outcome in results.items()},
        **reports, "secret_exposures": secret_exposures(reports["security"]), **meta,
    }, indent=2) + "\n")  # fmt: skip
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    failed = any(o.failed for o in results.values())
    leaks = reports["soak"].get("leaks")
    return 1 if failed or (isinstance(leaks, list) and leaks) else 0


if __name__ == "__main__":
    sys.exit(main())
