"""bench/reliability.py's rows of issue #16: signals per phase, SIGKILL recoveries, the Docker
restart, the soak's worker."""

from __future__ import annotations

from tests.unit.test_reliability import reliability


def test_signal_walks_become_rows_per_command_and_signal() -> None:
    signals = {
        "full": False,
        "signals": {
            "up": {"containers": {"SIGHUP": "survived"}, "migrate job": {"SIGKILL": "survived"},
                   "token": {"SIGTERM": "tried"}},
            "reset": {"wipe data": {"SIGKILL": "survived"}},
        },
    }  # fmt: skip
    rows = dict(reliability.signal_rows(signals))
    assert rows["signals tried and survived (signals rotated over phases)"] == (
        "up: 2 of 3 at 3 phases (SIGHUP 1/1, SIGKILL 1/1, SIGTERM 0/1); "
        "reset: 1 of 1 at 1 phases (SIGKILL 1/1)"
    )
    assert rows["SIGKILL recoveries (the next command finishes the job)"] == "2 of 2"
    assert reliability.signal_rows({}) == []


def test_the_restart_row_reads_the_restart_tests_and_timings() -> None:
    outcome = reliability.Outcome(present=True, tests=9, passed=9)
    (row,) = reliability.restart_row(outcome, {"first_task_seconds": [3.2, 4.0]})
    assert row == (
        "Docker engine restarts (2 running stacks, 1 stopped)",
        "1 tried, survived: data, tokens and the stopped stack checked; first task after it "
        "3 s, 4 s",
    )
    failed = reliability.Outcome(present=True, failed=["t.test_docker_restart::test_x"])
    assert "failed (1 checks)" in reliability.restart_row(failed, {})[0][1]
    assert reliability.restart_row(reliability.Outcome(present=True, ran=False), {}) == []


def test_the_soak_worker_row_names_restarts() -> None:
    soak = {"worker": {"tasks": 6, "starts": 2, "restarts": ["reset #1: new token"]}}
    assert reliability.worker_row(soak) == [
        ("soak: tasks run through an SDK worker kept connected (worker restarts)",
         "6 (1: reset #1: new token)"),
    ]  # fmt: skip
