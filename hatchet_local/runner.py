"""The one place that runs subprocesses.

Commands are argv lists (never a shell), secrets travel in env files and never in argv,
and a stop signal (Ctrl-C, SIGTERM, SIGHUP) stops the child before it is reported. What a
failed command's output means (Docker unreachable, say) is for its caller to read: see
docker.py.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from hatchet_local.errors import CommandFailed, Interrupted
from hatchet_local.signals import check_stopped


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """What the command said about a failure: stderr, else stdout."""
        return self.stderr or self.stdout


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        capture: bool = True,
    ) -> Result:
        """Run argv to completion. With capture=False the child writes to our terminal."""
        ...


class SubprocessRunner:
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        capture: bool = True,
    ) -> Result:
        pipe = subprocess.PIPE if capture else None
        try:
            child = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=pipe,
                stderr=pipe,
                text=True,
                encoding="utf-8",
                errors="replace",
                # hatchet-local runs commands from one thread; the function only calls prctl.
                preexec_fn=_end_with_parent(),  # noqa: PLW1509
            )
        except FileNotFoundError as exc:
            raise CommandFailed(f"{argv[0]}: command not found; is it installed?") from exc
        except subprocess.SubprocessError as exc:  # a stop signal in the child before exec
            check_stopped()
            raise CommandFailed(f"{argv[0]}: could not start: {exc}") from exc
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _stop(child)
            raise CommandFailed(
                f"{argv[0]} {argv[1] if len(argv) > 1 else ''}: no answer after {timeout:.0f}s"
            ) from exc
        except (KeyboardInterrupt, Interrupted) as exc:
            _stop(child)
            if isinstance(exc, Interrupted):
                raise
            raise Interrupted() from exc
        check_stopped()  # a signal whose exception was swallowed while the child started
        return Result(tuple(argv), child.returncode, stdout or "", stderr or "")


_PR_SET_PDEATHSIG = 1


@functools.cache
def _end_with_parent() -> Callable[[], None] | None:
    """On Linux, what makes a child get SIGTERM when hatchet-local ends, even by SIGKILL
    (which no handler sees): a docker or compose command must not outlive it and race the
    next command on the same stack. Elsewhere None (the next command removes what is left)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # ended between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def _stop(child: subprocess.Popen[str]) -> None:
    child.terminate()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    for pipe in (child.stdout, child.stderr):
        if pipe is not None:
            pipe.close()


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def child_env(drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment without the given names (so an env file's value wins)."""
    dropped = set(drop)
    return {k: v for k, v in os.environ.items() if k not in dropped}
