"""The snapshot file: written whole and private, read back only when every member checks out;
and the small pieces of Postgres and partition handling that go with it."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import io
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from hatchet_local import snapshot_file
from hatchet_local.docker import Image
from hatchet_local.errors import ConfigError, SnapshotUnusable
from hatchet_local.partitions import pg_timestamp as partition_timestamp
from hatchet_local.postgres import image_major, scram_verifier
from hatchet_local.snapshot_file import CONFIG, DATABASE, MANIFEST, STATE, Manifest

MANIFEST_BASE = Manifest(
    format=snapshot_file.FORMAT, format_version=snapshot_file.FORMAT_VERSION,
    created="2026-11-29T12:00:00+00:00", tool_version="0.1.0", stack="lead",
    hatchet_version="v0.101.27", postgres_major=15, message_queue="rabbitmq",
)  # fmt: skip
CONTENT = {STATE: b'{"token": null}', CONFIG: b"config tar " * 100, DATABASE: b"pg " * 5000}


def write(target: Path, **manifest: Any) -> int:
    with snapshot_file.writing(target, overwrite=False) as writer:
        for name, data in CONTENT.items():
            with writer.member(name, gzipped=name.endswith(".gz")) as out:
                out.write(data)
        return snapshot_file.finish(writer, dataclasses.replace(MANIFEST_BASE, **manifest), target)


def test_a_snapshot_is_written_private_and_read_back_whole(tmp_path: Path) -> None:
    target = tmp_path / "team.tar"
    size = write(target)
    assert size == target.stat().st_size
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["team.tar"]  # no temporary left
    with snapshot_file.reading(target) as (manifest, tar):
        assert dataclasses.replace(manifest, members={}) == MANIFEST_BASE
        assert set(manifest.members) == {STATE, CONFIG, DATABASE}
        for name, data in CONTENT.items():
            assert snapshot_file.member(tar, name).read() == data  # the .gz one unpacked
        # As stored, for Docker's archive upload, which unpacks a gzipped tar itself.
        stored = snapshot_file.member(tar, DATABASE, decompress=False).read()
        assert stored[:2] == b"\x1f\x8b" and gzip.decompress(stored) == CONTENT[DATABASE]
    with tarfile.open(target) as tar:
        assert tar.getnames()[0] == MANIFEST  # first: "not a snapshot" is told at once


def test_an_existing_snapshot_is_not_replaced_without_being_asked(tmp_path: Path) -> None:
    target = tmp_path / "team.tar"
    target.write_bytes(b"the old one")
    with pytest.raises(ConfigError, match="exists; add --force"):
        write(target)
    assert target.read_bytes() == b"the old one"


def test_a_save_cut_short_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "team.tar"
    with pytest.raises(KeyboardInterrupt), snapshot_file.writing(target, overwrite=True) as w:
        with w.member(DATABASE, gzipped=True) as out:
            out.write(b"half a database")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("member", [STATE, CONFIG, DATABASE])
def test_a_member_changed_since_the_save_is_refused(tmp_path: Path, member: str) -> None:
    target = tmp_path / "team.tar"
    write(target)
    with tarfile.open(target) as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar}  # type: ignore[union-attr]
    members[member] = members[member][:-1] + bytes([members[member][-1] ^ 1])
    forged = tmp_path / "forged.tar"
    with tarfile.open(forged, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    forged.chmod(0o600)
    with (
        pytest.raises(SnapshotUnusable, match=f"{member} does not match its checksum"),
        snapshot_file.reading(forged),
    ):
        pass


def test_cut_short_foreign_or_other_format(tmp_path: Path) -> None:
    target = tmp_path / "team.tar"
    write(target)
    data = target.read_bytes()
    cases = {
        "cut.tar": data[: data.rindex(DATABASE.encode()) + 600],
        "text.tar": b"not a tar at all\n" * 100,
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        path.chmod(0o600)
        with pytest.raises(SnapshotUnusable, match="not a snapshot"), snapshot_file.reading(path):
            pass
    newer = tmp_path / "newer.tar"
    write(newer, format_version=9)
    with (
        pytest.raises(SnapshotUnusable, match="snapshot format 9; this hatchet-local reads"),
        snapshot_file.reading(newer),
    ):
        pass


def test_a_snapshot_others_may_read_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "team.tar"
    write(target)
    target.chmod(0o640)
    with (
        pytest.raises(ConfigError, match=r"others may read it \(mode 0640\); run `chmod 600"),
        snapshot_file.reading(target),
    ):
        pass


def test_names_and_files(tmp_path: Path) -> None:
    root = tmp_path / "state"
    assert snapshot_file.locate(root, "team-1.2") == root / "snapshots" / "team-1.2.tar"
    assert snapshot_file.locate(root, "./team.tar") == Path("team.tar")
    assert snapshot_file.locate(root, "team.tar") == Path("team.tar")  # a file of the user's
    assert snapshot_file.locate(root, "/tmp/x") == Path("/tmp/x")
    for bad in ("a b", "-x", "", "x" * 64):
        with pytest.raises(ConfigError, match="snapshot name"):
            snapshot_file.locate(root, bad)
    folder = snapshot_file.private_folder(root)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    write(folder / "team.tar")
    (folder / "junk.tar").write_bytes(b"junk")
    assert snapshot_file.named(root) == [folder / "junk.tar", folder / "team.tar"]
    assert snapshot_file.read_manifest(folder / "junk.tar") is None
    manifest = snapshot_file.read_manifest(folder / "team.tar")
    assert manifest is not None and manifest.stack == "lead"


# --- Postgres ----------------------------------------------------------------------------------

# Made by Postgres 15 for `CREATE ROLE x PASSWORD 'pencil'`: the same salt must give the same.
POSTGRES_MADE = (
    "SCRAM-SHA-256$4096:F8Z0vHGByiwVUzdUelDR/w==$RWjFskAdFIWZBqu0/uFjNvoqMSKNvLEvZi57ApAvOp8=:"
    "fjfCQ9uQdRwpr7aEXYgbpyFFemymQveFwQLydJ7am3A="
)


def test_the_scram_verifier_is_the_one_postgres_makes() -> None:
    salt = base64.b64decode("F8Z0vHGByiwVUzdUelDR/w==")
    assert scram_verifier("pencil", salt) == POSTGRES_MADE
    assert scram_verifier("pencil") != scram_verifier("pencil")  # a new salt each time
    assert "pencil" not in scram_verifier("pencil")


def test_the_postgres_major_an_image_says() -> None:
    assert image_major(Image("sha256:1", ("PG_MAJOR=16", "PATH=/usr/bin"))) == 16
    assert image_major(Image("sha256:2", ("PATH=/usr/lib/postgresql/15/bin:/usr/bin",))) == 15
    assert image_major(Image("sha256:3", ("PATH=/usr/bin",))) is None


def test_partition_times_for_postgres() -> None:
    assert partition_timestamp(None) == "infinity"  # no engine runs: every partition is dead
    assert partition_timestamp("") == "-infinity"  # Docker did not say: none is known dead
    assert partition_timestamp("2026-11-29T22:53:01.123456789Z") == "2026-11-29 22:53:01.123456"
    assert partition_timestamp("2026-11-29T22:53:01Z") == "2026-11-29 22:53:01.000000"
