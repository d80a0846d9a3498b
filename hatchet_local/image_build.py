"""`images build`: the images a stack needs, made on this machine when no registry serves
them.

- hatchet-lite from source: the Go module `github.com/hatchet-dev/hatchet` at the
  configured version, or a local checkout (`--source DIR`), with the dashboard.
- Postgres and RabbitMQ from Debian's packages on a Debian base made by debootstrap, when
  their registry does not answer (otherwise the registry's images are pulled).

Every image is named `hatchet-local/<name>:<tag>` and labelled with the recipe it was made
from (the recipe files, its inputs and its parent image), so an unchanged recipe is never
rebuilt. `up` uses a build for the configured version in place of the registry's image
(see `local_builds`).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from hatchet_local import docker
from hatchet_local.build_steps import Builder, digest, require_root, require_tool, tree_digest
from hatchet_local.config import Config
from hatchet_local.defaults import ENGINE_SERVICE, backing_services, stack_services
from hatchet_local.errors import BuildFailed, ConfigError, ImageMissing
from hatchet_local.hatchet_source import (
    HatchetSource,
    build_binaries,
    build_dashboard,
    check_checkout,
    checkout_source,
    image_context,
    module_source,
)
from hatchet_local.runner import Runner

PREFIX = "hatchet-local"
KEY_LABEL = "io.hatchet-local.image"  # which image key a build stands in for
RECIPE_LABEL = "io.hatchet-local.recipe"
SOURCE_LABEL = "io.hatchet-local.source"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_IMAGE = f"{PREFIX}/debian:{DEBIAN_SUITE}"
RUNTIME_IMAGE = f"{PREFIX}/hatchet-runtime:{DEBIAN_SUITE}"
# Debian bookworm's packages: PostgreSQL 15, RabbitMQ 3.10 with its management plugin.
DEBIAN_TAGS = {"postgres": "15", "rabbitmq": "3-management"}
SOURCE_TAG = "source"
# What a pull that never reached its registry says (Docker and Compose both).
_NO_REGISTRY = re.compile(
    r'Get "https?://(?P<host>[^/"]+)/v2/[^"]*":\s*(?P<why>[^\n]*(?:no such host|dial tcp|'
    r"i/o timeout|connection refused|network is unreachable|TLS handshake timeout|"
    r"Client\.Timeout|proxyconnect)[^\n]*)"
)


_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_tag(tag: str) -> None:
    if not _TAG.fullmatch(tag):
        raise ConfigError(
            f"--tag {tag!r}: expected a Docker tag (letters, digits, '_', '.', '-'; at most 128)"
        )


def recipes_dir() -> Path:
    """Inside the wheel the recipes sit in the package; in a checkout, at the top level."""
    packaged = Path(__file__).parent / "recipes"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "recipes"


def local_image(key: str, version: str) -> str:
    """The name a build for image key `key` gets: `hatchet-local/hatchet-lite:v0.101.27`."""
    return f"{PREFIX}/{key}:{DEBIAN_TAGS.get(key, version)}"


def local_builds(runner: Runner, config: Config) -> dict[str, str]:
    """Image key -> a build on this engine that stands in for the registry's image: for
    every image the stack runs that the configuration leaves to its default and whose
    build for the configured version is present. An `images:` entry always wins."""
    found = {}
    for key in stack_services(config.message_queue):
        if key in config.images:
            continue
        ref = local_image(key, config.hatchet_version)
        if image_label(runner, ref, KEY_LABEL) == key:
            found[key] = ref
    return found


def image_label(runner: Runner, ref: str, label: str) -> str | None:
    """The value of `label` on image `ref`; None when the image is not here."""
    result = runner.run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}',
         ref],
        timeout=60,
    )  # fmt: skip
    docker.check_reached(result, f"looking for image {ref}")
    return result.stdout.strip() if result.ok else None


def registry_unreachable(output: str, image: str) -> ImageMissing | None:
    """The one-line error for a pull that could not reach its registry, with the ways
    out; None when `output` says something else."""
    matches = [m for m in _NO_REGISTRY.finditer(output) if _host(m["host"]) == registry_of(image)]
    if not matches:
        return None
    host, why = registry_of(image), matches[0]["why"].rsplit(": ", 1)[-1].strip()
    return ImageMissing(
        f"cannot pull {image}: registry {host} does not answer ({why}); build the images "
        f"here with `hatchet-local images build`, load them with `hatchet-local images load "
        f"FILE`, set `registry:` (or `images:`) to a mirror you reach, or use `pull_policy: "
        f"never` with the images already on this machine"
    )


def registry_of(image: str) -> str:
    """The registry an image reference is pulled from (`docker.io` when it names none)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _host(host: str) -> str:
    return "docker.io" if host in ("registry-1.docker.io", "index.docker.io") else host


@dataclass(frozen=True)
class BuildResult:
    images: dict[str, str]  # image key -> the image `up` will use
    built: list[str] = field(default_factory=list)  # images made (or pulled) by this build
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"images": self.images, "built": self.built, "seconds": round(self.seconds, 1)}


def build(
    config: Config, b: Builder, *, source: Path | None = None, tag: str | None = None
) -> BuildResult:
    """Build (or find up to date) every image the configuration needs that no `images:`
    entry names: hatchet-lite from source, Postgres and RabbitMQ from Debian when their
    registry does not answer."""
    started = time.monotonic()
    if source is not None:
        check_checkout(source)  # before minutes of other work
    built: list[str] = []
    images: dict[str, str] = {}
    for key in backing_services(config.message_queue):
        images[key] = _backing_image(config, b, key, built)
    if ENGINE_SERVICE in config.images and source is None:
        images[ENGINE_SERVICE] = config.images[ENGINE_SERVICE]  # the user's own: leave it
    else:
        with b.console.phase("Hatchet source"):
            src = (checkout_source(b, source) if source is not None
                   else module_source(b, config.hatchet_version))  # fmt: skip
        tag = tag or (SOURCE_TAG if source is not None else config.hatchet_version)
        name = f"{PREFIX}/{ENGINE_SERVICE}:{tag}"
        images[ENGINE_SERVICE] = hatchet_image(b, src, name, built)
    return BuildResult(images, built, time.monotonic() - started)


def _backing_image(config: Config, b: Builder, key: str, built: list[str]) -> str:
    """Postgres or RabbitMQ: the image named in `images:`, the registry's (pulled), or
    one built from Debian's packages when the registry does not answer."""
    if key in config.images:
        return config.images[key]
    default = config.image(key)
    with b.console.phase(key):
        if docker.image_present(b.runner, default):
            b.console.info(f"{default} is here")
            return default
        pulled = b.runner.run(["docker", "pull", "--quiet", default], timeout=1800)
        docker.check_reached(pulled, f"pulling {default}")
        if pulled.ok:
            built.append(default)
            return default
        if registry_unreachable(pulled.output, default) is None:
            raise BuildFailed(f"cannot pull {default}: {pulled.output.strip().splitlines()[-1]}")
        b.console.info(f"no registry answers for {default}: building it from Debian's packages")
        ref = local_image(key, config.hatchet_version)
        debian_base(b, built)
        docker_build(b, ref, recipes_dir() / key, parent=BASE_IMAGE, key=key, built=built)
        return ref


def hatchet_image(b: Builder, src: HatchetSource, name: str, built: list[str]) -> str:
    """hatchet-lite as Hatchet lays it out, on a Debian runtime base."""
    with b.console.phase("hatchet binaries"):
        binaries = build_binaries(b, src)
    with b.console.phase("dashboard"):
        dashboard = build_dashboard(b, src)
    with b.console.phase(f"image {name}"):
        debian_base(b, built)
        recipes = recipes_dir() / "hatchet"
        docker_build(b, RUNTIME_IMAGE, recipes / "runtime", parent=BASE_IMAGE, built=built)
        dockerfile = recipes / f"{ENGINE_SERVICE}.Dockerfile"
        start = (src.tree / "hack" / "lite" / "start.sh").read_bytes()
        recipe = digest(
            [_image_id(b, RUNTIME_IMAGE), dockerfile.read_bytes(), binaries.name, dashboard.name,
             start]
        )  # fmt: skip
        if image_label(b.runner, name, RECIPE_LABEL) == recipe:
            b.console.info(f"{name} up to date")
            return name
        context = image_context(b, src, binaries, dashboard)
        _docker_build(b, name, context, dockerfile, parent=RUNTIME_IMAGE, recipe=recipe,
                      key=ENGINE_SERVICE, source=src.label)  # fmt: skip
        shutil.rmtree(context, ignore_errors=True)
        built.append(name)
    return name


def debian_base(b: Builder, built: list[str]) -> None:
    """`hatchet-local/debian:bookworm`: debootstrap's minbase, imported into Docker."""
    recipe = digest([DEBIAN_SUITE, DEBIAN_MIRROR, "minbase", "v2"])
    if image_label(b.runner, BASE_IMAGE, RECIPE_LABEL) == recipe:
        return
    debootstrap = require_tool("debootstrap")
    tar = require_tool("tar")
    require_root(f"building {BASE_IMAGE}")
    rootfs = b.cache / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    b.console.info(f"debootstrap {DEBIAN_SUITE} (a few minutes)")
    b.run("base", [debootstrap, "--variant=minbase", DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR])
    # debootstrap leaves its downloads and package lists (~80 MB); images built on the
    # base run `apt-get update` themselves.
    for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (rootfs / leftovers).glob("*"):
            if path.is_file():
                path.unlink()
    archive = b.cache / "rootfs.tar"
    b.run("base", [tar, "-C", str(rootfs), "-cf", str(archive), "."])
    b.run("base", ["docker", "import", "-c", f"LABEL {RECIPE_LABEL}={recipe}",
                   "-c", 'CMD ["/bin/bash"]', str(archive), BASE_IMAGE])  # fmt: skip
    archive.unlink()
    shutil.rmtree(rootfs, ignore_errors=True)
    built.append(BASE_IMAGE)


def docker_build(
    b: Builder, image: str, context: Path, *, parent: str, built: list[str], key: str = ""
) -> None:
    """Build `context/Dockerfile` on `parent` unless `image` carries the same recipe."""
    dockerfile = context / "Dockerfile"
    recipe = digest([_image_id(b, parent), *tree_digest(context)])
    if image_label(b.runner, image, RECIPE_LABEL) == recipe:
        b.console.info(f"{image} up to date")
        return
    _docker_build(b, image, context, dockerfile, parent=parent, recipe=recipe, key=key,
                  source="debian")  # fmt: skip
    built.append(image)


def _docker_build(
    b: Builder, image: str, context: Path, dockerfile: Path, *, parent: str, recipe: str,
    key: str, source: str,
) -> None:  # fmt: skip
    b.console.info(f"building {image}")
    labels = [f"{RECIPE_LABEL}={recipe}", f"{SOURCE_LABEL}={source}"]
    if key:
        labels.append(f"{KEY_LABEL}={key}")
    b.run(
        f"image-{image.rsplit('/', 1)[-1].replace(':', '-')}",
        ["docker", "build", "--quiet", *(arg for lb in labels for arg in ("--label", lb)),
         "--build-arg", f"BASE_IMAGE={parent}", "-f", str(dockerfile), "-t", image,
         str(context)],
        env={"DOCKER_BUILDKIT": "0"},
    )  # fmt: skip


def _image_id(b: Builder, image: str) -> str:
    result = b.runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], timeout=60)
    docker.check_reached(result, f"looking for image {image}")
    if not result.ok:
        raise BuildFailed(f"image {image} is missing after it was built; run the build again")
    return result.stdout.strip()
