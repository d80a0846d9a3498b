"""Issue #15 without Docker: the shell lines Hatchet's CLI prints, its profiles lock,
`hatchet-local run`, the embedded-mode warning, pulls without a registry, and the caches
of `images build`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hatchet_local.build_steps import Builder, require_tool, sync_tree, tree_digest
from hatchet_local.console import Console
from hatchet_local.embedded import warn_if_shadowed
from hatchet_local.envfile import shell_lines
from hatchet_local.errors import BuildFailed, ConfigError, StackBusy
from hatchet_local.hatchet_source import HatchetSource, build_binaries, check_checkout
from hatchet_local.image_build import check_tag, registry_of, registry_unreachable
from hatchet_local.locks import HATCHET_LOCK_ATTEMPTS, HATCHET_LOCK_RETRY, hatchet_config_lock
from hatchet_local.profiles import write_profile
from hatchet_local.runner import Result
from tests.unit.fakes import Call, FakeRunner, reply

SETTINGS = {
    "HATCHET_CLIENT_TOKEN": "eyJ.tok'en.sig",
    "HATCHET_CLIENT_TLS_STRATEGY": "none",
    "HATCHET_CLIENT_HOST_PORT": "localhost:17077",
    "HATCHET_CLIENT_SERVER_URL": "http://localhost:18080",
    "HATCHET_CLIENT_TENANT_ID": "707d0855-80ab-4e1f-a156-f1c4546cbf52",
}

# --- env --output shell: what `hatchet profile env` prints ---------------------------------


def test_shell_lines_follow_hatchet_clis_order_and_quoting() -> None:
    assert shell_lines(SETTINGS).splitlines() == [
        "export HATCHET_CLIENT_TOKEN='eyJ.tok'\\''en.sig'",
        "export HATCHET_CLIENT_TLS_STRATEGY='none'",
        "export HATCHET_CLIENT_HOST_PORT='localhost:17077'",
        "export HATCHET_CLIENT_SERVER_URL='http://localhost:18080'",
        "export HATCHET_CLIENT_API_URL='http://localhost:18080'",
        "export HATCHET_CLIENT_TENANT_ID='707d0855-80ab-4e1f-a156-f1c4546cbf52'",
        "unset HATCHET_CLIENT_NAMESPACE",  # so one from an earlier eval does not linger
    ]


def test_shell_lines_without_export_and_with_a_namespace() -> None:
    lines = shell_lines({**SETTINGS, "HATCHET_CLIENT_NAMESPACE": "dev-alice"}, export=False)
    assert lines.splitlines()[0] == "HATCHET_CLIENT_TOKEN='eyJ.tok'\\''en.sig'"
    assert lines.splitlines()[-1] == "HATCHET_CLIENT_NAMESPACE='dev-alice'"
    assert "export " not in lines and "unset " not in lines


def test_shell_lines_eval_to_the_settings_in_a_real_shell() -> None:
    script = (
        shell_lines(SETTINGS) + 'printf "%s\\n" "$HATCHET_CLIENT_TOKEN" "$HATCHET_CLIENT_API_URL"'
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [SETTINGS["HATCHET_CLIENT_TOKEN"], "http://localhost:18080"]


# --- ~/.hatchet/config.lock, as Hatchet's CLI takes it ---------------------------------------


def test_a_held_config_lock_is_retried_every_50ms_then_refused(tmp_path: Path) -> None:
    lock = tmp_path / "config.lock"
    lock.write_text("2026-01-01T00:00:00Z")
    sleeps: list[float] = []
    with pytest.raises(StackBusy) as info, hatchet_config_lock(lock, sleep=sleeps.append):
        pass
    assert sleeps == [HATCHET_LOCK_RETRY] * (HATCHET_LOCK_ATTEMPTS - 1)
    assert str(lock) in info.value.message
    assert lock.exists()  # someone else's lock is not ours to remove


def test_a_stale_config_lock_is_taken_over_and_ours_removed_after(tmp_path: Path) -> None:
    lock = tmp_path / "config.lock"
    lock.write_text("old")
    os.utime(lock, (time.time() - 6, time.time() - 6))  # older than Hatchet's 5 s

    def no_wait(seconds: float) -> None:
        pytest.fail(f"waited {seconds}s for a stale lock")

    with hatchet_config_lock(lock, sleep=no_wait):
        assert lock.read_text().endswith("Z")  # an RFC 3339 time, as the CLI writes
    assert not lock.exists()


def test_write_profile_waits_for_another_holder_of_the_lock(tmp_path: Path) -> None:
    path = tmp_path / ".hatchet" / "profiles.yaml"
    path.parent.mkdir(mode=0o700)
    held, order = threading.Event(), []

    def other_writer() -> None:
        with hatchet_config_lock(path.parent / "config.lock"):
            held.set()
            time.sleep(0.3)
            order.append("other done")

    thread = threading.Thread(target=other_writer)
    thread.start()
    held.wait(5)
    write_profile(path, "local", "eyJ.t.s", {"exp": 2_000_000_000}, "t-1")
    order.append("ours written")
    thread.join()
    assert order == ["other done", "ours written"]
    assert not (path.parent / "config.lock").exists()


# --- hatchet-local run ----------------------------------------------------------------------


def test_replace_process_becomes_the_command_with_exactly_that_environment() -> None:
    code = (
        "from hatchet_local.runner import replace_process\n"
        "replace_process(['sh', '-c', 'echo \"$ONLY-${HOME:-none}\"; exit 3'], "
        "{'ONLY': 'x', 'PATH': '/usr/bin:/bin'})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout) == (3, "x-none\n")


# --- embedded mode --------------------------------------------------------------------------


def test_up_warns_once_when_the_settings_shadow_from_embedded(tmp_path: Path) -> None:
    project = tmp_path / "app"
    (project / "src").mkdir(parents=True)
    (project / "src" / "dev.py").write_text("hatchet = Hatchet.from_embedded()\n")
    stream = io.StringIO()
    notice = tmp_path / "state" / "embedded-warned"
    notice.parent.mkdir()
    for _ in range(2):
        warn_if_shadowed(project / ".env.hatchet", project, notice, Console(stream))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "warning: src/dev.py calls Hatchet.from_embedded(), and .env.hatchet"
    )
    assert "`env_file: .hatchet-local.env`" in lines[0]
    assert "`hatchet-local run -- python worker.py`" in lines[0]


@pytest.mark.parametrize("where", ["elsewhere", "venv"])
def test_no_embedded_warning_when_nothing_is_shadowed(tmp_path: Path, where: str) -> None:
    project = tmp_path / "app"
    caller = project / (".venv/lib/x.py" if where == "venv" else "worker.py")
    caller.parent.mkdir(parents=True, exist_ok=True)
    caller.write_text("Hatchet.from_embedded()\n")
    env_file = project / (".env.hatchet" if where == "venv" else ".hatchet-local.env")
    stream = io.StringIO()
    warn_if_shadowed(env_file, project, tmp_path / "notice", Console(stream))
    assert stream.getvalue() == ""


# --- pulls without a registry ---------------------------------------------------------------

# What `docker compose pull` printed on this machine, which has no registry.
COMPOSE_PULL = "\n".join([
    " hatchet-lite Pulling",
    " postgres Pulling",
    ' hatchet-lite Error Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io on 10.0.0.53:53:'
    " no such host",
    " postgres  Interrupted",
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup'
    " registry-1.docker.io on 10.0.0.53:53: no such host",
])  # fmt: skip


@pytest.mark.parametrize(
    ("image", "registry"),
    [("postgres:15.6", "docker.io"), ("ghcr.io/hatchet-dev/hatchet/hatchet-lite:v1", "ghcr.io")],
)
def test_a_pull_that_reached_no_registry_is_one_line_with_the_ways_out(
    image: str, registry: str
) -> None:
    error = registry_unreachable(COMPOSE_PULL, image)
    assert error is not None
    assert error.exit_code == 5
    assert "\n" not in error.message
    assert error.message.startswith(
        f"cannot pull {image}: registry {registry} does not answer (no such host); "
    )
    for way_out in ("images build", "images load FILE", "`registry:`", "pull_policy: never"):
        assert way_out in error.message


def test_other_pull_failures_are_not_called_unreachable() -> None:
    denied = "Error response from daemon: pull access denied for nope, repository does not exist"
    assert registry_unreachable(denied, "nope:1") is None
    assert registry_unreachable(COMPOSE_PULL, "quay.io/x/y:1") is None  # quay.io not named
    assert [registry_of(r) for r in ("postgres", "me/app", "localhost:5000/a", "ghcr.io/a/b")] == [
        "docker.io", "docker.io", "localhost:5000", "ghcr.io"
    ]  # fmt: skip


# --- images build: its one-line errors and its caches ---------------------------------------


def test_build_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed) as info:
        require_tool("no-such-tool-here")
    assert info.value.message.startswith("no-such-tool-here not found: ")
    with pytest.raises(BuildFailed) as info:
        check_checkout(tmp_path)
    assert info.value.exit_code == 21
    assert "not a Hatchet checkout" in info.value.message
    with pytest.raises(ConfigError):
        check_tag("has space")


def test_sync_tree_copies_changes_and_removes_what_is_gone(tmp_path: Path) -> None:
    source, target = tmp_path / "src", tmp_path / "copy"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "a.go").write_text("package a\n")
    (source / "node_modules").mkdir()
    (source / "node_modules" / "big.js").write_text("x")
    sync_tree(source, target, frozenset({"node_modules"}))
    assert (target / "pkg" / "a.go").read_text() == "package a\n"
    assert not (target / "node_modules").exists()
    (target / "node_modules").mkdir()
    (target / "node_modules" / "kept.js").write_text("installed here")
    (target / "pkg" / "stale.go").write_text("gone from the source")
    (source / "pkg" / "a.go").write_text("package a // changed\n")
    sync_tree(source, target, frozenset({"node_modules"}))
    assert (target / "pkg" / "a.go").read_text() == "package a // changed\n"
    assert not (target / "pkg" / "stale.go").exists()
    assert (target / "node_modules" / "kept.js").exists()  # skipped folders are left alone
    assert tree_digest(source, frozenset({"node_modules"})) == tree_digest(
        target, frozenset({"node_modules"})
    )


def test_binaries_are_built_once_per_source_tree(tmp_path: Path) -> None:
    tree = tmp_path / "hatchet"
    (tree / "cmd" / "hatchet-lite").mkdir(parents=True)
    main = tree / "cmd" / "hatchet-lite" / "main.go"
    main.write_text('var Version = "v1"\n')
    runner = FakeRunner()
    runner.on("env", "GOVERSION", stdout="go1.26.8\n")

    def go_build(call: Call) -> Result:
        out = Path(call.option("-o"))
        for name in ("hatchet-lite", "hatchet-admin", "hatchet-migrate"):
            (out / name).write_text("binary")
        return reply(call)

    runner.on_call("build", "-trimpath", handler=go_build)
    builder = Builder(runner, Console(io.StringIO()), tmp_path / "cache")
    src = HatchetSource(tree, str(tree), None)
    first = build_binaries(builder, src)
    assert build_binaries(builder, src) == first
    assert len(runner.called("build", "-trimpath")) == 1  # the second one was a cache hit
    build = runner.called("build", "-trimpath")[0]
    assert "-X" not in build.option("-ldflags")  # a checkout keeps its own version
    main.write_text('var Version = "v1-patched"\n')
    assert build_binaries(builder, src) != first
    assert len(runner.called("build", "-trimpath")) == 2
