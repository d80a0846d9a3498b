"""Bases, a reset that keeps the token, and snapshots (issue #13), on real stacks.

One state directory serves the module: its first stack makes the base, the later ones start
from it. Each test takes the stacks it needs from the fixtures; everything the module made
is removed at the end, and checked.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hatchet_local import resets, snapshot_file
from hatchet_local.state import StackDir
from tests.support.stacks import Project, SdkWorker, labelled, probe, workflow_names

pytestmark = pytest.mark.e2e


@dataclass
class Lab:
    root: Path
    projects: list[Project] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.root / "state"

    def project(self, name: str) -> Project:
        stack = f"{name}-{uuid.uuid4().hex[:6]}"
        project = Project(self.root / f"app-{stack}", self.state, f"stack: {stack}\n")
        self.projects.append(project)
        return project


def stack_of(project: Project) -> str:
    config = (project.dir / "hatchet-local.yaml").read_text()
    return next(line.split(":", 1)[1].strip() for line in config.splitlines()
                if line.startswith("stack:"))  # fmt: skip


def inventory(project: Project) -> dict[str, Any]:
    return dict(json.loads(probe(project.dir, "inventory", "-").strip().splitlines()[-1]))


def database_identity(project: Project) -> str:
    """A marker of the database as it stands: its oid (a new database, a new oid)."""
    result = subprocess.run(
        ["docker", "exec", f"{stack_of(project)}-postgres-1", "psql", "-U", "hatchet", "-d",
         "hatchet", "-tAc", "SELECT oid FROM pg_database WHERE datname = 'hatchet'"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def sql(project: Project, query: str) -> str:
    result = subprocess.run(
        ["docker", "exec", f"{stack_of(project)}-postgres-1", "psql", "-U", "hatchet", "-d",
         "hatchet", "-tAc", query], capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


# The next reset's copy exists and was made from the pristine database of the stack.
SPARE_FITS = (
    "SELECT shobj_description(s.oid, 'pg_database') = 'copy of ' || p.oid FROM pg_database s, "
    "pg_database p WHERE s.datname = 'hatchet_spare' AND p.datname = 'hatchet_pristine'"
)


def wait_until_only_one_worker_is_connected(project: Project, timeout: float = 90) -> None:
    """A worker stopped a moment ago (the previous test's) counts as running until the engine
    has seen its stream close, or its last heartbeat is older than resets.LIVE: a reset then
    would rightly keep its workflow too."""
    query = (
        'SELECT count(*) FROM "Worker" WHERE "isActive" AND "deletedAt" IS NULL '
        f"AND \"lastHeartbeatAt\" > NOW() - INTERVAL '{resets.LIVE}'"
    )
    deadline = time.monotonic() + timeout
    while sql(project, query) != "1":
        assert time.monotonic() < deadline, "an earlier worker still counts as connected"
        time.sleep(1)


@pytest.fixture(scope="module")
def lab(rig_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    made = Lab(tmp_path_factory.mktemp("snapshots"))
    yield made
    for project in made.projects:
        project.hl("destroy", "--yes", ok=False)
    for project in made.projects:
        assert labelled(f"io.hatchet-local.stack={stack_of(project)}") == {
            "containers": [], "volumes": [], "networks": [],
        }  # fmt: skip


@dataclass(frozen=True)
class Origin:
    """The first stack of the module: a workflow with a worker gone, an API cron, a run."""

    project: Project
    workflow: str
    cron: str
    first_up: str  # its `up`'s progress


@pytest.fixture(scope="module")
def origin(lab: Lab) -> Origin:
    project = lab.project("origin")
    first_up = project.hl("up").stderr
    workflow, cron = f"wf-{uuid.uuid4().hex[:6]}", f"nightly-{uuid.uuid4().hex[:4]}"
    assert project.run_task(workflow)["task"] == workflow  # a finished run; the worker ends
    probe(project.dir, "cron", workflow, cron)
    return Origin(project, workflow, cron, first_up)


@pytest.fixture(scope="module")
def second(lab: Lab, origin: Origin) -> tuple[Project, str]:
    """A second stack of the same kind, in another directory: from the base."""
    project = lab.project("second")
    return project, project.hl("up").stderr


def test_the_first_stack_pays_full_price_and_keeps_a_base(origin: Origin, lab: Lab) -> None:
    assert "-> migrate job" in origin.first_up
    assert "ran initdb and every migration; keeping its database as a base" in origin.first_up
    (base,) = (lab.state / "bases").glob("*.tar")
    assert stat.S_IMODE(base.stat().st_mode) == 0o600


def test_a_second_stack_starts_from_the_base_and_runs_a_task(
    second: tuple[Project, str], origin: Origin
) -> None:
    project, up = second
    assert "-> database from base" in up
    assert "-> migrate job" not in up  # the base is migrated
    assert "keeping its database as a base" not in up  # said once, by the first stack
    assert "-> setup job" in up  # its own keys, admin, tenant
    # Its copied data folder was flushed by the server's recovery with one syncfs.
    assert sql(project, "SHOW recovery_init_sync_method") == "syncfs"
    name = f"base-{uuid.uuid4().hex[:6]}"
    assert project.run_task(name) == {"echo": "HELLO", "task": name}
    # Nothing of the first stack's data came along.
    assert origin.workflow not in workflow_names(project.env_file())


def test_reset_keeps_the_token_and_a_running_worker(second: tuple[Project, str]) -> None:
    """A worker left running across `reset` completes the next task without a restart; the
    settings file is not rewritten; runs, API crons and extra tenants are gone."""
    project, _ = second
    settings_file = project.dir / ".env.hatchet"
    name = f"kept-{uuid.uuid4().hex[:6]}"
    with SdkWorker(project.dir, name).start() as worker:
        assert json.loads(probe(project.dir, "run", name, "before"))["echo"] == "BEFORE"
        probe(project.dir, "cron", name, "gone-after-reset")
        project.hl("tenant", "create", "extra-team")
        before = inventory(project)
        assert before["runs"] >= 2 and before["crons"] == ["gone-after-reset"]
        written = settings_file.read_bytes(), settings_file.stat().st_mtime_ns
        wait_until_only_one_worker_is_connected(project)
        reset = project.hl("reset", "--yes")
        assert "-> restore" in reset.stderr and "stored token still accepted" in reset.stderr
        assert (settings_file.read_bytes(), settings_file.stat().st_mtime_ns) == written
        assert worker.alive()
        assert json.loads(probe(project.dir, "run", name, "after"))["echo"] == "AFTER"
        after = inventory(project)
        assert after == {"workflows": [name], "crons": [], "runs": 1}  # the run just made
        assert "extra-team" not in project.hl("tenant", "list").stdout
        # While the engine started, the reset copied the pristine database for the next one,
        # which renames that copy into place: the same outcome, the same running worker.
        assert sql(project, SPARE_FITS) == "t"
        project.hl("tenant", "create", "second-team")
        reset = project.hl("reset", "--yes")
        assert "the next reset copies" not in reset.stderr  # its own copy was kept too
        assert sql(project, SPARE_FITS) == "t"
        assert json.loads(probe(project.dir, "run", name, "again"))["echo"] == "AGAIN"
        assert inventory(project) == {"workflows": [name], "crons": [], "runs": 1}
        assert "second-team" not in project.hl("tenant", "list").stdout
        assert (settings_file.read_bytes(), settings_file.stat().st_mtime_ns) == written
    # `--new-token` is the reset of old: new keys, a new token, the settings file rewritten.
    old_token = project.env_file()["HATCHET_CLIENT_TOKEN"]
    project.hl("reset", "--new-token", "--yes")
    assert project.env_file()["HATCHET_CLIENT_TOKEN"] != old_token


@pytest.fixture(scope="module")
def saved(origin: Origin, lab: Lab) -> Path:
    save = origin.project.hl("snapshot", "save", "team")
    path = lab.state / "snapshots" / "team.tar"
    assert f"to {path}: mode 0600" in save.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path


def test_a_snapshot_starts_a_new_stack_elsewhere_with_everything(
    saved: Path, origin: Origin, lab: Lab
) -> None:
    project = lab.project("fromsnap")
    up = project.hl("up", "--snapshot", "team")
    assert "-> data from snapshot" in up.stderr and "-> migrate job" not in up.stderr
    held = inventory(project)
    assert origin.workflow in held["workflows"]
    assert held["crons"] == [origin.cron]
    assert held["runs"] == 1
    # The stack is its own: its own ports and Postgres password, and a token for its URL.
    assert project.status()["dashboard_url"] != origin.project.status()["dashboard_url"]
    mine, theirs = (
        (p.state / "stacks" / stack_of(p) / "secrets.env").read_text().splitlines()
        for p in (project, origin.project)
    )
    assert [x for x in mine if "POSTGRES" in x] != [x for x in theirs if "POSTGRES" in x]
    name = origin.workflow
    assert project.run_task(name)["task"] == name  # a worker of it runs here


def bad_snapshots(saved: Path, where: Path) -> dict[str, tuple[Path, int, str]]:
    """Broken copies of a good snapshot: (file, exit code, what the error line says)."""
    data = saved.read_bytes()
    made: dict[str, tuple[bytes, int, str]] = {
        "truncated": (data[: len(data) // 2], 22, "not a snapshot, or cut short"),
        "not a snapshot": (b"hello\n" * 2000, 22, "not a snapshot"),
    }
    at = data.index(b'"admin_password"')
    made["tampered"] = (data[:at] + b"X" + data[at + 1 :], 22, "does not match its checksum")
    files = {}
    for label, (content, code, said) in made.items():
        path = where / f"{label.replace(' ', '-')}.tar"
        path.write_bytes(content)
        path.chmod(0o600)
        files[label] = (path, code, said)
    changes: tuple[tuple[str, dict[str, Any], int, str], ...] = (
        ("newer Hatchet", {"hatchet_version": "v0.999.0"}, 12, "which v0.101.27 cannot read"),
        ("other Postgres", {"postgres_major": 16}, 22, "use an image of Postgres 16"),
    )
    for label, change, code, said in changes:
        path = where / f"{label.replace(' ', '-')}.tar"
        rewrite(saved, path, change)
        files[label] = (path, code, said)
    return files


def rewrite(source: Path, target: Path, change: dict[str, Any]) -> None:
    """A whole, valid snapshot whose manifest says something else."""
    with (
        snapshot_file.reading(source) as (manifest, tar),
        snapshot_file.writing(target, overwrite=True) as writer,
    ):
        for name in snapshot_file.MEMBERS:
            stream = tar.extractfile(name)
            assert stream is not None
            with writer.member(name) as out:
                shutil.copyfileobj(stream, out)
        snapshot_file.finish(writer, dataclasses.replace(manifest, **change), target)


def test_bad_snapshots_stop_with_one_line_and_change_nothing(
    saved: Path, second: tuple[Project, str], lab: Lab
) -> None:
    project, _ = second
    identity, names = database_identity(project), workflow_names(project.env_file())
    for label, (path, code, said) in bad_snapshots(saved, lab.root).items():
        loaded = project.hl("snapshot", "load", str(path), "--yes", ok=False)
        assert loaded.returncode == code, f"{label}: exit {loaded.returncode}\n{loaded.stderr}"
        errors = [line for line in loaded.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and said in errors[0], f"{label}: {loaded.stderr}"
        assert "Traceback" not in loaded.stderr
        assert database_identity(project) == identity, label
        assert workflow_names(project.env_file()) == names, label
        assert project.status()["state"] == "running", label


def test_snapshot_load_replaces_a_stacks_data(
    saved: Path, second: tuple[Project, str], origin: Origin
) -> None:
    project, _ = second
    token = project.env_file()["HATCHET_CLIENT_TOKEN"]
    project.hl("snapshot", "load", "team", "--yes")
    held = inventory(project)
    assert origin.workflow in held["workflows"]
    assert held["crons"] == [origin.cron]
    # The data and keys are the snapshot's: the old token is gone, a new one works.
    assert project.env_file()["HATCHET_CLIENT_TOKEN"] != token
    ls = project.hl("snapshot", "ls", "--output", "json")
    (row,) = json.loads(ls.stdout)
    assert (row["name"], row["stack"], row["postgres_major"]) == (
        "team", stack_of(origin.project), 15)  # fmt: skip
    project.hl("snapshot", "rm", "team")
    assert json.loads(project.hl("snapshot", "ls", "--output", "json").stdout) == []


def test_a_spare_is_taken_over_by_the_next_new_stack(lab: Lab, second: tuple[Project, str]) -> None:
    """`spare` starts a stack ahead; the next `up` of a new stack of its kind, in another
    directory, takes it over without starting a container, and its token runs a task. It
    keeps nothing of another stack's secrets, and `destroy` removes all of it by its name."""
    maker = lab.project("maker")  # its own stack is never started
    made = maker.hl("spare")
    (spare,) = re.findall(r"Spare (spare-[0-9a-f]+) is ready", made.stdout)
    taker = lab.project("taker")
    (taker.dir / "hatchet-local.yaml").write_text(
        (taker.dir / "hatchet-local.yaml").read_text() + "spares: 1\n"
    )
    refilled = ""
    try:
        up = taker.hl("up").stderr
        assert f"took over spare {spare}" in up
        assert "-> containers" not in up and "-> setup job" not in up  # nothing started
        assert "starting spares for the next new stacks in the background" in up
        name = f"spare-{uuid.uuid4().hex[:6]}"
        assert taker.run_task(name) == {"echo": "HELLO", "task": name}
        refilled = wait_for_refill(lab)  # `spares: 1` starts the next one
        assert refilled != spare

        listed = {row["name"]: row for row in json.loads(taker.hl("ls", "-o", "json").stdout)}
        assert spare not in listed
        assert listed[taker.stack]["state"] == "running"
        assert listed[taker.stack]["directory"] == str(taker.dir)
        assert not listed[taker.stack]["spare"]

        other, _ = second
        mine, theirs = stack_files(lab, taker.stack), stack_files(lab, other.stack)
        assert not set(mine) & set(theirs), "a secret shared with another stack"
    finally:
        taker.hl("destroy", "--yes", ok=False)
        for left in (spare, refilled):  # the first when it was not taken
            if left:
                maker.hl("destroy", "--stack", left, "--yes", ok=False)
    for left in (spare, refilled):
        assert labelled(f"io.hatchet-local.stack={left}") == {
            "containers": [], "volumes": [], "networks": [],
        }  # fmt: skip


def wait_for_refill(lab: Lab, timeout: float = 600) -> str:
    """The name of the spare the background `spare` started, once it said it is ready."""
    log = lab.state / "logs" / "spares.log"
    deadline = time.monotonic() + timeout
    while not (found := re.findall(r"Spare (spare-[0-9a-f]+) is ready", read_or_empty(log))):
        assert "error:" not in read_or_empty(log), read_or_empty(log)
        assert time.monotonic() < deadline, f"no spare after {timeout:.0f}s:\n{read_or_empty(log)}"
        time.sleep(1)
    return str(found[0])


def read_or_empty(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def stack_files(lab: Lab, stack: str) -> list[str]:
    """The stack's passwords and its token, as its state directory holds them."""
    stack_dir = StackDir(lab.state, stack)
    token = stack_dir.load_token()
    assert token is not None
    return [*stack_dir.secrets().values(), token.token]
