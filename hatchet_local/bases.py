"""Pre-migrated bases: a new stack skips `initdb` and every migration.

Both are the same for every stack of one Hatchet image, Postgres image and message queue, so
the first stack of a kind on a machine keeps its database as it stands right after the
migrations, before its `setup` (a physical copy made by `pg_basebackup`, taken with no
password on the role), and every later stack of that kind starts from a copy of it. Each
stack then sets its own Postgres password before anything connects, and its own `setup` makes
its own keys, admin, tenant and token: a base holds the schema and nothing secret of any
stack. A base is found by the ids of the images it was made with, so a base made by another
Hatchet version (or another Postgres build) is never used.

<state root>/bases/<key>.tar    the copy: a tar of the data directory
<state root>/bases/<key>.json   what it is (versions, images, queue, when, size)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from hatchet_local import postgres
from hatchet_local.context import Context
from hatchet_local.defaults import ENGINE_SERVICE
from hatchet_local.errors import DockerUnavailable, HatchetLocalError, Interrupted
from hatchet_local.fsutil import atomic_write, ensure_private_dir, read_text, replacing
from hatchet_local.stack import Stack
from hatchet_local.state import now_iso

FORMAT = 1  # of a base; a new format makes new keys


@dataclass(frozen=True)
class Base:
    """One kind of stack, and (once kept) its base."""

    key: str
    hatchet_version: str
    hatchet_image: str
    hatchet_image_id: str
    postgres_image: str
    postgres_image_id: str
    message_queue: str
    created: str = ""
    size: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def bases_dir(root: Path) -> Path:
    return root / "bases"


def archive(root: Path, key: str) -> Path:
    return bases_dir(root) / f"{key}.tar"


def kind_of(stack: Stack, ctx: Context, hatchet_version: str) -> Base | None:
    """The kind of `stack`: what its base would be made with. None when an image is not
    on this engine (nothing to key a base by)."""
    refs = stack.spec.images
    lite, pg = ctx.docker.image(refs[ENGINE_SERVICE]), ctx.docker.image(refs["postgres"])
    if lite is None or pg is None:
        return None
    queue = stack.record.message_queue
    key = hashlib.sha256(f"{FORMAT}|{lite.id}|{pg.id}|{queue}".encode()).hexdigest()[:20]
    return Base(key, hatchet_version, refs[ENGINE_SERVICE], lite.id, refs["postgres"], pg.id,
                queue)  # fmt: skip


def find(root: Path, kind: Base) -> Path | None:
    """The base of this kind, when one was kept."""
    path = archive(root, kind.key)
    return path if path.is_file() and _load(path.with_suffix(".json")) is not None else None


def keep(stack: Stack, ctx: Context, kind: Base) -> Base | None:
    """Keep the stack's database, which its migrations just made, as the base of its kind.
    Called between the migrations and `setup`, with nothing connected. A base that cannot
    be written (a full disk, say) is only a warning: the next stack pays full price too."""
    ensure_private_dir(bases_dir(ctx.state_root))
    target = archive(ctx.state_root, kind.key)
    stack.dir.note("password-pending")  # the next `up` sets it, whatever happens here
    postgres.clear_password(stack.compose)
    kept: Base | None = None
    try:
        size = _write_copy(stack, target)
        kept = Base(**{**asdict(kind), "created": now_iso(), "size": size})
        atomic_write(target.with_suffix(".json"), json.dumps(kept.as_dict(), indent=2) + "\n")
    except (Interrupted, DockerUnavailable):
        raise
    except HatchetLocalError as exc:  # pg_basebackup failed, or the disk is full
        target.unlink(missing_ok=True)
        ctx.console.warn(f"no base kept ({exc.message}); the next stack of this kind pays "
                         f"full price too")  # fmt: skip
    postgres.set_password(stack.compose, stack.secrets["HATCHET_POSTGRES_PASSWORD"])
    stack.dir.forget("password-pending")
    return kept


def _write_copy(stack: Stack, target: Path) -> int:
    """pg_basebackup into a private temporary file beside `target`, then renamed: a copy
    cut short never looks like a base."""
    with replacing(target) as out:
        postgres.basebackup(stack.compose, out)
    return target.stat().st_size


def all_bases(root: Path) -> list[Base]:
    """Every base kept under `root`; unreadable descriptions are passed over."""
    folder = bases_dir(root)
    if not folder.is_dir():
        return []
    found = (_load(path) for path in sorted(folder.glob("*.json")))
    return [base for base in found if base is not None and archive(root, base.key).is_file()]


def stale_bases(root: Path, ctx: Context) -> list[Base]:
    """Bases no stack can use any more: their Hatchet or Postgres image is gone from this
    engine or its tag now names another image (another Hatchet version, say)."""
    stale = []
    for base in all_bases(root):
        lite = ctx.docker.image(base.hatchet_image)
        pg = ctx.docker.image(base.postgres_image)
        if lite is None or pg is None or (lite.id, pg.id) != (
            base.hatchet_image_id, base.postgres_image_id):  # fmt: skip
            stale.append(base)
    return stale


def remove(root: Path, base: Base) -> None:
    archive(root, base.key).unlink(missing_ok=True)
    archive(root, base.key).with_suffix(".json").unlink(missing_ok=True)


def _load(path: Path) -> Base | None:
    try:
        data = json.loads(read_text(path) or "null")
    except (ValueError, HatchetLocalError):
        return None
    names = {f.name for f in fields(Base)}
    if not isinstance(data, dict) or set(data) != names:
        return None
    return Base(**data)
