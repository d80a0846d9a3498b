"""Hatchet's binaries and dashboard, built from source: the Go module
`github.com/hatchet-dev/hatchet` at a release, or a local checkout (`--source DIR`).

Either source is first synced into a private copy in the build cache, so nothing is ever
written into the user's checkout or the Go module cache, and the dashboard's
`node_modules` survives from one build to the next. Each output is cached under a digest
of what it is made from and rebuilt only when that changes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from hatchet_local.build_steps import Builder, digest, require_tool, sync_tree, tree_digest
from hatchet_local.errors import BuildFailed

MODULE = "github.com/hatchet-dev/hatchet"
BINARIES = ("hatchet-lite", "hatchet-admin", "hatchet-migrate")
PNPM = "pnpm@10.16.1"
# Never copied into the build copy, nor part of a digest.
SKIP = frozenset({".git", "node_modules", "dist", ".pnpm-store"})
# The dashboard's inputs: frontend/app without what its build writes.
FRONTEND_SKIP = SKIP | {"src/lib/generated"}
# better-emitter 4.0.1, a direct dependency of the dashboard, is no longer served by the npm
# registry; 3.0.0 has the same call shape for the way the dashboard uses it.
FRONTEND_PINS = {"better-emitter": ("^4.0.1", "3.0.0")}


@dataclass(frozen=True)
class HatchetSource:
    """A Hatchet source tree copied into the cache, and what it is."""

    tree: Path
    label: str  # "v0.101.27", or the checkout's path
    version: str | None  # the release, stamped into the binaries; None for a checkout


def module_source(b: Builder, version: str) -> HatchetSource:
    """The module at `version`, downloaded by the Go toolchain (from its module proxy) and
    copied into the cache."""
    go = require_tool("go")
    b.cache.mkdir(parents=True, exist_ok=True)
    b.console.info(f"go mod download {MODULE}@{version}")
    out = b.run("source", [go, "mod", "download", "-json", f"{MODULE}@{version}"], cwd=b.cache)
    try:
        module_dir = Path(json.loads(out)["Dir"])
    except (ValueError, KeyError, TypeError):
        raise BuildFailed(f"go mod download {MODULE}@{version} named no directory") from None
    return _copy(b, module_dir, f"hatchet-{version}", version, version)


def check_checkout(directory: Path) -> Path:
    """`directory` resolved, or BuildFailed when it is not the root of a Hatchet checkout."""
    directory = directory.expanduser().resolve()
    if not (directory / "go.mod").is_file() or not (directory / "cmd" / "hatchet-lite").is_dir():
        raise BuildFailed(
            f"--source {directory}: not a Hatchet checkout (no go.mod and cmd/hatchet-lite); "
            f"give the root of a clone of {MODULE}"
        )
    return directory


def checkout_source(b: Builder, directory: Path) -> HatchetSource:
    """A local Hatchet checkout (a Hatchet contributor's working tree)."""
    directory = check_checkout(directory)
    name = f"checkout-{digest([str(directory)])[:10]}"
    return _copy(b, directory, name, str(directory), None)


def _copy(b: Builder, source: Path, name: str, label: str, version: str | None) -> HatchetSource:
    tree = b.cache / "src" / name
    b.console.info(f"syncing {label} into {tree}")
    sync_tree(source, tree, SKIP)
    return HatchetSource(tree, label, version)


def build_binaries(b: Builder, src: HatchetSource, names: tuple[str, ...] = BINARIES) -> Path:
    """`go build` of `names` (static, CGO off), cached under a digest of the tree."""
    go = require_tool("go")
    go_version = b.run("binaries", [go, "env", "GOVERSION"]).strip()
    # A release says its version; a checkout keeps the version its own source declares.
    ldflags = "-s -w" + (f" -X main.Version={src.version}" if src.version else "")
    recipe = digest(
        [go_version, ldflags, *names, *tree_digest(src.tree, SKIP | {"frontend", "sdks"})]
    )
    out = b.cache / "bin" / recipe
    if all((out / name).is_file() for name in names):
        b.console.info(f"binaries up to date ({out})")
        return out
    b.console.info(f"go build {', '.join(names)} ({go_version}); the first build takes minutes")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    b.run(
        "binaries",
        [go, "build", "-trimpath", "-ldflags", ldflags, "-o", f"{tmp}/",
         *(f"./cmd/{name}" for name in names)],
        cwd=src.tree,
        env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def build_dashboard(b: Builder, src: HatchetSource) -> Path:
    """The dashboard (`frontend/app`, built by Vite with pnpm from the npm registry),
    cached under a digest of its sources."""
    app = src.tree / "frontend" / "app"
    if not (app / "package.json").is_file():
        raise BuildFailed(f"{src.label}: no frontend/app/package.json to build the dashboard from")
    recipe = digest([PNPM, json.dumps(FRONTEND_PINS), *tree_digest(app, FRONTEND_SKIP)])
    out = b.cache / "dashboard" / recipe
    if (out / "index.html").is_file():
        b.console.info(f"dashboard up to date ({out})")
        return out
    npx = require_tool("npx")
    package = app / "package.json"
    text = package.read_text(encoding="utf-8")
    for name, (wanted, served) in FRONTEND_PINS.items():
        text = text.replace(f'"{name}": "{wanted}"', f'"{name}": "{served}"')
    package.write_text(text, encoding="utf-8")  # the cache's copy: the next sync restores it
    b.console.info(
        "dashboard: docs snippets, pnpm install, vite build; the first build takes minutes"
    )
    b.run(
        "dashboard",
        ["python3", "-X", "utf8", "generate.py"],
        cwd=src.tree / "frontend" / "snippets",
    )
    quiet = {"SENTRY_DISABLE_TELEMETRY": "1", "CI": "true"}
    pnpm = [npx, "--yes", PNPM]
    b.run("dashboard", [*pnpm, "install", "--no-frozen-lockfile", "--reporter=append-only"],
          cwd=app, env=quiet)  # fmt: skip
    b.run("dashboard", [*pnpm, "exec", "vite", "build"], cwd=app, env=quiet)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(app / "dist", tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def image_context(b: Builder, src: HatchetSource, binaries: Path, dashboard: Path) -> Path:
    """One Docker build context for the Hatchet images: binaries, dashboard, lite's
    entrypoint (Hatchet's own `hack/lite/start.sh`)."""
    ctx = b.cache / "context" / binaries.name
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    for name in BINARIES:
        shutil.copy2(binaries / name, ctx / name)
    shutil.copytree(dashboard, ctx / "static-assets")
    entrypoint = ctx / "entrypoint.sh"
    shutil.copy2(src.tree / "hack" / "lite" / "start.sh", entrypoint)
    entrypoint.chmod(0o755)
    return ctx
