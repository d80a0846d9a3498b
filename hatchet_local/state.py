"""Everything a stack owns on disk, in one private directory per stack.

<state root>/stacks/<name>/stack.json    identity, ports, versions (what `ls` shows)
                          secrets.env   generated passwords, read by compose (0600)
                          compose.yaml  the rendered stack
                          applied       the digest of the compose file the last `up` started
                          rendered      what compose.yaml was rendered from, and its digest
                          password-pending, pristine-pending, data-pending, engine-started,
                          engine-held   notes about the data (see NOTES)
                          token.json    the client token and its tenant (0600)
                          tenants.json  the token kept for each declared tenant (0600)
                          users.json    the passwords of logins made by `user create` (0600)
                          wiping        present while `reset` wipes the data: a wipe cut
                                        short (SIGKILL) is finished by the next `up`
<state root>/locks/<name>.lock           one command at a time on the stack
<state root>/locks/ports.lock            one port choice at a time on the machine

Lock files live beside the stacks' directories, not in them: `destroy` removes a directory
while it holds the stack's lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import string
import sys
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hatchet_local.errors import ConfigError
from hatchet_local.fsutil import atomic_write, check_private, ensure_private_dir, read_text
from hatchet_local.team_state import TeamStore, Token, load_json

# Notes a stack's directory may hold about its data, each written before the step it guards
# and removed after it, so that an interrupted step is finished (or undone) by the next
# command: the role's password still to be set, the copy `reset` restores still to be taken,
# a data volume being filled (its source), and when the engine last started.
NOTES = ("password-pending", "pristine-pending", "data-pending", "engine-started", "engine-held")

# The variables the rendered compose file interpolates; they live only in secrets.env.
SECRET_NAMES = ("HATCHET_POSTGRES_PASSWORD", "HATCHET_RABBITMQ_PASSWORD", "HATCHET_ADMIN_PASSWORD")


def state_root(environ: Mapping[str, str] | None = None) -> Path:
    """The state directory; ConfigError naming where it came from when a file stands there."""
    env = os.environ if environ is None else environ
    if env.get("HATCHET_LOCAL_STATE_DIR"):
        source = "environment variable HATCHET_LOCAL_STATE_DIR"
        try:
            root = Path(env["HATCHET_LOCAL_STATE_DIR"]).expanduser()
        except RuntimeError:  # `~someone` with no such user
            raise ConfigError(
                f"{source}: no home directory for {env['HATCHET_LOCAL_STATE_DIR']!r}; "
                f"use an absolute path"
            ) from None
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Application Support" / "hatchet-local"
        source = "the state directory"
    else:
        base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        root = Path(base) / "hatchet-local"
        source = "the state directory"
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{source}: {root} is not a directory; point it at a directory")
    return root


@dataclass(frozen=True)
class StackRecord:
    """What a stack is: written once at creation, ports kept for its lifetime. Frozen: a
    change is a new record (`dataclasses.replace`) that `StackDir.save` writes."""

    name: str
    directory: str
    created: str
    tool_version: str
    hatchet_version: str
    message_queue: str
    ports: dict[str, int] = field(default_factory=dict)
    expires: str | None = None  # ephemeral stacks: when `prune --expired` may remove them
    # As the last `up` asked: the host baked into tokens (`--advertise`), and ports bound
    # beyond loopback (`--advertise` or `--expose`). Other commands follow the stack, not flags.
    advertise: str | None = None
    expose: bool = False
    # Other project directories whose `up` joined this stack (their hatchet-local.yaml names
    # it): sharing one stack between two repositories is allowed, and shown.
    joined: list[str] = field(default_factory=list)
    # The Compose project, and the name on the stack's Docker labels, when it is not the
    # stack's name: a stack that took over a spare keeps the spare's (labels cannot change).
    project: str | None = None
    # A spare: a stack started ahead of time, which the next `up` of a new stack of its kind
    # takes over (spares.py).
    spare: bool = False

    @property
    def compose_project(self) -> str:
        """The Compose project of the stack's containers, volumes and network."""
        return self.project or self.name

    @property
    def directories(self) -> list[str]:
        """Every directory using the stack, the one that made it first."""
        return [self.directory, *self.joined]

    def others(self, here: Path | str) -> list[str]:
        """The directories using the stack besides `here`."""
        return [d for d in self.directories if d != str(here)]


def generate_password(length: int = 24) -> str:
    """Random, URL-safe (it sits inside DATABASE_URL) and accepted by Hatchet's password
    rules (upper, lower and digit)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
        ):
            return candidate


class StackDir(TeamStore):
    """The files of one stack. Nothing here talks to Docker.

    Every file that holds a secret is refused, the same way, when others may read it.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.path = root / "stacks" / name
        self.name = name

    @property
    def compose_file(self) -> Path:
        return self.path / "compose.yaml"

    @property
    def secrets_file(self) -> Path:
        return self.path / "secrets.env"

    @property
    def record_file(self) -> Path:
        return self.path / "stack.json"

    @property
    def token_file(self) -> Path:
        return self.path / "token.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "locks" / f"{self.name}.lock"

    def secret_files(self) -> tuple[Path, ...]:
        return (self.secrets_file, self.token_file, *self.team_files())

    def exists(self) -> bool:
        return self.record_file.is_file()

    def load(self) -> StackRecord | None:
        text = read_text(self.record_file)
        if text is None:
            return None
        data = load_json(self.record_file, text)
        problem = _record_problem(data)
        if problem:
            raise ConfigError(
                f"{self.record_file}: not a stack record ({problem}); fix it, or "
                f"remove the stack with `hatchet-local destroy --stack {self.name}`"
            )
        return StackRecord(**data)

    def save(self, record: StackRecord) -> None:
        ensure_private_dir(self.path)
        atomic_write(self.record_file, json.dumps(asdict(record), indent=2) + "\n")

    def check_secret_files(self) -> None:
        """ConfigError, with the `chmod` to run, when a file of secrets is readable by others."""
        for path in self.secret_files():
            check_private(path)

    def secrets(self) -> dict[str, str]:
        """The stack's passwords, generated on first use and never changed afterwards.
        A file of secrets that others may read, or a line that is not one of our
        passwords, is refused (regenerating would lock the stack out of its own data)."""
        self.check_secret_files()
        ensure_private_dir(self.path)
        current = _parse_secrets(self.secrets_file, read_text(self.secrets_file) or "")
        missing = [name for name in SECRET_NAMES if not current.get(name)]
        if missing:
            current.update({name: generate_password() for name in missing})
            self._write_secrets(current)
        return {name: current[name] for name in SECRET_NAMES}

    def replace_secret(self, name: str, value: str) -> None:
        """One password replaced: a snapshot's admin password, which its data holds."""
        self._write_secrets({**self.secrets(), name: value})

    def _write_secrets(self, values: Mapping[str, str]) -> None:
        body = "".join(f"{name}={values[name]}\n" for name in SECRET_NAMES)
        atomic_write(self.secrets_file, "# generated by hatchet-local; keep private\n" + body)

    def applied(self) -> str | None:
        """The digest of the compose file the last complete `up` started."""
        text = read_text(self.path / "applied")
        return text.strip() if text else None

    def mark_applied(self, compose_digest: str) -> None:
        atomic_write(self.path / "applied", compose_digest + "\n")

    def rendered(self) -> str | None:
        """What the compose file was last rendered from (render.render_key) and the
        digest of what was written: while both hold, there is nothing to render."""
        text = read_text(self.path / "rendered")
        return text.strip() if text else None

    def mark_rendered(self, key: str) -> None:
        atomic_write(self.path / "rendered", key + "\n")

    @property
    def wiping_file(self) -> Path:
        return self.path / "wiping"

    def begin_wipe(self) -> None:
        """Mark the data as being wiped, until `forget_data` ends it: a wipe cut short (a
        SIGKILL between dropping the database and creating it anew, say) is then finished by
        the next `up` instead of leaving a stack that cannot start."""
        atomic_write(self.wiping_file, now_iso() + "\n")

    def wipe_pending(self) -> bool:
        return self.wiping_file.is_file()

    @property
    def embedded_notice_file(self) -> Path:
        """There once `up` has warned that the settings file shadows `from_embedded()`."""
        return self.path / "embedded-warned"

    def forget_data(self) -> None:
        """The tokens, logins and the record of what ran go with the data they belonged to;
        last, the mark of a wipe under way."""
        for path in (self.token_file, self.path / "applied", *self.team_files()):
            path.unlink(missing_ok=True)
        for note in NOTES:
            self.forget(note)
        self.wiping_file.unlink(missing_ok=True)

    # Small notes about the stack's data, each a file of one line (see NOTES).
    def note(self, name: str, text: str = "") -> None:
        assert name in NOTES, name
        ensure_private_dir(self.path)
        atomic_write(self.path / name, text + "\n")

    def noted(self, name: str) -> str | None:
        """The note's text ("" for a bare mark); None when there is no such note."""
        assert name in NOTES, name
        text = read_text(self.path / name)
        return None if text is None else text.strip()

    def forget(self, name: str) -> None:
        assert name in NOTES, name
        (self.path / name).unlink(missing_ok=True)

    def load_token(self) -> Token | None:
        data = self._secret_json(self.token_file, corrupt_ok=True)
        if set(data) != {f.name for f in fields(Token)} or not all(
            isinstance(value, str) and value for value in data.values()
        ):
            return None  # an unreadable token is re-minted, never trusted
        return Token(**data)

    def own_tokens(self) -> list[str]:
        token = self.load_token()
        return [token.token] if token else []

    def save_token(self, token: Token) -> None:
        ensure_private_dir(self.path)
        atomic_write(self.token_file, json.dumps(asdict(token)) + "\n")


def all_records(root: Path) -> Iterator[StackRecord]:
    """Every stack recorded under root; unreadable records are passed over."""
    stacks = root / "stacks"
    if not stacks.is_dir():
        return
    for child in sorted(stacks.iterdir()):
        try:
            record = StackDir(root, child.name).load()
        except ConfigError:
            continue
        if record is not None:
            yield record


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _parse_secrets(path: Path, text: str) -> dict[str, str]:
    """NAME=value lines of our secrets; comments and blank lines pass, anything else is an
    error naming the line (an empty value counts as missing and is generated)."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or key.strip() not in SECRET_NAMES:
            raise ConfigError(
                f"{path}: line {number}: expected NAME=password with NAME one of "
                f"{', '.join(SECRET_NAMES)}; fix the line (the stack's data needs these "
                f"passwords)"
            )
        values[key.strip()] = value.strip()
    return values


_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "directory": (str,),
    "created": (str,),
    "tool_version": (str,),
    "hatchet_version": (str,),
    "message_queue": (str,),
    "ports": (dict,),
    "expires": (str, type(None)),
    "advertise": (str, type(None)),
    "expose": (bool,),
    "joined": (list,),
    "project": (str, type(None)),
    "spare": (bool,),
}


def _record_problem(data: dict[str, Any]) -> str:
    """What makes `data` not a StackRecord, in words; "" when it is one."""
    optional = {f.name for f in fields(StackRecord) if f.default is not MISSING}
    optional |= {f.name for f in fields(StackRecord) if f.default_factory is not MISSING}
    missing = [key for key in _RECORD_TYPES if key not in data and key not in optional]
    if missing:
        return f"missing {', '.join(missing)}"
    for key, value in data.items():
        if key not in _RECORD_TYPES:
            return f"unknown key {key!r}"
        if not isinstance(value, _RECORD_TYPES[key]):
            return f"{key}: got {json.dumps(value)[:40]}"
    if not all(isinstance(d, str) for d in data.get("joined", [])):
        return f"joined: got {json.dumps(data['joined'])[:40]}"
    for key, port in data.get("ports", {}).items():
        if key not in ("dashboard", "grpc") or type(port) is not int or not 0 < port < 65536:
            return f"ports.{key}: got {json.dumps(port)[:40]}"
    return ""
