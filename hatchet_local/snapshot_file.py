"""The snapshot file: one uncompressed tar holding

    manifest.json    what it is: format, versions, where it came from, each member's sha256
    state.json       the stack's token, its tenants' tokens, logins and admin password
    config.tar       the engine's config volume (its keys)
    postgres.tar.gz  the database cluster, a physical copy (pg_basebackup)

It holds secrets: it is written 0600 and refused, like token.json, when others may read it.
It is written beside its target and renamed over it, so a save cut short leaves the old file
(or none). Reading verifies every member against the manifest before anything is changed:
a file cut short or changed since it was saved is refused, as is anything else.

Named snapshots live in <state root>/snapshots/<name>.tar; a path with a `/`, or ending in
`.tar`, is a file of the user's.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any, cast

from hatchet_local.errors import ConfigError, SnapshotUnusable
from hatchet_local.fsutil import PRIVATE_FILE, ensure_private_dir, replacing, write_error

FORMAT = "hatchet-local-snapshot"
FORMAT_VERSION = 1
MANIFEST, STATE, CONFIG, DATABASE = "manifest.json", "state.json", "config.tar", "postgres.tar.gz"
MEMBERS = (STATE, CONFIG, DATABASE)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True)
class Manifest:
    format: str
    format_version: int
    created: str
    tool_version: str
    stack: str  # the stack it was saved from
    hatchet_version: str  # the data's version: a stack on an older Hatchet cannot read it
    postgres_major: int  # a physical copy starts only on the same major version
    message_queue: str
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> sha256, size

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def snapshots_dir(root: Path) -> Path:
    return root / "snapshots"


def is_file_argument(target: str) -> bool:
    """A path (`./team.tar`, `/tmp/x.tar`, `team.tar`) rather than a snapshot's name."""
    return "/" in target or target.endswith(".tar")


def locate(root: Path, target: str) -> Path:
    """The file a NAME or a FILE argument means; a bad name is a ConfigError."""
    if is_file_argument(target):
        return Path(target).expanduser()
    if not NAME.fullmatch(target):
        raise ConfigError(
            f"snapshot name {target!r}: use letters, digits, `.`, `_` and `-` (up to 63), "
            f"or give a file path with a `/`"
        )
    return snapshots_dir(root) / f"{target}.tar"


class _Hashing(io.RawIOBase):
    """A writer that hashes and counts what passes through it into `out`."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)


class Writer:
    """The members of a snapshot being written, in a private directory beside the target."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.sums: dict[str, dict[str, Any]] = {}

    @contextmanager
    def member(self, name: str, *, gzipped: bool = False) -> Iterator[IO[bytes]]:
        """A binary stream the member's bytes are written to."""
        with (self.workdir / name).open("wb") as out:
            hashing = _Hashing(out)
            if gzipped:
                with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=1, mtime=0) as gz:
                    yield gz  # type: ignore[misc]
            else:
                yield hashing  # type: ignore[misc]
            out.flush()
            os.fsync(out.fileno())
        self.sums[name] = {"sha256": hashing.sha.hexdigest(), "size": hashing.size}


@contextmanager
def writing(target: Path, *, overwrite: bool) -> Iterator[Writer]:
    """Write a snapshot to `target`: members into a private temporary directory beside
    it, then one tar renamed over the target. Nothing is left behind when interrupted."""
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; add --force to replace it, or choose another name")
    if target.is_dir():
        raise ConfigError(f"{target}: is a directory, expected a file")
    folder = target.parent
    if not folder.is_dir():
        raise ConfigError(f"{target}: the folder {folder} does not exist")
    try:
        workdir = Path(tempfile.mkdtemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as exc:
        raise write_error(target, exc) from exc
    try:
        writer = Writer(workdir)
        try:
            yield writer
        except OSError as exc:
            raise write_error(target, exc) from exc
    except BaseException:
        _remove_tree(workdir)
        raise
    _remove_tree(workdir)


def finish(writer: Writer, manifest: Manifest, target: Path) -> int:
    """Put the members and the manifest into one tar, 0600 from the start, renamed over
    `target`; returns its size."""
    manifest = dataclasses.replace(manifest, members=writer.sums)
    data = json.dumps(manifest.as_dict(), indent=2).encode() + b"\n"
    with (
        replacing(target) as out,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, MANIFEST, io.BytesIO(data), len(data))
        for name in MEMBERS:
            with (writer.workdir / name).open("rb") as member:
                _add(tar, name, member, writer.sums[name]["size"])
    return target.stat().st_size


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, PRIVATE_FILE
    tar.addfile(info, data)


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        child.unlink(missing_ok=True)
    path.rmdir()


# --- reading ---------------------------------------------------------------------------------


def check_private(path: Path) -> None:
    """A snapshot holds secrets: refused when others may read it, as token.json is."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SnapshotUnusable(f"{path}: no such snapshot file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise SnapshotUnusable(f"{path}: not a snapshot (not a file)")
    if mode & 0o077:
        raise ConfigError(
            f"{path}: a snapshot holds secrets but others may read it (mode "
            f"{stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )


@contextmanager
def reading(path: Path) -> Iterator[tuple[Manifest, tarfile.TarFile]]:
    """A verified snapshot: its manifest, and the tar to read its members from. Every
    member is read and checked first; a file that fails any check is SnapshotUnusable."""
    check_private(path)
    try:
        with tarfile.open(path, mode="r:") as tar:
            manifest = _manifest(tar, path)
            _verify(tar, manifest, path)
            yield manifest, tar
    except (tarfile.ReadError, EOFError) as exc:
        raise SnapshotUnusable(f"{path}: not a snapshot, or cut short ({exc})") from exc


def _manifest(tar: tarfile.TarFile, path: Path) -> Manifest:
    first = tar.next()
    if first is None or first.name != MANIFEST:
        raise SnapshotUnusable(f"{path}: not a hatchet-local snapshot (no manifest)")
    extracted = tar.extractfile(first)
    try:
        data = json.loads(extracted.read() if extracted else b"")
    except ValueError:
        data = None
    names = {f.name for f in fields(Manifest)}
    if not isinstance(data, dict) or data.get("format") != FORMAT or set(data) != names:
        raise SnapshotUnusable(f"{path}: not a hatchet-local snapshot (unknown manifest)")
    if data["format_version"] != FORMAT_VERSION:
        raise SnapshotUnusable(
            f"{path}: snapshot format {data['format_version']}; this hatchet-local reads "
            f"format {FORMAT_VERSION} (update hatchet-local)"
        )
    return Manifest(**data)


def _verify(tar: tarfile.TarFile, manifest: Manifest, path: Path) -> None:
    found = {}
    for info in tar:
        stream = tar.extractfile(info)
        sha = hashlib.sha256()
        size = 0
        while stream is not None and (chunk := stream.read(1 << 20)):
            sha.update(chunk)
            size += len(chunk)
        found[info.name] = {"sha256": sha.hexdigest(), "size": size}
    for name in MEMBERS:
        if name not in found:
            raise SnapshotUnusable(f"{path}: cut short or not a snapshot (no {name})")
        if found[name] != manifest.members.get(name):
            raise SnapshotUnusable(
                f"{path}: {name} does not match its checksum: the file was changed or "
                f"damaged since it was saved"
            )


def member(tar: tarfile.TarFile, name: str, *, decompress: bool = True) -> IO[bytes]:
    """A member's bytes (a .gz member uncompressed as it is read, unless not `decompress`)."""
    stream = tar.extractfile(name)
    assert stream is not None
    if name.endswith(".gz") and decompress:
        return cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
    return stream


def read_manifest(path: Path) -> Manifest | None:
    """The manifest alone, unverified (for listings); None when it is not readable."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            return _manifest(tar, path)
    except (OSError, tarfile.TarError, EOFError, SnapshotUnusable):
        return None


def named(root: Path) -> list[Path]:
    folder = snapshots_dir(root)
    return sorted(folder.glob("*.tar")) if folder.is_dir() else []


def private_folder(root: Path) -> Path:
    return ensure_private_dir(snapshots_dir(root))
