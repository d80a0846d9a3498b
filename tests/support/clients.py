"""Hatchet clients in three languages for the e2e tier, built once and cached.

- Python: hatchet-sdk in a venv of its own per version (the pinned one and the newest
  non-yanked release on PyPI, resolved at test time).
- TypeScript: `@hatchet-dev/typescript-sdk` from the npm registry, at the version in the
  pinned engine's own source tree, installed with `npm ci` from a lock file.
- Go: the Go SDK inside the pinned module `github.com/hatchet-dev/hatchet`, a probe binary.

Everything lives under `$HATCHET_LOCAL_TEST_CACHE` (default `~/.cache/hatchet-local-tests`),
keyed by a digest of its inputs: a warm cache costs seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENTS = HERE / "clients"
PROBE = HERE / "sdk_probe.py"
PINNED_SDK = "1.37.2"  # the hatchet-sdk the pinned engine v0.101.27 was released with
PYPI_JSON = "https://pypi.org/pypi/hatchet-sdk/json"


def cache_dir() -> Path:
    root = os.environ.get("HATCHET_LOCAL_TEST_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "hatchet-local-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _digest(paths: Sequence[Path], *extra: str) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for text in extra:
        h.update(text.encode() + b"\0")
    return h.hexdigest()[:12]


def _run(argv: Sequence[str], **kwargs: Any) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)
    assert proc.returncode == 0, (
        f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    )


# --- Python: one venv per hatchet-sdk version -----------------------------------------------


def _release_key(version: str) -> tuple[int, ...] | None:
    """(major, minor, patch) of a final release; None for pre-releases and the like."""
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        return None
    return tuple(int(part) for part in version.split("."))


def newest_sdk_version() -> str:
    """The newest hatchet-sdk release on PyPI that is not yanked (PyPI's JSON API marks
    each file; a release counts only when it has a file and none of them is yanked)."""
    with urllib.request.urlopen(PYPI_JSON, timeout=30) as response:
        data = json.load(response)
    usable = [
        version
        for version, files in data["releases"].items()
        if files and not any(f.get("yanked") for f in files) and _release_key(version)
    ]
    newest: str = max(usable, key=lambda v: _release_key(v) or ())
    return newest


def sdk_python(version: str) -> Path:
    """The python of a venv holding hatchet-sdk==version (made once, then reused)."""
    venv = cache_dir() / "sdk" / f"hatchet-sdk-{version}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          f"hatchet-sdk=={version}"], timeout=900)  # fmt: skip
    marker.write_text(version)
    return python


def installed_sdk_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('hatchet-sdk'))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.strip()


def python_probe(python: Path) -> list[str]:
    return [str(python), str(PROBE)]


# --- TypeScript ---------------------------------------------------------------------------


def ts_probe() -> list[str]:
    """`node probe.js`, with the SDK installed by `npm ci` next to it."""
    source = CLIENTS / "ts"
    files = [source / "package.json", source / "package-lock.json", source / "probe.js"]
    target = cache_dir() / "ts" / _digest(files)
    if not (target / "node_modules" / "@hatchet-dev" / "typescript-sdk").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in files:
            shutil.copy2(path, target / path.name)
        _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target,
             timeout=900)  # fmt: skip
    return ["node", str(target / "probe.js")]


# --- Go -----------------------------------------------------------------------------------


def go_probe() -> list[str]:
    """The Go probe, built from the pinned module (Go's build cache makes a rebuild cheap)."""
    source = CLIENTS / "go"
    files = [source / "go.mod", source / "go.sum", source / "main.go"]
    binary = cache_dir() / "go" / _digest(files) / "probe"
    if not binary.is_file():
        binary.parent.mkdir(parents=True, exist_ok=True)
        _run(["go", "build", "-o", str(binary), "."], cwd=source,
             env={**os.environ, "CGO_ENABLED": "0"}, timeout=1800)  # fmt: skip
    return [str(binary)]


# --- a worker and a run -------------------------------------------------------------------


def start(
    argv: Sequence[str], cwd: Path, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def stop(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(0.5)


def run_json(argv: Sequence[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> Any:
    """Run a probe's `run` mode; its last stdout line as JSON."""
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    assert proc.returncode == 0, f"{' '.join(argv[:3])} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
