"""The one place that runs subprocesses.

Commands are argv lists (never a shell), secrets travel in env files and never in argv,
and a stop signal (Ctrl-C, SIGTERM, SIGHUP) stops the child before it is reported. What a
failed command's output means (Docker unreachable, say) is for its caller to read: see
docker.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol

from hatchet_local.errors import CommandFailed, Interrupted
from hatchet_local.signals import check_stopped, hold, release, reset_in_child


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
        cwd: Path | None = None,
    ) -> Result:
        """Run argv to completion (in `cwd`). With capture=False the child writes to our
        terminal."""
        ...

    def stream(
        self,
        argv: Sequence[str],
        *,
        source: IO[bytes] | None = None,
        sink: IO[bytes] | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run argv over binary data: `source` is copied to its stdin, its stdout to `sink`
        (without a sink, stdout is captured as text). SQL holding a password verifier and
        the data of a snapshot travel this way, never in argv. The child runs in its own
        process group: a Ctrl-C at the terminal reaches only hatchet-local, which stops the
        child itself, or lets it finish when it holds interrupts back (a swap of data)."""
        ...

    def detach(self, argv: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str]) -> int:
        """Start argv in a session of its own, to go on after hatchet-local ends (a signal
        to hatchet-local does not reach it), its output written to `log` (made anew).
        Returns its pid."""
        ...


class SubprocessRunner:
    def detach(self, argv: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str]) -> int:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            child = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=fd,
                stderr=fd, start_new_session=True, preexec_fn=reset_in_child,  # noqa: PLW1509
            )  # fmt: skip
        except FileNotFoundError as exc:
            raise CommandFailed(f"{argv[0]}: command not found; is it installed?") from exc
        finally:
            os.close(fd)
        return child.pid

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        capture: bool = True,
        cwd: Path | None = None,
    ) -> Result:
        pipe = subprocess.PIPE if capture else None
        child, held = _spawn(
            argv, env=dict(env) if env is not None else None, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=pipe, stderr=pipe, text=True, encoding="utf-8", errors="replace",
        )  # fmt: skip
        try:
            release(held)  # a signal held meanwhile lands here, and the child is stopped
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

    def stream(
        self,
        argv: Sequence[str],
        *,
        source: IO[bytes] | None = None,
        sink: IO[bytes] | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        child, held = _spawn(
            argv, env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if source is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0,
        )  # fmt: skip
        assert child.stdout is not None and child.stderr is not None
        errors: list[bytes] = []
        stderr = child.stderr
        helpers = [threading.Thread(target=lambda: errors.append(stderr.read()))]
        if source is not None:
            helpers.append(threading.Thread(target=_feed, args=(source, child.stdin)))
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            child.kill()

        timer = threading.Timer(timeout, expire) if timeout else None
        for thread in [*helpers, *([timer] if timer else [])]:
            thread.daemon = True
            thread.start()
        captured = bytearray()
        try:
            release(held)  # a signal held meanwhile lands here, and the child is stopped
            while chunk := child.stdout.read(_CHUNK):
                if sink is None:
                    captured += chunk
                else:
                    sink.write(chunk)
            child.wait()
        except KeyboardInterrupt as exc:
            _stop(child)
            raise Interrupted() from exc
        except BaseException:  # Interrupted (a stop signal) among them
            _stop(child)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            for thread in helpers:
                thread.join(30)
            child.stdout.close()
            child.stderr.close()
        if timed_out.is_set():
            raise CommandFailed(f"{argv[0]} {argv[1] if len(argv) > 1 else ''}: "
                                f"no answer after {timeout:.0f}s")  # fmt: skip
        check_stopped()
        said = b"".join(errors).decode("utf-8", "replace")
        return Result(tuple(argv), child.returncode, captured.decode("utf-8", "replace"), said)


def _spawn(argv: Sequence[str], **popen: Any) -> tuple[subprocess.Popen[Any], Any]:
    """Start argv. Forking runs Python code (fork callbacks, `before_exec`) where a signal
    handler's exception would be printed and dropped: the stop signals are held until the
    child exists. Returns the child and the signal mask for the caller to `release` once it
    can stop the child."""
    before_exec = _before_exec()
    held = hold() if before_exec is not None else None
    try:
        # The function only calls prctl and resets signals; commands run from one thread.
        child = subprocess.Popen(list(argv), preexec_fn=before_exec, **popen)  # noqa: PLW1509
    except FileNotFoundError as exc:
        release(held)
        raise CommandFailed(f"{argv[0]}: command not found; is it installed?") from exc
    except BaseException:
        release(held)
        raise
    return child, held


_CHUNK = 1 << 20


def _feed(source: IO[bytes], stdin: IO[bytes] | None) -> None:
    """Copy `source` into a child's stdin, then close it (the child reads to its end)."""
    assert stdin is not None
    try:
        while chunk := source.read(_CHUNK):
            stdin.write(chunk)
    except (BrokenPipeError, ValueError):
        pass  # the child stopped reading: its exit code says why
    finally:
        with contextlib.suppress(BrokenPipeError):
            stdin.close()


_PR_SET_PDEATHSIG = 1


@functools.cache
def _before_exec() -> Callable[[], None] | None:
    """On Linux, what a child runs before exec: it gets SIGTERM when hatchet-local ends, even
    by SIGKILL (which no handler sees), so no docker or compose command outlives it and races
    the next command on the stack; and the stop signals act on it as on any command.
    Elsewhere None (the next command removes what is left)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def before_exec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # ended between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)
        reset_in_child()

    return before_exec


def _stop(child: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
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


def replace_process(argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """Become `argv` (looked up on PATH) with exactly `env`: its exit code, signals and
    terminal are the caller's own, and nothing of it shows on another command line."""
    try:
        os.execvpe(argv[0], list(argv), dict(env))
    except FileNotFoundError:
        raise CommandFailed(f"{argv[0]}: command not found; is it installed?") from None
    except PermissionError:
        raise CommandFailed(f"{argv[0]}: permission denied; is it executable?") from None
    except OSError as exc:
        raise CommandFailed(f"{argv[0]}: cannot run it ({exc.strerror or exc})") from None
