"""Snapshots of a whole stack: `snapshot save|load|ls|rm` and `up --snapshot`.

A snapshot holds the database cluster (a physical copy: the Postgres major version must
match), the engine's config volume (its keys), the stack's token, its tenants' tokens, the
logins `user create` made and the admin password its data expects; and it says which Hatchet
version made the data. A team lead saves a stack with workflows, crons and runs; every
developer and CI job starts a stack of their own from it (`up --snapshot`), or replaces a
stack's data with it (`snapshot load`). Each stack keeps its own Postgres password (set
before anything connects) and its own ports; a token of the snapshot works where the server
URL is the same (the stack it was saved from), elsewhere `up` mints one.

The format is in snapshot_file.py. Loading checks everything first and changes nothing when
a check fails; the swap of the data holds interrupts back until it is done.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from hatchet_local import __version__, postgres, provision, snapshot_file, startup
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import ENGINE_SERVICE
from hatchet_local.docker import require_ok
from hatchet_local.errors import ConfigError, SnapshotUnusable, VersionConflict
from hatchet_local.runner import child_env
from hatchet_local.signals import interrupts_deferred
from hatchet_local.snapshot_file import CONFIG, DATABASE, STATE, Manifest
from hatchet_local.stack import Stack, load_stack, stack_lock, version_key
from hatchet_local.state import SECRET_NAMES, StackDir
from hatchet_local.team_state import TenantToken, Token

ADMIN = "HATCHET_ADMIN_PASSWORD"


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot, as `snapshot save` and `snapshot ls` show it."""

    name: str  # its name, or the file's path
    path: str
    size: int
    created: str
    stack: str
    hatchet_version: str
    postgres_major: int
    message_queue: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _info(name: str, path: Path, manifest: Manifest) -> SnapshotInfo:
    return SnapshotInfo(name, str(path), path.stat().st_size, manifest.created, manifest.stack,
                        manifest.hatchet_version, manifest.postgres_major,
                        manifest.message_queue)  # fmt: skip


# --- save ------------------------------------------------------------------------------------


def save(config: Config, ctx: Context, target: str, *, force: bool = False) -> SnapshotInfo:
    """Save the stack's whole state to a named snapshot or a file (0600), while it runs."""
    path = snapshot_file.locate(ctx.state_root, target)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; add --force to replace it, or choose another name")
    load_stack(config, ctx, create=False)  # no such stack: say so before taking its lock
    if not snapshot_file.is_file_argument(target):
        snapshot_file.private_folder(ctx.state_root)
    with stack_lock(ctx, config.stack):
        stack = load_stack(config, ctx, create=False)
        states = {s.service: s.state for s in stack.compose.ps()}
        if states.get("postgres") != "running" or ENGINE_SERVICE not in states:
            raise ConfigError(f"stack {config.stack} is not running; `hatchet-local up` first")
        manifest = Manifest(
            format=snapshot_file.FORMAT, format_version=snapshot_file.FORMAT_VERSION,
            created=datetime.now(UTC).replace(microsecond=0).isoformat(),
            tool_version=__version__, stack=config.stack,
            hatchet_version=stack.record.hatchet_version,
            postgres_major=postgres.server_major(stack.compose),
            message_queue=stack.record.message_queue,
        )  # fmt: skip
        with snapshot_file.writing(path, overwrite=force) as writer:
            provision.drop_spare(stack)
            with ctx.console.phase("database"), writer.member(DATABASE, gzipped=True) as out:
                postgres.basebackup(stack.compose, out)
            with ctx.console.phase("engine config"), writer.member(CONFIG) as out:
                container = stack.compose.container_name(ENGINE_SERVICE)
                copy = ctx.runner.stream(["docker", "cp", f"{container}:/config", "-"], sink=out)
                require_ok(copy, "copying the engine's config volume", ctx.runner)
            with writer.member(STATE) as out:
                out.write(json.dumps(_state(stack), indent=2).encode())
            snapshot_file.finish(writer, manifest, path)
    return _info(path.stem if not snapshot_file.is_file_argument(target) else str(path), path,
                 manifest)  # fmt: skip


def _state(stack: Stack) -> dict[str, object]:
    token = stack.dir.load_token()
    return {
        "token": asdict(token) if token else None,
        "tenants": {slug: asdict(t) for slug, t in stack.dir.tenant_tokens().items()},
        "users": stack.dir.user_passwords(),
        "admin_password": stack.secrets[ADMIN],
    }


# --- load --------------------------------------------------------------------------------------


def check_loadable(config: Config, ctx: Context, path: Path) -> Manifest:
    """The snapshot's manifest once every member checks out and this configuration can run
    its data; SnapshotUnusable or VersionConflict otherwise."""
    with snapshot_file.reading(path) as (manifest, _):
        pass
    _check_version(manifest, config)
    return manifest


def _check_version(manifest: Manifest, config: Config) -> None:
    """A Hatchet older than the one that made the data cannot read it."""
    have, want = version_key(manifest.hatchet_version), version_key(config.hatchet_version)
    if have and want and want < have:
        raise VersionConflict(
            f"the snapshot holds data of Hatchet {manifest.hatchet_version} (from stack "
            f"{manifest.stack}), which {config.hatchet_version} cannot read: set "
            f"hatchet_version: {manifest.hatchet_version} or newer"
        )


class SnapshotSeed:
    """A snapshot as the seed of a new stack (`up --snapshot`)."""

    def __init__(self, path: Path, label: str, manifest: Manifest) -> None:
        self.path = path
        self.label = label
        self.hatchet_version = manifest.hatchet_version

    def unpack(self, stack: Stack, ctx: Context) -> None:
        with snapshot_file.reading(self.path) as (manifest, tar):
            _check_major(stack.spec.images["postgres"], stack.record.name, ctx, manifest)
            _unpack(stack, ctx, tar)


def seed(config: Config, ctx: Context, target: str) -> SnapshotSeed:
    """The snapshot `target` names, checked, for `up --snapshot`: before anything is
    written, that it is whole and that this configuration's Hatchet and Postgres can run it."""
    path = _existing(ctx, target)
    if StackDir(ctx.state_root, config.stack).applied() is not None:
        raise ConfigError(
            f"stack {config.stack} already has data; `hatchet-local snapshot load {target}` "
            f"replaces it, or start a new stack with --stack"
        )
    manifest = check_loadable(config, ctx, path)
    _check_major(config.image("postgres"), config.stack, ctx, manifest)
    return SnapshotSeed(path, f"snapshot {target}", manifest)


def load(config: Config, ctx: Context, target: str) -> startup.UpResult:
    """Replace the stack's data with the snapshot's, then start it. Nothing changes until
    the snapshot has checked out; the swap itself finishes before an interrupt is taken."""
    path = _existing(ctx, target)
    with snapshot_file.reading(path) as (manifest, tar):  # checked before Docker is asked
        _check_version(manifest, config)
        load_stack(config, ctx, create=False)
        with stack_lock(ctx, config.stack):
            stack = load_stack(config, ctx, create=False)
            _check_major(stack.spec.images["postgres"], stack.record.name, ctx, manifest)
            with ctx.console.phase("load snapshot"):
                stack.compose.down()  # the containers go; the data stays until the swap
                with interrupts_deferred():
                    stack.dir.note("data-pending", f"snapshot {target}")
                    volumes = [f"{stack.compose.project}_{v}" for v in
                               ("postgres_data", "hatchet_config", "rabbitmq_data")]  # fmt: skip
                    _shielded(ctx, ["docker", "volume", "rm", "--force", *volumes],
                              "removing the stack's data volumes")  # fmt: skip
                    _shielded(ctx, stack.compose.argv("up", "--no-start", "--no-deps",
                                                      "postgres", ENGINE_SERVICE),
                              "creating the stack's containers", compose_env=True)  # fmt: skip
                    _unpack(stack, ctx, tar)
            return startup.up_locked(config, ctx)


def _check_major(ref: str, stack: str, ctx: Context, manifest: Manifest) -> None:
    """A physical copy starts only on its own Postgres major version."""
    image = ctx.docker.image(ref)
    major = postgres.image_major(image) if image is not None else None
    if major is not None and major != manifest.postgres_major:
        raise SnapshotUnusable(
            f"the snapshot's database is Postgres {manifest.postgres_major}; stack {stack} "
            f"runs Postgres {major} ({ref}): use an image of Postgres {manifest.postgres_major}"
        )


def _unpack(stack: Stack, ctx: Context, tar: tarfile.TarFile) -> None:
    """The snapshot's volumes and state into the stack, whose containers exist and do not
    run (`up --snapshot` made them with the rest of the stack's; `load` after removing the
    old data). Both noted `data-pending` before the volumes were made."""
    compose = stack.compose
    engine = compose.container_name(ENGINE_SERVICE)
    config = ctx.runner.stream(["docker", "cp", "-", f"{engine}:/"],
                               source=snapshot_file.member(tar, CONFIG))  # fmt: skip
    require_ok(config, "unpacking the engine's config volume", ctx.runner)
    stack.dir.note("password-pending")  # the copy's role has the saving stack's password
    # Gzipped as it is: Docker's archive upload unpacks a gzipped tar itself.
    postgres.restore(compose, snapshot_file.member(tar, DATABASE, decompress=False))
    _apply_state(stack, json.loads(snapshot_file.member(tar, STATE).read()))
    stack.dir.forget("pristine-pending")  # the snapshot carries its own pristine copy
    stack.dir.forget("data-pending")


def _apply_state(stack: Stack, state: dict[str, object]) -> None:
    """The snapshot's token, tenant tokens and logins; its admin password (the data's)."""
    for path in (stack.dir.token_file, stack.dir.tenants_file, stack.dir.users_file):
        path.unlink(missing_ok=True)  # what the old data needed goes with it
    token = state.get("token")
    if isinstance(token, dict):
        stack.dir.save_token(Token(**token))
    tenants = state.get("tenants") or {}
    if isinstance(tenants, dict) and tenants:
        stack.dir.save_tenant_tokens({s: TenantToken(**t) for s, t in tenants.items()})
    users = state.get("users") or {}
    for email, password in users.items() if isinstance(users, dict) else ():
        stack.dir.save_user_password(str(email), str(password))
    if isinstance(state.get("admin_password"), str):
        stack.dir.replace_secret(ADMIN, str(state["admin_password"]))


def _shielded(ctx: Context, argv: list[str], what: str, *, compose_env: bool = False) -> None:
    """A command in its own process group: a Ctrl-C at the terminal does not cut it off."""
    env = child_env(SECRET_NAMES) if compose_env else None
    require_ok(ctx.runner.stream(argv, env=env, source=io.BytesIO(b"")), what, ctx.runner)


def _existing(ctx: Context, target: str) -> Path:
    path = snapshot_file.locate(ctx.state_root, target)
    if not path.exists() and not snapshot_file.is_file_argument(target):
        raise SnapshotUnusable(
            f"no snapshot named {target}; `hatchet-local snapshot ls` lists them"
        )
    return path


# --- ls, rm ----------------------------------------------------------------------------------


def list_snapshots(ctx: Context) -> list[SnapshotInfo]:
    """The named snapshots of this machine (unreadable files left out)."""
    found = []
    for path in snapshot_file.named(ctx.state_root):
        manifest = snapshot_file.read_manifest(path)
        if manifest is not None:
            found.append(_info(path.stem, path, manifest))
    return found


def remove(ctx: Context, name: str) -> Path:
    path = snapshot_file.locate(ctx.state_root, name)
    if snapshot_file.is_file_argument(name):
        raise ConfigError(f"snapshot rm {name}: only named snapshots are removed; delete a "
                          f"file of yours with rm")  # fmt: skip
    if not path.is_file():
        raise SnapshotUnusable(f"no snapshot named {name}; `hatchet-local snapshot ls` lists them")
    path.unlink()
    return path
