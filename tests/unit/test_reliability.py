"""bench/reliability.py's reading of pytest's JUnit reports and the groups' own JSON, and the
/proc/net/tcp parsing the soak counts ports with."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.support.hostwatch import parse_proc_net_tcp

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "reliability.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reliability", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reliability"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


reliability = load_script()

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1"
 tests="5" time="12.5">
<testcase classname="tests.test_bad_input" name="test_case[yaml]" time="0.1"/>
<testcase classname="tests.test_bad_input" name="test_case[port]" time="0.1"/>
<testcase classname="tests.test_bad_input" name="test_case[env]" time="0.1">
  <failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.test_bad_input" name="test_case[state]" time="0.1">
  <error message="fixture failed">trace</error></testcase>
<testcase classname="tests.test_bad_input" name="test_case[docker]" time="0.0">
  <skipped message="no"/></testcase>
</testsuite></testsuites>
"""


def test_parse_junit_counts_passes_failures_errors_and_skips() -> None:
    outcome = reliability.parse_junit(JUNIT)
    assert (outcome.present, outcome.tests, outcome.passed, outcome.skipped) == (True, 5, 2, 1)
    assert (outcome.cases, outcome.cases_passed) == (5, 2)
    assert outcome.failed == [
        "tests.test_bad_input::test_case[env]",
        "tests.test_bad_input::test_case[state]",
    ]
    assert outcome.seconds == 12.5


def test_parse_junit_reads_a_bare_testsuite_root() -> None:
    bare = '<testsuite tests="1" time="1"><testcase classname="a" name="b"/></testsuite>'
    outcome = reliability.parse_junit(bare)
    assert (outcome.tests, outcome.passed, outcome.failed, outcome.cases) == (1, 1, [], 0)


def test_cases_are_the_parametrized_tests_and_the_others_are_named_apart() -> None:
    report = JUNIT.replace('name="test_case[docker]" time="0.0">\n  <skipped message="no"/>',
                           'name="test_matrix_is_big_enough" time="0.0">')  # fmt: skip
    outcome = reliability.parse_junit(report)
    group = reliability.GROUPS[0]
    assert reliability.cell(outcome, group) == "4 cases tried, 2 passed (+1 other test, 1 passed)"


def test_a_missing_group_reads_not_present_and_the_table_says_so(tmp_path: Path) -> None:
    group = reliability.Group("faults", "Faults", "tests/e2e/no_such_file.py", "faults", "survived")
    outcome = reliability.run_group(group, tmp_path, "3,2")
    assert outcome.present is False
    results = {g.key: reliability.Outcome(present=False) for g in reliability.GROUPS}
    results["bad_input"] = reliability.parse_junit(JUNIT)
    results["security"] = reliability.Outcome(present=True, ran=False)
    reports = {"soak": {"cycles": {"up_down": 30, "reset": 10}, "leaks": []},
               "security": {"exposures": {"command lines": 0, "output": 0}}}  # fmt: skip
    meta = {"machine": "x86_64", "command": "python bench/reliability.py", "seconds": "1"}
    table = reliability.markdown(results, reports, meta)
    assert "| bad-input cases | 5 cases tried, 2 passed, 1 skipped |" in table
    assert "| faults | not present |" in table
    assert "| soak cycles run (up/down, reset) | 30, 10 |" in table
    assert "| leaks found (objects, processes, ports grown) | 0 |" in table
    assert "| secret exposures found (argv, output, logs, files) | 0 |" in table
    assert "| security checks | not run |" in table
    assert "soak: the stack's" not in table  # no counts in this report: no rows for them
    assert "- Bad input: tests.test_bad_input::test_case[env]" in table


def test_secret_exposures_sum_the_places_and_say_when_unknown() -> None:
    assert reliability.secret_exposures({"exposures": {"argv": 0, "output": 2}}) == 2
    assert reliability.secret_exposures({}) is None


def test_proc_net_tcp_keeps_listening_sockets_only() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:86A5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  "
        "      0 4242 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:86A5 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0  "
        "      0 4343 1 0000000000000000 20 4 30 10 -1\n"
    )
    assert parse_proc_net_tcp(table) == {4242: ("0100007F", 0x86A5)}


def test_the_soak_counts_become_rows() -> None:
    def side(containers: int, procs: int) -> dict[str, object]:
        objects = {"containers": containers, "volumes": containers, "networks": 0}
        return {"stack_objects": objects, "processes": procs, "docker_processes": 2,
                "listening_sockets": 5, "stack_processes": [],
                "stack_ports_listening": []}  # fmt: skip

    up = {"stack_objects": {"containers": 3, "volumes": 3, "networks": 1}}
    soak = {"before": side(0, 100), "after": side(0, 90), "per_cycle": [up, up]}
    rows = dict(reliability.soak_counts(soak))
    assert rows["soak: the stack's containers/volumes/networks before, at every up, after"] == (
        "0/0/0, 3/3/1, 0/0/0"
    )
    assert rows["soak: host totals before → after (shared host)"].startswith("processes 100 → 90")
