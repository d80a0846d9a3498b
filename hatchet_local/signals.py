"""The signals that stop a command, all handled as Ctrl-C is: SIGINT (a terminal's Ctrl-C,
GitHub Actions' first step when it cancels a job), SIGTERM (GitHub's second step, GitLab,
`docker stop`, `kill`) and SIGHUP (the terminal closed).

Each raises `Interrupted` in the main thread, so every `finally` runs: locks are released, a
child process is stopped, and a file being written is finished first (`interrupts_deferred`).
SIGKILL cannot be caught; what it leaves is finished by the next command (see README
"Faults").
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from hatchet_local.errors import Interrupted

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

# The signal being handled: a second one (GitHub sends SIGINT, then SIGTERM) must not cut
# the clean-up the first one started short.
_stopping: list[int] = []
# Set once the command has ended (see `command_ended`).
_ended: list[bool] = []
# The process whose command the handlers stop (see `stop`).
_owner: list[int] = []


def stop(signum: int, frame: object) -> None:
    """The handler of every stop signal: raise Interrupted, once, while the command runs.

    A child forked from a thread other than the main one (a token minted beside the engine's
    start) inherits a signal caught but not yet handled, and runs this handler in its fork
    callbacks, before it execs: there the exception would only be printed. The child lets it
    pass; its parent handles the same signal in its main thread."""
    if _stopping or _ended or (_owner and os.getpid() != _owner[0]):
        return
    _stopping.append(signum)
    raise Interrupted(signum=signum)


def command_ended() -> None:
    """The command has ended (done, or failed): what is left is telling its outcome and
    exiting, so a stop signal from now on is let pass. Raised then, it would only turn a
    finished command into a traceback, printed while Python shuts down."""
    _ended.append(True)


def stopped_handled() -> None:
    """Forget a stop signal once the command it stopped has ended (so that code run later in
    the same process, a test's, is not stopped by it)."""
    _stopping.clear()


def stopped() -> bool:
    """Whether a stop signal came (its exception may have been swallowed)."""
    return bool(_stopping)


def check_stopped() -> None:
    """Raise Interrupted again when a stop signal came and the command goes on regardless.
    A handler's exception can be swallowed: one that lands in code Python runs where it can
    only report an exception (a fork callback while a subprocess starts, a finalizer) is
    printed and dropped. Called where a command may safely stop (a subprocess ended, a
    phase done)."""
    if _stopping:
        raise Interrupted(signum=_stopping[0])


def stop_on_signals() -> dict[int, Any]:
    """Install `stop` for every stop signal (main thread only, as Python requires); return
    the handlers it replaced. A signal this process was told to ignore stays ignored (`nohup
    hatchet-local up` survives the terminal's SIGHUP)."""
    _stopping.clear()
    _ended.clear()
    _owner[:] = [os.getpid()]
    replaced: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current is not signal.SIG_IGN:
            replaced[signum] = current
            signal.signal(signum, stop)
    return replaced


def restore_handlers(replaced: dict[int, Any]) -> None:
    """Put back what `stop_on_signals` replaced (for a caller that goes on in this process)."""
    for signum, handler in replaced.items():
        signal.signal(signum, handler)


def hold() -> set[int | signal.Signals] | None:
    """Block the stop signals in this (main) thread while a subprocess is forked: Python runs
    fork callbacks there, where a handler's exception would only be printed and dropped. A
    signal sent meanwhile waits, and lands at `release`. Returns the mask to put back."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def release(previous: set[int | signal.Signals] | None) -> None:
    """Undo `hold`: a stop signal that came meanwhile is handled now."""
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def reset_in_child() -> None:
    """In a child between fork and exec: the stop signals back to their default action and
    unblocked (a blocked mask would outlive exec), so the command gets them as a terminal or
    a CI runner sends them."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is stop:
            signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold every stop signal until the block is done, then deliver the first: a write it
    lands in finishes first, so it never leaves half a file or a temp file behind. Main
    thread only (the only one signals reach); elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: caught.append(signum))
        for signum in STOP_SIGNALS
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler not set from Python, which cannot be put back; Python's own then.
            signal.signal(signum, _python_default(signum) if handler is None else handler)
    if caught:
        signal.raise_signal(caught[0])


def _python_default(signum: int) -> Callable[[int, FrameType | None], Any] | signal.Handlers:
    return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
