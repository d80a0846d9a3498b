#!/usr/bin/env python3
"""The test rig: hatchet-local's own `images build`, plus what only the tests need.

    python tests/e2e/images/rig.py build     # `hatchet-local images build`, then the rig's extras
    python tests/e2e/images/rig.py check     # exit 1 (naming the image) if one is missing
    python tests/e2e/images/rig.py config    # the hatchet-local.yaml lines that select the rig
    python tests/e2e/images/rig.py hatchet-cli  # build Hatchet's own CLI; print its path

The stack's images (Postgres and RabbitMQ from Debian's packages, hatchet-lite from the Go
module at the pinned release) come from the public command `hatchet-local images build`,
run with its caches in `$HATCHET_RIG_CACHE` (default ``~/.cache/hatchet-local-rig``). The
rig adds hatchet-admin and hatchet-migrate images (the binaries of that hatchet-lite, laid
out like Hatchet's own images) and Hatchet's CLI for the benchmark. Functions here stay
importable for test code that builds further images (`module_source`, `build_binaries`,
`docker_build`, `RUNTIME_IMAGE`...); they wrap `hatchet_local.image_build`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from hatchet_local import hatchet_source, image_build  # noqa: E402
from hatchet_local.build_steps import Builder  # noqa: E402
from hatchet_local.console import Console  # noqa: E402
from hatchet_local.defaults import HATCHET_VERSION  # noqa: E402
from hatchet_local.errors import HatchetLocalError  # noqa: E402
from hatchet_local.runner import SubprocessRunner  # noqa: E402

MODULE = hatchet_source.MODULE
PNPM = hatchet_source.PNPM
DEBIAN_SUITE = image_build.DEBIAN_SUITE
LABEL = "io.hatchet-local.rig.recipe"  # on the rig's own images
PREFIX = "hatchet-local-rig"

# The product's images (from `hatchet-local images build`) and the rig's own.
BASE_IMAGE = image_build.BASE_IMAGE
RUNTIME_IMAGE = image_build.RUNTIME_IMAGE
IMAGES = {
    "postgres": image_build.local_image("postgres", HATCHET_VERSION),
    "rabbitmq": image_build.local_image("rabbitmq", HATCHET_VERSION),
    "hatchet-lite": image_build.local_image("hatchet-lite", HATCHET_VERSION),
    "hatchet-admin": f"{PREFIX}/hatchet-admin:{HATCHET_VERSION}",
    "hatchet-migrate": f"{PREFIX}/hatchet-migrate:{HATCHET_VERSION}",
}
BINARIES = hatchet_source.BINARIES
# Where the rig's images are wired in by hatchet-local's public configuration.
CONFIG_KEYS = ("postgres", "rabbitmq", "hatchet-lite")

# Hatchet's own CLI (cmd/hatchet-cli), built for the benchmark only. Its `quickstart`
# command imports github.com/hatchet-dev/hatchet-quickstarts, which the Go module proxy does
# not serve (403); an overlay replaces that one file with an empty one, dropping only that
# command. `hatchet server start` is untouched.
CLI_OVERLAY = {"cmd/hatchet-cli/cli/quickstart.go": "package cli\n"}

CACHE = Path(os.environ.get("HATCHET_RIG_CACHE", Path.home() / ".cache" / PREFIX))
LOGS = CACHE / "logs"
HATCHET_LOCAL = Path(sys.executable).parent / "hatchet-local"


T = TypeVar("T")


class RigError(Exception):
    """A build step failed; the message says which and where its log is."""


_print_lock = threading.Lock()


def say(step: str, message: str) -> None:
    with _print_lock:
        print(f"[rig {time.strftime('%H:%M:%S')}] {step}: {message}", flush=True)


def run(
    step: str,
    argv: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> str:
    """Run one command, appending its output to the step's log; raise RigError on failure."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{step}.log"
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=out,
            check=False,
        )
        out.write(proc.stdout)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise RigError(
            f"{step}: `{' '.join(argv[:3])}` exited {proc.returncode}; log {log}\n"
            + "\n".join(tail)
        )
    return proc.stdout.decode(errors="replace")


def digest(parts: Iterable[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def tree_digest(root: Path) -> list[str | bytes]:
    """Names, modes and contents of every file below root, in a stable order."""
    parts: list[str | bytes] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parts += [str(path.relative_to(root)), oct(path.stat().st_mode & 0o777), path.read_bytes()]
    return parts


def image_label(image: str, label: str = LABEL) -> str | None:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}',
         image],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_id(image: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def stamp_matches(stamp: Path, recipe: str) -> bool:
    return stamp.is_file() and stamp.read_text() == recipe


# --- the product's build, for test code that builds further images ------------------------


def _builder() -> Builder:
    return Builder(SubprocessRunner(), Console(io.StringIO()), CACHE)


def _guarded(call: Callable[[], T]) -> T:
    """`call()`, with hatchet-local's error as the rig's."""
    try:
        return call()
    except HatchetLocalError as exc:
        raise RigError(exc.message + (f"\n{exc.details}" if exc.details else "")) from exc


def module_source() -> Path:
    """The pinned Hatchet module's source, as a writable copy in the cache."""
    return _guarded(lambda: hatchet_source.module_source(_builder(), HATCHET_VERSION)).tree


def _source(src: Path) -> hatchet_source.HatchetSource:
    return hatchet_source.HatchetSource(src, HATCHET_VERSION, HATCHET_VERSION)


def build_binaries(src: Path, names: tuple[str, ...] = BINARIES) -> Path:
    """`go build` of `names` from `src` (a tree from `module_source`); the output directory."""
    return _guarded(lambda: hatchet_source.build_binaries(_builder(), _source(src), names))


def build_frontend(src: Path) -> Path:
    """The dashboard built from `src`; the directory holding its index.html."""
    return _guarded(lambda: hatchet_source.build_dashboard(_builder(), _source(src)))


def hatchet_context(src: Path, binaries: Path, assets: Path) -> Path:
    """One build context: binaries, dashboard (static-assets/), lite's entrypoint."""
    return _guarded(
        lambda: hatchet_source.image_context(_builder(), _source(src), binaries, assets)
    )


def docker_build(
    step: str,
    image: str,
    context: Path,
    *,
    parent: str,
    dockerfile: Path | None = None,
    extra: Iterable[str | bytes] = (),
    build_args: dict[str, str] | None = None,
) -> None:
    """Build a rig image on `parent` unless it carries the same recipe (label LABEL)."""
    dockerfile = dockerfile or context / "Dockerfile"
    args = {"BASE_IMAGE": parent, **(build_args or {})}
    recipe = digest([image_id(parent), dockerfile.read_bytes(), *tree_digest(context), *extra,
                     json.dumps(args, sort_keys=True)])  # fmt: skip
    if image_label(image) == recipe:
        say(step, f"{image} up to date")
        return
    say(step, f"building {image}")
    run(
        step,
        ["docker", "build", "--quiet", "--label", f"{LABEL}={recipe}",
         *(arg for key, value in args.items() for arg in ("--build-arg", f"{key}={value}")),
         "-f", str(dockerfile), "-t", image, str(context)],
        env={"DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    say(step, f"built {image}")


def build_hatchet_cli(src: Path) -> Path:
    """Hatchet's CLI from the same module version, for `bench/run.py`; cached like the rest."""
    out = CACHE / "bin" / HATCHET_VERSION / "hatchet"
    go_version = run("hatchet-cli", ["go", "env", "GOVERSION"]).strip()
    ldflags = f"-s -w -X main.Version={HATCHET_VERSION}"
    recipe = digest([HATCHET_VERSION, go_version, ldflags, json.dumps(CLI_OVERLAY)])
    stamp = out.with_name(".hatchet-cli.recipe")
    if stamp_matches(stamp, recipe) and out.is_file():
        return out
    say("hatchet-cli", f"go build ./cmd/hatchet-cli ({go_version})")
    overlay_dir = CACHE / "hatchet-cli-overlay"
    overlay_dir.mkdir(parents=True, exist_ok=True)
    replace = {}
    for number, (path, text) in enumerate(CLI_OVERLAY.items()):
        (overlay_dir / f"{number}.go").write_text(text)
        replace[str(src / path)] = str(overlay_dir / f"{number}.go")
    overlay = overlay_dir / "overlay.json"
    overlay.write_text(json.dumps({"Replace": replace}))
    out.parent.mkdir(parents=True, exist_ok=True)
    run(
        "hatchet-cli",
        ["go", "build", f"-overlay={overlay}", "-trimpath", "-ldflags", ldflags, "-o", str(out),
         "./cmd/hatchet-cli"],
        cwd=src,
        env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    stamp.write_text(recipe)
    return out


# --- orchestration --------------------------------------------------------------------------


def build_product_images() -> None:
    """`hatchet-local images build`, the public command, with the rig's cache: what every
    e2e stack runs on."""
    say("images", "hatchet-local images build")
    workdir = CACHE / "project"  # no hatchet-local.yaml: the defaults
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATCHET_LOCAL_")}
    env["HATCHET_LOCAL_BUILD_CACHE"] = str(CACHE)
    env["HATCHET_LOCAL_STATE_DIR"] = str(CACHE / "state")
    proc = subprocess.run([str(HATCHET_LOCAL), "images", "build"], cwd=workdir, env=env,
                          check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RigError(f"`hatchet-local images build` exited {proc.returncode}")


def build_tool_images() -> None:
    """hatchet-admin and hatchet-migrate laid out like Hatchet's images, with the binaries
    of the hatchet-lite just built."""
    for name in ("hatchet-admin", "hatchet-migrate"):
        docker_build(
            name,
            IMAGES[name],
            HERE / "hatchet",
            parent=RUNTIME_IMAGE,
            dockerfile=HERE / "hatchet" / f"{name}.Dockerfile",
            extra=[image_id(IMAGES["hatchet-lite"])],
            build_args={"LITE_IMAGE": IMAGES["hatchet-lite"]},
        )


def build() -> None:
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    build_product_images()
    build_tool_images()
    say("done", f"rig images ready in {time.monotonic() - started:.0f}s")


def config_text() -> str:
    """The hatchet-local.yaml lines that point hatchet-local at the rig's images."""
    lines = ["pull_policy: never", "images:", *(f"  {k}: {IMAGES[k]}" for k in CONFIG_KEYS)]
    return "\n".join(lines) + "\n"


def check() -> list[str]:
    return [image for image in IMAGES.values() if image_id_or_none(image) is None]


def image_id_or_none(image: str) -> str | None:
    proc = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check", "config", "hatchet-cli"])
    args = parser.parse_args()
    if args.command == "config":
        print(config_text(), end="")
        return 0
    if args.command == "hatchet-cli":
        try:
            print(build_hatchet_cli(module_source()))
        except RigError as exc:
            print(f"hatchet-cli build failed: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "check":
        missing = check()
        for image in missing:
            print(f"missing rig image {image}: run `python tests/e2e/images/rig.py build`")
        return 1 if missing else 0
    try:
        build()
    except RigError as exc:
        print(f"rig build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
