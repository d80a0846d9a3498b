"""How CI runners and terminals stop a command (issue #16): SIGINT, SIGTERM and SIGHUP all go
through one handler, the one Ctrl-C always had: the command stops with `Interrupted`, every
clean-up runs, and it exits 128 + the signal's number."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hatchet_local import cli
from hatchet_local import console as console_module
from hatchet_local import signals as signals_module
from hatchet_local.console import Console, end_begun_phases
from hatchet_local.context import Context
from hatchet_local.errors import Interrupted
from hatchet_local.fsutil import atomic_write
from hatchet_local.runner import SubprocessRunner
from hatchet_local.signals import (
    STOP_SIGNALS,
    interrupts_deferred,
    stop,
    stop_on_signals,
    stopped_handled,
)

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
MESSAGES = {
    signal.SIGINT: "interrupted; run the same command again to finish",
    signal.SIGTERM: "stopped by SIGTERM; run the same command again to finish",
    signal.SIGHUP: "stopped by SIGHUP; run the same command again to finish",
}


@pytest.fixture(autouse=True)
def _handlers_put_back() -> Iterator[None]:
    """main() installs its handlers for good (the process ends after it): not in pytest."""
    saved = {signum: signal.getsignal(signum) for signum in SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_every_stop_signal_has_the_one_handler() -> None:
    assert set(STOP_SIGNALS) == set(SIGNALS)
    stop_on_signals()
    assert {signum: signal.getsignal(signum) for signum in SIGNALS} == dict.fromkeys(SIGNALS, stop)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_main_exits_128_plus_the_signal_with_one_line(
    signum: signal.Signals,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def signalled(*, quiet: bool = False) -> Context:
        signal.raise_signal(signum)  # as a CI runner, `kill` or a closing terminal sends it
        raise AssertionError(f"{signum.name} did not stop the command")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HATCHET_LOCAL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(sys, "argv", ["hatchet-local", "status", "--stack", "unit"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(signalled)
    assert exit_info.value.code == 128 + signum
    assert capsys.readouterr().err == MESSAGES[signum] + "\n"


def test_main_ends_a_phase_a_signal_left_open_before_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signal that lands where `__exit__` never runs (its first instruction) leaves a
    phase begun: main() marks it aborted, and the message stays the last line."""

    def signalled(*, quiet: bool = False) -> Context:
        Console(clock=lambda: 0.0).phase("containers").__enter__()  # no __exit__ follows
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("SIGINT did not stop the command")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HATCHET_LOCAL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(sys, "argv", ["hatchet-local", "status", "--stack", "unit"])
    with pytest.raises(SystemExit):
        cli.main(signalled)
    err = capsys.readouterr().err
    assert err.splitlines() == ["-> containers", "!! containers (0.0s)", MESSAGES[signal.SIGINT]]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_write_finishes_before_any_stop_signal_lands(
    signum: signal.Signals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "token.json"
    target.write_text("old\n")
    real_fsync = os.fsync

    def fsync_then_signal(fd: int) -> None:
        real_fsync(fd)
        signal.raise_signal(signum)

    stop_on_signals()
    monkeypatch.setattr(os, "fsync", fsync_then_signal)
    with pytest.raises(Interrupted) as info:
        atomic_write(target, "new\n")
    assert info.value.exit_code == 128 + signum
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token.json"]
    assert signal.getsignal(signum) is stop  # the handler is back in place


def test_a_second_signal_does_not_cut_the_clean_up_short() -> None:
    """GitHub Actions cancels with SIGINT, then SIGTERM: the clean-up the first started (a
    child being stopped, a lock released) runs to its end, and the first signal is reported."""
    stop_on_signals()
    cleaned = False
    with pytest.raises(Interrupted) as info:
        try:
            signal.raise_signal(signal.SIGINT)
        finally:
            signal.raise_signal(signal.SIGTERM)
            cleaned = True
    assert cleaned
    assert info.value.exit_code == 130


def test_a_forked_child_leaves_the_stop_to_its_parent() -> None:
    """A child forked from a thread runs the handler of a signal its parent caught but had not
    handled yet, in its fork callbacks before it execs; raised there, it was printed as
    "Exception ignored in: _after_fork" beside the command's one line."""
    stop_on_signals()
    child = os.fork()
    if child == 0:
        try:
            stop(signal.SIGINT, None)
        except Interrupted:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with pytest.raises(Interrupted):  # the parent itself still stops
        stop(signal.SIGINT, None)


def test_deferred_signals_are_delivered_after_the_block() -> None:
    stop_on_signals()
    done = []
    with pytest.raises(Interrupted) as info, interrupts_deferred():
        signal.raise_signal(signal.SIGHUP)
        done.append("rest of the block")
    assert done == ["rest of the block"]
    assert info.value.exit_code == 129


def test_sigterm_stops_the_running_child_and_is_reported_as_sigterm(tmp_path: Path) -> None:
    """SIGTERM sent to hatchet-local alone (not its process group, as `kill PID` does): the
    docker or compose command it runs is stopped too, not left running."""
    pid_file = tmp_path / "child.pid"
    stop_on_signals()
    timer = threading.Thread(target=_sigterm_once_started, args=(pid_file,), daemon=True)
    timer.start()
    with pytest.raises(Interrupted) as info:
        SubprocessRunner().run(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"])
    timer.join()
    assert info.value.exit_code == 143
    child = int(pid_file.read_text())
    assert not Path(f"/proc/{child}").exists() or _zombie(child)


def _sigterm_once_started(pid_file: Path) -> None:
    while not pid_file.exists() or not pid_file.read_text().strip():
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


CHILD = """
import sys
from hatchet_local.runner import SubprocessRunner
SubprocessRunner().run(["sh", "-c", "echo $$ > " + sys.argv[1] + "; exec sleep 60"])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_a_sigkilled_hatchet_local_leaves_no_command_running(tmp_path: Path) -> None:
    """SIGKILL reaches no handler: the docker or compose command hatchet-local was running
    ends with it, instead of racing the next command on the same stack."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(pid_file)])
    try:
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert parent.poll() is None, "the runner's process ended early"
            time.sleep(0.01)
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child}").exists() and not _zombie(child):
            assert time.monotonic() < deadline, "the command outlived the killed hatchet-local"
            time.sleep(0.01)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_swallowed_stop_is_raised_again_at_the_next_safe_point() -> None:
    """A handler's exception landing where Python can only print it (a fork callback while a
    subprocess starts: seen in the e2e signal walk) is dropped; the command must not go on
    as if no signal had come. The next subprocess that ends, or phase that ends, stops it."""
    stop_on_signals()
    with contextlib.suppress(Interrupted):  # as `Exception ignored in: ...` does
        signal.raise_signal(signal.SIGHUP)
    with pytest.raises(Interrupted) as info:
        SubprocessRunner().run(["true"])
    assert info.value.exit_code == 129
    stream = io.StringIO()
    console = Console(stream, clock=lambda: 0.0)
    with pytest.raises(Interrupted), console.phase("containers"):
        pass
    assert stream.getvalue().splitlines() == ["-> containers", "!! containers (0.0s)"]


def test_nohup_is_respected() -> None:
    """A stop signal this process was told to ignore (`nohup hatchet-local up &`) stays
    ignored: the terminal closing does not stop the command."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    stop_on_signals()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is stop


# A signal landing while a subprocess is forked: Python runs fork callbacks then, and an
# exception raised in one is printed ("Exception ignored in ...") and dropped.
_SIGNAL_WHILE_FORKING: list[int] = []


def _signal_while_forking() -> None:
    if _SIGNAL_WHILE_FORKING:
        signal.raise_signal(_SIGNAL_WHILE_FORKING.pop())


os.register_at_fork(after_in_parent=_signal_while_forking)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork callbacks: Linux path")
def test_a_signal_while_a_subprocess_starts_stops_the_command_cleanly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stop_on_signals()
    _SIGNAL_WHILE_FORKING.append(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        SubprocessRunner().run(["sleep", "30"])
    assert info.value.exit_code == 143
    assert capsys.readouterr().err == ""  # nothing printed and dropped


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_the_command_gets_stop_signals_as_any_command_does() -> None:
    """Held while forking, the stop signals are unblocked again in the child: a blocked mask
    would outlive exec and make docker and compose deaf to Ctrl-C and SIGTERM."""
    stop_on_signals()
    status = SubprocessRunner().run(["cat", "/proc/self/status"]).stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    blocked, ignored = int(fields["SigBlk"], 16), int(fields["SigIgn"], 16)
    for signum in SIGNALS:
        assert not blocked & (1 << (signum - 1)), f"{signum.name} blocked in the child"
        assert not ignored & (1 << (signum - 1)), f"{signum.name} ignored in the child"


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_signal_after_the_command_ended_is_let_pass(
    signum: signal.Signals, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signal that lands once the command is done (its outcome being told, or Python
    shutting down) stops nothing: the command's own exit code, no traceback. Raised there,
    `Interrupted` escaped main() (the CI runner's late SIGTERM after a finished `up`)."""

    def exit_after_a_signal(code: object = 0) -> None:
        signal.raise_signal(signum)  # lands between the command's end and the exit
        raise SystemExit(code)

    monkeypatch.setattr(sys, "argv", ["hatchet-local", "version"])
    monkeypatch.setattr(sys, "exit", exit_after_a_signal)
    with pytest.raises(SystemExit) as exited:
        cli.main(make_context=lambda *, quiet=False: None)  # type: ignore[arg-type,return-value]
    assert exited.value.code == 0
    assert "hatchet-local" in capsys.readouterr().out
    # main() put back the handlers it replaced, for this process goes on.
    assert signal.getsignal(signum) is not stop


def _phase_lines_with_a_signal_at(position: int, body: bool) -> tuple[list[str], bool]:
    """Run one phase with SIGINT raised before the `position`-th bytecode instruction
    executed by the console's, contextlib's or the signals module's code (a superset of
    the instructions where Python runs a handler); return the phase's lines once main()
    would print the command's message, and whether the signal was raised."""
    stream = io.StringIO()
    console = Console(stream, clock=lambda: 0.0)
    traced = {console_module.__file__, contextlib.__file__, signals_module.__file__}
    seen = [0]

    def trace(frame: Any, event: str, arg: object) -> Any:
        if frame.f_code.co_filename not in traced:
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            seen[0] += 1
            if seen[0] == position:
                signal.raise_signal(signal.SIGINT)  # `stop` runs at the next check
        return trace

    stop_on_signals()
    try:
        sys.settrace(trace)
        with console.phase("work"):
            if body:
                time.sleep(0)
    except Interrupted:
        end_begun_phases()  # as main() does before the message
    finally:
        sys.settrace(None)
        stopped_handled()
    return stream.getvalue().splitlines(), seen[0] >= position


@pytest.mark.parametrize("body", [False, True], ids=["empty", "a call"])
def test_a_stop_signal_anywhere_in_a_phase_leaves_its_lines_whole(body: bool) -> None:
    """Whatever instruction a stop signal lands before, a phase that printed `-> work` has
    printed exactly one end line (`ok` or `!!`) before the command's message, never one
    later (while Python shut down, as CI once saw after a SIGINT)."""
    outcomes = set()
    position = 1
    while True:
        lines, signalled = _phase_lines_with_a_signal_at(position, body)
        if not signalled:
            break
        ends = [line.split(" ")[0] for line in lines[1:]]
        assert lines == [] or (lines[0] == "-> work" and ends in (["ok"], ["!!"])), (
            position, lines)  # fmt: skip
        outcomes.add(tuple(ends) if lines else ())
        position += 1
    assert position > 100  # the trace saw the phase's code
    assert outcomes == {(), ("ok",), ("!!",)}
