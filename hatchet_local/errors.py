"""One error hierarchy. `cli.main()` is the only place an error becomes an exit code.

Every message says what went wrong and what to do; exit codes are documented in
README.md and stay stable.
"""

from __future__ import annotations

import reprlib
import signal
from pathlib import Path


class HatchetLocalError(Exception):
    """Base of every error a user can see. `exit_code` is what the process exits with."""

    exit_code = 1

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        # Extra lines (a service's last log lines) printed below the one-line message.
        self.details = details


class ConfigError(HatchetLocalError):
    """Bad configuration, flag, environment variable or state file."""

    exit_code = 2


class DockerUnavailable(HatchetLocalError):
    """No Docker engine answers, or Compose v2 is missing."""

    exit_code = 3


class PortInUse(HatchetLocalError):
    exit_code = 4


class ImageMissing(HatchetLocalError):
    exit_code = 5


class ServiceUnhealthy(HatchetLocalError):
    """A service failed or did not become ready in time."""

    exit_code = 6


class HealthTimeout(ServiceUnhealthy):
    pass


class SetupFailed(HatchetLocalError):
    """A one-shot job (migrations, config generation) exited non-zero."""

    exit_code = 7


class BootstrapFailed(HatchetLocalError):
    """The stack runs but no working token could be made."""

    exit_code = 8


class CommandFailed(HatchetLocalError):
    """docker or compose failed in a way none of the above explains."""

    exit_code = 9


class StackNotFound(HatchetLocalError):
    exit_code = 10


class StackBusy(HatchetLocalError):
    """Another hatchet-local command holds the stack's lock."""

    exit_code = 11


class VersionConflict(HatchetLocalError):
    """The stack's data was made by a newer Hatchet than the one asked for."""

    exit_code = 12


class HatchetApiError(HatchetLocalError):
    """Hatchet's REST API refused or failed a call (tenants, tokens, users)."""

    exit_code = 13


class TenantNotFound(HatchetLocalError):
    """No tenant of that name on the server, or none the admin can see."""

    exit_code = 14


class ServerUnreachable(HatchetApiError):
    """Nothing answers at the server's address (refused, no such host, timed out)."""

    exit_code = 15


class TlsFailure(HatchetApiError):
    """The server's certificate was not accepted (unknown CA, wrong host name, expired)."""

    exit_code = 16


class LoginRefused(HatchetApiError):
    """No admin session: a wrong email or password, password login off (SSO only), or no
    password to log in with."""

    exit_code = 17


class RateLimited(HatchetApiError):
    """The server answered HTTP 429; `retry_after` is the seconds it asks to wait."""

    exit_code = 18

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerRefuses(HatchetApiError):
    """The server does not allow or support what was asked: tenant creation or invites
    turned off in its config, read-only tokens on a release without them."""

    exit_code = 19


class TenantAccessDenied(HatchetApiError):
    """A declared tenant exists but the admin is not a member of it (or its slug is taken
    by a tenant the admin cannot see)."""

    exit_code = 20


class BuildFailed(HatchetLocalError):
    """`images build` could not make an image: a tool, a privilege or a step missing."""

    exit_code = 21


class SnapshotUnusable(HatchetLocalError):
    """A snapshot that cannot be loaded: not a snapshot, cut short, changed since it was
    saved, made for another Postgres major version or a newer format, or no snapshot of that
    name."""

    exit_code = 22


class Interrupted(BaseException):
    """Stopped by a signal: Ctrl-C (SIGINT), SIGTERM (how CI runners, GitLab and `docker
    stop` end a job) or SIGHUP (a closed terminal). Exits 128 + the signal's number: 130,
    143, 129. A BaseException, like KeyboardInterrupt, so that no `except HatchetLocalError`
    (or a library's `except Exception`) can swallow it and carry on."""

    def __init__(self, message: str | None = None, *, signum: int = signal.SIGINT) -> None:
        if message is None:
            name = signal.Signals(signum).name
            cause = "interrupted" if signum == signal.SIGINT else f"stopped by {name}"
            message = f"{cause}; run the same command again to finish"
        super().__init__(message)
        self.message = message
        self.signum = signum
        self.exit_code = 128 + signum
        self.details = ""


# Bounded, so that YAML aliases nested into a "billion laughs" cannot make a message endless.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring = 3, 8, 8, 80


def brief(value: object) -> str:
    """A repr short enough to keep a message on one line."""
    value = str(value) if isinstance(value, Path) else value
    text = _REPR.repr(value) if isinstance(value, list | dict | tuple | set) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
