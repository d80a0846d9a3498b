#!/usr/bin/env python3
"""Build the test rig's stand-in images on a machine with no container registry.

    python tests/e2e/images/rig.py build     # build what is missing or out of date
    python tests/e2e/images/rig.py check     # exit 1 (naming the image) if one is missing
    python tests/e2e/images/rig.py config    # the hatchet-local.yaml lines that select the rig
    python tests/e2e/images/rig.py hatchet-cli  # build Hatchet's own CLI; print its path

Every image carries the label ``io.hatchet-local.rig.recipe``: a hash of what it
is made from (recipe files, inputs, parent image id). An image whose label
matches is kept, so a second build costs seconds.

The Debian base comes from debootstrap + ``docker import``; Postgres and
RabbitMQ install Debian's packages; the Hatchet binaries build from the Go
module ``github.com/hatchet-dev/hatchet`` at the pinned release, and the
dashboard from the same module's ``frontend/app`` with pnpm from the npm registry.
Caches live under ``$HATCHET_RIG_CACHE`` (default ``~/.cache/hatchet-local-rig``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from hatchet_local.defaults import HATCHET_VERSION  # noqa: E402

MODULE = "github.com/hatchet-dev/hatchet"
PNPM = "pnpm@10.16.1"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
LABEL = "io.hatchet-local.rig.recipe"
PREFIX = "hatchet-local-rig"

BASE_IMAGE = f"{PREFIX}/debian:{DEBIAN_SUITE}"
RUNTIME_IMAGE = f"{PREFIX}/hatchet-runtime:{DEBIAN_SUITE}"
IMAGES = {
    "postgres": f"{PREFIX}/postgres:15",
    "rabbitmq": f"{PREFIX}/rabbitmq:3-management",
    "hatchet-lite": f"{PREFIX}/hatchet-lite:{HATCHET_VERSION}",
    "hatchet-admin": f"{PREFIX}/hatchet-admin:{HATCHET_VERSION}",
    "hatchet-migrate": f"{PREFIX}/hatchet-migrate:{HATCHET_VERSION}",
}
BINARIES = ("hatchet-lite", "hatchet-admin", "hatchet-migrate")
# Where the rig's images are wired in by hatchet-local's public configuration.
CONFIG_KEYS = ("postgres", "rabbitmq", "hatchet-lite")

# better-emitter 4.0.1, a direct dependency of the dashboard, is no longer served by
# the npm registry; 3.0.0 has the same call shape for the way the dashboard uses it.
FRONTEND_PINS = {"better-emitter": ("^4.0.1", "3.0.0")}

# Hatchet's own CLI (cmd/hatchet-cli), built for the benchmark only. Its `quickstart`
# command imports github.com/hatchet-dev/hatchet-quickstarts, which the Go module proxy does
# not serve (403); an overlay replaces that one file with an empty one, dropping only that
# command. `hatchet server start` is untouched.
CLI_OVERLAY = {"cmd/hatchet-cli/cli/quickstart.go": "package cli\n"}

CACHE = Path(os.environ.get("HATCHET_RIG_CACHE", Path.home() / ".cache" / PREFIX))
LOGS = CACHE / "logs"


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


def image_label(image: str) -> str | None:
    proc = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{LABEL}"}}}}',
            image,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
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


# --- steps ---------------------------------------------------------------------------------


def build_base() -> None:
    recipe = digest([DEBIAN_SUITE, DEBIAN_MIRROR, "minbase", "v2"])
    if image_label(BASE_IMAGE) == recipe:
        say("base", f"{BASE_IMAGE} up to date")
        return
    if shutil.which("debootstrap") is None:
        raise RigError("base: debootstrap is not installed (apt-get install -y debootstrap)")
    rootfs = CACHE / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    say("base", f"debootstrap {DEBIAN_SUITE} into {rootfs}")
    run("base", ["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR])
    # debootstrap leaves its downloads and package lists behind (~80 MB); images built on
    # the base run `apt-get update` themselves.
    for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (rootfs / leftovers).glob("*"):
            if path.is_file():
                path.unlink()
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
    run(
        "base",
        [
            "docker",
            "import",
            "-c",
            f"LABEL {LABEL}={recipe}",
            "-c",
            'CMD ["/bin/bash"]',
            "-",
            BASE_IMAGE,
        ],
        stdin=tar.stdout,
    )
    shutil.rmtree(rootfs, ignore_errors=True)
    say("base", f"built {BASE_IMAGE}")


def docker_build(
    step: str,
    image: str,
    context: Path,
    *,
    parent: str,
    dockerfile: Path | None = None,
    extra: Iterable[str | bytes] = (),
) -> None:
    dockerfile = dockerfile or context / "Dockerfile"
    recipe = digest([image_id(parent), dockerfile.read_bytes(), *tree_digest(context), *extra])
    if image_label(image) == recipe:
        say(step, f"{image} up to date")
        return
    say(step, f"building {image}")
    run(
        step,
        [
            "docker",
            "build",
            "--quiet",
            "--label",
            f"{LABEL}={recipe}",
            "--build-arg",
            f"BASE_IMAGE={parent}",
            "-f",
            str(dockerfile),
            "-t",
            image,
            str(context),
        ],
        env={"DOCKER_BUILDKIT": "0"},
    )
    say(step, f"built {image}")


def module_source() -> Path:
    """The pinned Hatchet module's source, as a writable copy in the cache."""
    src = CACHE / "src" / f"hatchet-{HATCHET_VERSION}"
    if (src / "go.mod").is_file():
        return src
    say("source", f"go mod download {MODULE}@{HATCHET_VERSION}")
    info = json.loads(
        run("source", ["go", "mod", "download", "-json", f"{MODULE}@{HATCHET_VERSION}"], cwd=CACHE)
    )
    tmp = src.with_name(src.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(info["Dir"], tmp)
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    tmp.rename(src)
    return src


def build_binaries(src: Path) -> Path:
    out = CACHE / "bin" / HATCHET_VERSION
    go_version = run("binaries", ["go", "env", "GOVERSION"]).strip()
    ldflags = f"-s -w -X main.Version={HATCHET_VERSION}"
    recipe = digest([HATCHET_VERSION, go_version, ldflags, *BINARIES])
    stamp = out / ".recipe"
    if stamp_matches(stamp, recipe) and all((out / b).is_file() for b in BINARIES):
        say("binaries", f"{out} up to date")
        return out
    say("binaries", f"go build {', '.join(BINARIES)} ({go_version}); the first build takes minutes")
    out.mkdir(parents=True, exist_ok=True)
    run(
        "binaries",
        [
            "go",
            "build",
            "-trimpath",
            "-ldflags",
            ldflags,
            "-o",
            f"{out}/",
            *(f"./cmd/{b}" for b in BINARIES),
        ],
        cwd=src,
        env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
    )
    stamp.write_text(recipe)
    say("binaries", f"built into {out}")
    return out


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


def build_frontend(src: Path) -> Path:
    app = src / "frontend" / "app"
    out = CACHE / "frontend" / HATCHET_VERSION
    recipe = digest([HATCHET_VERSION, PNPM, json.dumps(FRONTEND_PINS), "v1"])
    stamp = out / ".recipe"
    if stamp_matches(stamp, recipe) and (out / "dist" / "index.html").is_file():
        say("frontend", f"{out} up to date")
        return out / "dist"
    package = app / "package.json"
    text = package.read_text()
    for name, (wanted, served) in FRONTEND_PINS.items():
        text = text.replace(f'"{name}": "{wanted}"', f'"{name}": "{served}"')
    package.write_text(text)
    say(
        "frontend",
        "generating docs snippets, pnpm install, vite build; the first build takes minutes",
    )
    run("frontend", ["python3", "-X", "utf8", "generate.py"], cwd=src / "frontend" / "snippets")
    npx = ["npx", "--yes", PNPM]
    quiet = {"SENTRY_DISABLE_TELEMETRY": "1", "CI": "true"}
    run(
        "frontend",
        [*npx, "install", "--no-frozen-lockfile", "--reporter=append-only"],
        cwd=app,
        env=quiet,
    )
    run("frontend", [*npx, "exec", "vite", "build"], cwd=app, env=quiet)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copytree(app / "dist", out / "dist")
    stamp.write_text(recipe)
    say("frontend", f"built into {out / 'dist'}")
    return out / "dist"


def hatchet_context(src: Path, binaries: Path, assets: Path) -> Path:
    """One build context for the Hatchet images: binaries, dashboard, lite entrypoint."""
    ctx = CACHE / "context" / HATCHET_VERSION
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    for name in BINARIES:
        shutil.copy2(binaries / name, ctx / name)
    shutil.copytree(assets, ctx / "static-assets")
    entrypoint = ctx / "entrypoint.sh"
    shutil.copy2(src / "hack" / "lite" / "start.sh", entrypoint)
    entrypoint.chmod(0o755)  # files from the module cache are read-only, not executable
    return ctx


def build_hatchet_images(ctx: Path) -> None:
    docker_build("runtime", RUNTIME_IMAGE, HERE / "hatchet" / "runtime", parent=BASE_IMAGE)
    for name in BINARIES:
        docker_build(
            name,
            IMAGES[name],
            ctx,
            parent=RUNTIME_IMAGE,
            dockerfile=HERE / "hatchet" / f"{name}.Dockerfile",
            extra=[HATCHET_VERSION],
        )


# --- orchestration --------------------------------------------------------------------------


def in_parallel(*steps: Callable[[], None]) -> None:
    """Run independent steps on threads; re-raise the first failure after all have ended."""
    errors: list[BaseException] = []

    def guard(step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(s,)) for s in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def build() -> None:
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    results: dict[str, Path] = {}

    def images_from_debian() -> None:
        build_base()
        for name in ("postgres", "rabbitmq"):
            docker_build(name, IMAGES[name], HERE / name, parent=BASE_IMAGE)

    def hatchet_sources() -> None:
        src = module_source()
        # Go and Vite both want both cores; running them one after the other is as fast
        # and keeps the logs readable.
        results["binaries"] = build_binaries(src)
        results["assets"] = build_frontend(src)
        results["src"] = src

    in_parallel(images_from_debian, hatchet_sources)
    build_hatchet_images(hatchet_context(results["src"], results["binaries"], results["assets"]))
    say("done", f"rig images ready in {time.monotonic() - started:.0f}s")


def config_text() -> str:
    """The hatchet-local.yaml lines that point hatchet-local at the rig's images."""
    lines = ["pull_policy: never", "images:", *(f"  {k}: {IMAGES[k]}" for k in CONFIG_KEYS)]
    return "\n".join(lines) + "\n"


def check() -> list[str]:
    return [image for image in IMAGES.values() if image_label(image) is None]


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
