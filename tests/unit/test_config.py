"""Configuration: defaults, precedence, and one error per bad value naming its source and key."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from hatchet_local import defaults
from hatchet_local.config import Config, Ports, Timeouts, default_stack, env_var, load_config
from hatchet_local.errors import ConfigError

# What each kind of value expects, exactly as the messages say it.
PORT = "a port 1024-65535 or 'auto'"
PRIVILEGED = f"{PORT} (ports below 1024 are privileged)"
BOOL = "true or false (or yes/no, on/off, 1/0)"
STACK = "1-40 lowercase letters, digits or '-', not starting or ending with '-'"
VERSION = "a release tag like 'v0.101.27' or 'latest'"
IMAGE = "an image reference like 'registry.example.com/name:tag' (no spaces)"
TIMEOUT = "a number of seconds > 0 and <= 3600"
NAMESPACE = "1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit"
QUEUES = "one of 'rabbitmq', 'postgres'"
POLICIES = "one of 'missing', 'always', 'never'"

EXAMPLE = """\
stack: myapp
hatchet_version: v0.101.28-rc.1
message_queue: postgres
dashboard: false
ports: {dashboard: auto, grpc: 7077}
registry: registry.example.com/hatchet
images: {postgres: "postgres:16.2", rabbitmq: "rabbitmq:3.13", hatchet-lite: "my/lite:dev"}
pull_policy: never
timeouts: {postgres: 1, rabbitmq: 2, migrate: 3, setup: 4, engine: 5.5, api: 6, bootstrap: 7}
env_file: secrets/hatchet.env
namespace: dev-alice
"""


def load(project: Path, **kwargs: Any) -> Config:
    """load_config with an empty environment unless one is given: never the real one."""
    kwargs.setdefault("environ", {})
    return load_config(project, **kwargs)


def write_config(project: Path, text: str) -> Path:
    path = project / "hatchet-local.yaml"
    path.write_text(text)
    return path


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its content, to prove that loading changed nothing."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def config_error(project: Path, **kwargs: Any) -> str:
    """The one-line message of the ConfigError that loading raises."""
    with pytest.raises(ConfigError) as info:
        load(project, **kwargs)
    assert info.value.exit_code == 2
    assert "\n" not in info.value.message
    return info.value.message


# --- defaults and the file ----------------------------------------------------------------


def test_defaults_without_file_or_environment(tmp_path: Path) -> None:
    assert load(tmp_path) == Config(
        stack=default_stack(tmp_path),
        hatchet_version=defaults.HATCHET_VERSION,
        profile="default",
        message_queue="rabbitmq",
        dashboard=True,
        ports=Ports(dashboard=None, grpc=None),
        registry=defaults.HATCHET_REGISTRY,
        images={},
        pull_policy="missing",
        timeouts=Timeouts(
            postgres=120, rabbitmq=180, migrate=600, setup=300, engine=300, api=120, bootstrap=120
        ),
        env_file=tmp_path.resolve() / ".env.hatchet",
        namespace=None,
        project_dir=tmp_path.resolve(),
        config_file=None,
    )


@pytest.mark.parametrize(
    "text", ["", "# only a comment\n", "timeouts:\n  # engine: 5\nimages:\n"], ids=repr
)
def test_empty_file_means_defaults(tmp_path: Path, text: str) -> None:
    without_file = load(tmp_path)
    path = write_config(tmp_path, text)

    config = load(tmp_path)

    assert config.config_file == path.resolve()
    assert dataclasses.replace(config, config_file=None) == without_file


def test_file_sets_every_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, EXAMPLE)

    config = load(tmp_path)

    assert config == Config(
        stack="myapp",
        hatchet_version="v0.101.28-rc.1",
        profile="default",
        message_queue="postgres",
        dashboard=False,
        ports=Ports(dashboard=None, grpc=7077),
        registry="registry.example.com/hatchet",
        images={
            "postgres": "postgres:16.2",
            "rabbitmq": "rabbitmq:3.13",
            "hatchet-lite": "my/lite:dev",
        },
        pull_policy="never",
        timeouts=Timeouts(
            postgres=1, rabbitmq=2, migrate=3, setup=4, engine=5.5, api=6, bootstrap=7
        ),
        env_file=tmp_path.resolve() / "secrets" / "hatchet.env",
        namespace="dev-alice",
        project_dir=tmp_path.resolve(),
        config_file=path.resolve(),
    )


def test_config_is_frozen_and_images_read_only(tmp_path: Path) -> None:
    write_config(tmp_path, "images: {postgres: 'postgres:16'}\n")
    config = load(tmp_path)

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.stack = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.images["postgres"] = "postgres:17"  # type: ignore[index]
    assert config.images == {"postgres": "postgres:16"}


def test_explicit_config_path_is_read_instead_of_the_default(tmp_path: Path) -> None:
    write_config(tmp_path, "stack: from-default-file\n")
    other = tmp_path / "elsewhere.yaml"
    other.write_text("stack: from-explicit-file\n")

    config = load(tmp_path, config_path=other)

    assert config.stack == "from-explicit-file"
    assert config.config_file == other.resolve()


def test_hatchet_local_config_points_to_a_file(tmp_path: Path) -> None:
    write_config(tmp_path, "stack: from-default-file\n")
    other = tmp_path / "ci" / "stack.yaml"
    other.parent.mkdir()
    other.write_text("stack: from-env-file\nnamespace: ci\n")

    config = load(tmp_path, environ={"HATCHET_LOCAL_CONFIG": str(other)})

    assert (config.stack, config.namespace) == ("from-env-file", "ci")
    assert config.config_file == other.resolve()


def test_config_path_beats_hatchet_local_config(tmp_path: Path) -> None:
    flag_file = tmp_path / "flag.yaml"
    flag_file.write_text("stack: from-flag-file\n")

    config = load(
        tmp_path, config_path=flag_file, environ={"HATCHET_LOCAL_CONFIG": "/does/not/exist.yaml"}
    )

    assert config.stack == "from-flag-file"


def test_relative_project_dir_is_resolved_and_named_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, "stack: BAD\n")

    message = config_error(Path())

    assert message == f"hatchet-local.yaml: stack: expected {STACK}, got 'BAD'"
    (tmp_path / "hatchet-local.yaml").write_text("stack: good\n")
    assert load(Path()).project_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("env_file", "expected"),
    [
        ("custom.env", "project/custom.env"),
        ("config/../shared.env", "project/shared.env"),
        (None, "project/absolute.env"),
    ],
)
def test_env_file_resolves_against_project_dir(
    tmp_path: Path, env_file: str | None, expected: str
) -> None:
    """Paths outside the project are refused from a config file (test_where_up_writes.py)."""
    project = tmp_path / "project"
    project.mkdir()
    absolute = project / "absolute.env"
    write_config(project, f"env_file: {env_file or absolute}\n")

    config = load(project)

    wanted = tmp_path / expected
    assert config.env_file.resolve() == wanted.resolve()


# --- precedence: defaults < file < environment < flags -----------------------------------


def test_file_beats_default(tmp_path: Path) -> None:
    write_config(tmp_path, "message_queue: postgres\n")

    assert load(tmp_path).message_queue == "postgres"


def test_environment_beats_file(tmp_path: Path) -> None:
    write_config(tmp_path, "stack: from-file\n")

    config = load(tmp_path, environ={"HATCHET_LOCAL_STACK": "from-env"})

    assert config.stack == "from-env"


def test_flag_beats_environment(tmp_path: Path) -> None:
    write_config(tmp_path, "ports: {dashboard: 8001}\n")

    config = load(
        tmp_path,
        environ={"HATCHET_LOCAL_PORTS_DASHBOARD": "8002"},
        flags={"ports.dashboard": 8003},
    )

    assert config.ports.dashboard == 8003


def test_none_flag_does_not_override(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        environ={"HATCHET_LOCAL_STACK": "from-env"},
        flags={"stack": None, "ports.grpc": None},
    )

    assert config.stack == "from-env"
    assert config.ports.grpc is None


def test_empty_environment_value_counts_as_unset(tmp_path: Path) -> None:
    write_config(tmp_path, "stack: from-file\n")

    config = load(tmp_path, environ={"HATCHET_LOCAL_STACK": "", "HATCHET_LOCAL_STAK": ""})

    assert config.stack == "from-file"


def test_auto_in_environment_overrides_a_port_in_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, "ports: {dashboard: 8001, grpc: 8002}\n")

    config = load(tmp_path, environ={"HATCHET_LOCAL_PORTS_DASHBOARD": "auto"})

    assert config.ports == Ports(dashboard=None, grpc=8002)


# --- environment variables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("stack", "HATCHET_LOCAL_STACK"),
        ("ports.dashboard", "HATCHET_LOCAL_PORTS_DASHBOARD"),
        ("images.hatchet-lite", "HATCHET_LOCAL_IMAGES_HATCHET_LITE"),
        ("timeouts.engine", "HATCHET_LOCAL_TIMEOUTS_ENGINE"),
        ("pull_policy", "HATCHET_LOCAL_PULL_POLICY"),
    ],
)
def test_env_var_names(key: str, name: str) -> None:
    assert env_var(key) == name


def test_every_kind_of_value_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "HATCHET_LOCAL_STACK": "env-stack",
        "HATCHET_LOCAL_HATCHET_VERSION": "latest",
        "HATCHET_LOCAL_MESSAGE_QUEUE": "postgres",
        "HATCHET_LOCAL_DASHBOARD": "off",
        "HATCHET_LOCAL_PORTS_DASHBOARD": "9001",
        "HATCHET_LOCAL_PORTS_GRPC": "auto",
        "HATCHET_LOCAL_REGISTRY": "localhost:5000/hatchet",
        "HATCHET_LOCAL_IMAGES_HATCHET_LITE": "localhost:5000/lite@sha256:abc123",
        "HATCHET_LOCAL_PULL_POLICY": "always",
        "HATCHET_LOCAL_TIMEOUTS_ENGINE": "2.5",
        "HATCHET_LOCAL_ENV_FILE": "other.env",
        "HATCHET_LOCAL_NAMESPACE": "ns_1",
        "HATCHET_LOCAL_STATE_DIR": "/tmp/state",
        "HATCHET_CLIENT_TOKEN": "not ours",
        "PATH": "/usr/bin",
    }

    config = load(tmp_path, environ=environ)

    assert (config.stack, config.hatchet_version, config.message_queue) == (
        "env-stack",
        "latest",
        "postgres",
    )
    assert config.dashboard is False
    assert config.ports == Ports(dashboard=9001, grpc=None)
    assert config.registry == "localhost:5000/hatchet"
    assert config.image("hatchet-lite") == "localhost:5000/lite@sha256:abc123"
    assert config.pull_policy == "always"
    assert config.timeouts.engine == 2.5
    assert config.env_file == tmp_path.resolve() / "other.env"
    assert config.namespace == "ns_1"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("true", True),
        ("YES", True),
        ("On", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("OFF", False),
        ("0", False),
    ],
)
def test_boolean_words_from_the_environment(tmp_path: Path, word: str, expected: bool) -> None:
    assert load(tmp_path, environ={"HATCHET_LOCAL_DASHBOARD": word}).dashboard is expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "HATCHET_LOCAL_STAK",
            "environment variable HATCHET_LOCAL_STAK: unknown variable;"
            " did you mean HATCHET_LOCAL_STACK?",
        ),
        (
            "HATCHET_LOCAL_PORT_DASHBOARD",
            "environment variable HATCHET_LOCAL_PORT_DASHBOARD: unknown variable;"
            " did you mean HATCHET_LOCAL_PORTS_DASHBOARD?",
        ),
        (
            "HATCHET_LOCAL_IMAGES_HATCHETLITE",
            "environment variable HATCHET_LOCAL_IMAGES_HATCHETLITE: unknown variable;"
            " did you mean HATCHET_LOCAL_IMAGES_HATCHET_LITE?",
        ),
    ],
)
def test_environment_typo_suggests_the_variable(tmp_path: Path, name: str, message: str) -> None:
    assert config_error(tmp_path, environ={name: "x"}) == message


def test_unknown_environment_variable_lists_the_valid_ones(tmp_path: Path) -> None:
    message = config_error(tmp_path, environ={"HATCHET_LOCAL_WXYZ": "x"})

    assert message.startswith(
        "environment variable HATCHET_LOCAL_WXYZ: unknown variable; use one of: "
        "HATCHET_LOCAL_STACK, HATCHET_LOCAL_HATCHET_VERSION, "
    )
    assert "did you mean" not in message
    assert message.endswith(
        "HATCHET_LOCAL_CONFIG, HATCHET_LOCAL_STATE_DIR, HATCHET_LOCAL_BUILD_CACHE"
    )


# --- image() -------------------------------------------------------------------------------


def test_image_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)

    assert config.image("postgres") == defaults.DEFAULT_IMAGES["postgres"]
    assert config.image("rabbitmq") == defaults.DEFAULT_IMAGES["rabbitmq"]
    assert config.image("hatchet-lite") == defaults.DEFAULT_IMAGES["hatchet-lite"]
    assert config.image("hatchet-lite") == (
        f"{defaults.HATCHET_REGISTRY}/hatchet-lite:{defaults.HATCHET_VERSION}"
    )


def test_image_composes_registry_and_version(tmp_path: Path) -> None:
    write_config(tmp_path, "registry: mirror.local/hatchet\nhatchet_version: v1.2.3\n")

    config = load(tmp_path)

    assert config.image("hatchet-lite") == "mirror.local/hatchet/hatchet-lite:v1.2.3"
    assert config.image("postgres") == defaults.DEFAULT_IMAGES["postgres"]


def test_image_override_wins_over_registry_and_version(tmp_path: Path) -> None:
    images = "images: {hatchet-lite: 'mine/lite:1', rabbitmq: 'rmq:4'}"
    write_config(tmp_path, f"registry: mirror.local/hatchet\n{images}\n")

    config = load(tmp_path)

    assert config.image("hatchet-lite") == "mine/lite:1"
    assert config.image("rabbitmq") == "rmq:4"
    assert config.image("postgres") == defaults.DEFAULT_IMAGES["postgres"]
    assert dict(config.images) == {"hatchet-lite": "mine/lite:1", "rabbitmq": "rmq:4"}


def test_image_refuses_an_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown image key 'redis'"):
        load(tmp_path).image("redis")


# --- default stack name -------------------------------------------------------------------


def test_default_stack_is_slug_and_path_hash(tmp_path: Path) -> None:
    project = tmp_path / "My_App.v2"
    project.mkdir()
    digest = hashlib.sha1(str(project.resolve()).encode()).hexdigest()[:6]

    assert default_stack(project) == f"my-app-v2-{digest}"
    assert load(project).stack == f"my-app-v2-{digest}"


def test_default_stack_is_stable_and_differs_between_same_named_dirs(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "app", tmp_path / "b" / "app"
    first.mkdir(parents=True)
    second.mkdir(parents=True)

    assert default_stack(first) == default_stack(first)
    assert default_stack(first) == default_stack(tmp_path / "a" / "." / "app")
    assert default_stack(first) != default_stack(second)
    assert default_stack(first)[:4] == default_stack(second)[:4] == "app-"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("--Weird  Name__", "weird-name"),
        ("x" * 50, "x" * 33),
        ("a" * 32 + "-b", "a" * 32),  # no dangling '-' after truncating
        ("___", "stack"),
        ("Ünïcode", "n-code"),
    ],
)
def test_default_stack_slug_rules(tmp_path: Path, name: str, slug: str) -> None:
    project = tmp_path / name
    project.mkdir()

    stack = default_stack(project)

    assert stack.rpartition("-")[0] == slug
    assert len(stack) <= 40
    assert load(project).stack == stack  # valid by the stack rule itself


# --- validation: values in the file -------------------------------------------------------

BAD_FILE_VALUES = [
    ("stack: My_App", "stack", STACK, "'My_App'"),
    ("stack: -app", "stack", STACK, "'-app'"),
    ("stack: " + "a" * 41, "stack", STACK, repr("a" * 41)),
    ("stack: 123", "stack", STACK, "123"),
    ("stack:", "stack", STACK, "None"),
    ("hatchet_version: 0.101.27", "hatchet_version", VERSION, "'0.101.27'"),
    ("hatchet_version: v1.2", "hatchet_version", VERSION, "'v1.2'"),
    ("message_queue: kafka", "message_queue", QUEUES, "'kafka'"),
    ("pull_policy: sometimes", "pull_policy", POLICIES, "'sometimes'"),
    ("dashboard: 1", "dashboard", BOOL, "1"),
    ("dashboard: maybe", "dashboard", BOOL, "'maybe'"),
    ("ports: {dashboard: 80}", "ports.dashboard", PRIVILEGED, "80"),
    ("ports: {grpc: 1023}", "ports.grpc", PRIVILEGED, "1023"),
    ("ports: {grpc: 0}", "ports.grpc", PORT, "0"),
    ("ports: {grpc: 65536}", "ports.grpc", PORT, "65536"),
    ("ports: {grpc: true}", "ports.grpc", PORT, "True"),
    ("ports: {grpc: 7077.5}", "ports.grpc", PORT, "7077.5"),
    ("ports: {grpc: '70a7'}", "ports.grpc", PORT, "'70a7'"),
    ("registry: ''", "registry", IMAGE, "''"),
    ("registry: 'ghcr.io/my org'", "registry", IMAGE, "'ghcr.io/my org'"),
    ("registry: Ghcr.io/x", "registry", IMAGE, "'Ghcr.io/x'"),
    ("registry: ghcr.io/x/", "registry", IMAGE, "'ghcr.io/x/'"),
    ("images: {postgres: 'postgres: 16'}", "images.postgres", IMAGE, "'postgres: 16'"),
    ("images: {hatchet-lite: ''}", "images.hatchet-lite", IMAGE, "''"),
    ("images: {rabbitmq: 3}", "images.rabbitmq", IMAGE, "3"),
    ("timeouts: {engine: 0}", "timeouts.engine", TIMEOUT, "0"),
    ("timeouts: {engine: -5}", "timeouts.engine", TIMEOUT, "-5"),
    ("timeouts: {migrate: 3601}", "timeouts.migrate", TIMEOUT, "3601"),
    ("timeouts: {api: true}", "timeouts.api", TIMEOUT, "True"),
    ("timeouts: {api: soon}", "timeouts.api", TIMEOUT, "'soon'"),
    ("env_file: ''", "env_file", "a non-empty file path", "''"),
    ("env_file: 5", "env_file", "a non-empty file path", "5"),
    ("namespace: Dev", "namespace", NAMESPACE, "'Dev'"),
    ("namespace: -dev", "namespace", NAMESPACE, "'-dev'"),
    ("namespace: " + "a" * 64, "namespace", NAMESPACE, repr("a" * 64)),
]


@pytest.mark.parametrize(("text", "key", "expected", "got"), BAD_FILE_VALUES)
def test_bad_value_in_file_names_file_and_key(
    tmp_path: Path, text: str, key: str, expected: str, got: str
) -> None:
    path = write_config(tmp_path, text + "\n")
    before = tree(tmp_path)

    message = config_error(tmp_path)

    assert message == f"{path}: {key}: expected {expected}, got {got}"
    assert tree(tmp_path) == before


def test_long_values_are_shortened_in_messages(tmp_path: Path) -> None:
    path = write_config(tmp_path, "stack: " + "x" * 200 + "\n")

    message = config_error(tmp_path)

    assert message == f"{path}: stack: expected {STACK}, got '{'x' * 76}..."


# --- validation: the file's shape ---------------------------------------------------------

BAD_FILE_SHAPES = [
    (
        "stack: ok\nports: {dashboard: 7077\nnamespace: x\n",
        "line 3: invalid YAML (expected ',' or '}', but got ':'); fix the syntax",
    ),
    (
        "stack: ok\n  bad: indent\n",
        "line 2: invalid YAML (mapping values are not allowed here); fix the syntax",
    ),
    (
        "- stack\n- ports\n",
        "expected a mapping of settings ('key: value' lines), got ['stack', 'ports']",
    ),
    ("just text\n", "expected a mapping of settings ('key: value' lines), got 'just text'"),
    ("ports: 7077\n", "ports: expected a mapping of dashboard, grpc, got 7077"),
    (
        "images: [postgres]\n",
        "images: expected a mapping of postgres, rabbitmq, hatchet-lite, got ['postgres']",
    ),
    (
        "timeouts: fast\n",
        "timeouts: expected a mapping of postgres, rabbitmq, migrate, setup, engine, api,"
        " bootstrap, got 'fast'",
    ),
    ("stak: app\n", "stak: unknown key; did you mean stack?"),
    ("pull-policy: never\n", "pull-policy: unknown key; did you mean pull_policy?"),
    (
        "colour: red\n",
        "colour: unknown key; use one of: stack, hatchet_version, profile, message_queue,"
        " dashboard, registry, pull_policy, spares, env_file, namespace, tenants, advertise,"
        " expose, images, ports, server, timeouts",
    ),
    (
        "ports.dashboard: 7077\n",
        "ports.dashboard: unknown key; write it as 'ports: {dashboard: ...}'",
    ),
    ("ports: {dashbord: 7077}\n", "ports.dashbord: unknown key; did you mean ports.dashboard?"),
    (
        "images: {hatchet_lite: x}\n",
        "images.hatchet_lite: unknown key; did you mean images.hatchet-lite?",
    ),
    (
        "timeouts: {worker: 5}\n",
        "timeouts.worker: unknown key; use one of: timeouts.postgres, timeouts.rabbitmq,"
        " timeouts.migrate, timeouts.setup, timeouts.engine, timeouts.api, timeouts.bootstrap",
    ),
    (
        "ports: {dashboard: 7077, grpc: 7077}\n",
        "ports.grpc: expected a port other than ports.dashboard's (set by {path}), got 7077",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILE_SHAPES)
def test_bad_file_shape_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write_config(tmp_path, text)
    before = tree(tmp_path)

    assert config_error(tmp_path) == f"{path}: " + message.replace("{path}", str(path))
    assert tree(tmp_path) == before


def test_undecodable_file_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "hatchet-local.yaml"
    path.write_bytes(b"stack: \xff\xfe\n")

    message = config_error(tmp_path)

    assert message == f"{path}: not UTF-8 text (byte 0xff at offset 7); save it as UTF-8"


def test_env_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "envdir").mkdir()
    path = write_config(tmp_path, "env_file: envdir\n")
    before = tree(tmp_path)

    message = config_error(tmp_path)

    assert message == f"{path}: env_file: expected a file path, not a directory, got 'envdir'"
    assert tree(tmp_path) == before


def test_default_env_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / ".env.hatchet").mkdir()

    message = config_error(tmp_path)

    assert message == (
        "built-in default: env_file: expected a file path, not a directory, got '.env.hatchet'"
    )


# --- validation: finding and reading the file ---------------------------------------------


def test_missing_explicit_config_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    message = config_error(tmp_path, config_path=missing)

    assert message == f"{missing}: config file not found; fix the path given to --config"
    assert tree(tmp_path) == {}


def test_missing_file_from_hatchet_local_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    message = config_error(tmp_path, environ={"HATCHET_LOCAL_CONFIG": str(missing)})

    assert message == f"{missing}: config file not found; fix the path in HATCHET_LOCAL_CONFIG"


def test_directory_at_the_default_location(tmp_path: Path) -> None:
    (tmp_path / "hatchet-local.yaml").mkdir()
    before = tree(tmp_path)

    message = config_error(tmp_path)

    assert message == (
        f"{tmp_path / 'hatchet-local.yaml'}: is a directory, expected a YAML config file;"
        " move it away or pass --config"
    )
    assert tree(tmp_path) == before


def test_directory_as_explicit_config_path(tmp_path: Path) -> None:
    message = config_error(tmp_path, config_path=tmp_path)

    assert message == (
        f"{tmp_path}: is a directory, expected a YAML config file; fix the path given to --config"
    )


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, "stack: ok\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    # Patched rather than chmod-ed: root reads any file whatever its mode.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    message = config_error(tmp_path)
    monkeypatch.undo()

    assert message == (
        f"{path}: cannot read the config file (permission denied); check its permissions"
    )
    assert path.read_text() == "stack: ok\n"


# --- validation: environment variables and flags ------------------------------------------

BAD_ENV_VALUES = [
    ("HATCHET_LOCAL_STACK", "Bad", "stack", STACK),
    ("HATCHET_LOCAL_HATCHET_VERSION", "1.0.0", "hatchet_version", VERSION),
    ("HATCHET_LOCAL_MESSAGE_QUEUE", "kafka", "message_queue", QUEUES),
    ("HATCHET_LOCAL_PULL_POLICY", "Always", "pull_policy", POLICIES),
    ("HATCHET_LOCAL_DASHBOARD", "2", "dashboard", BOOL),
    ("HATCHET_LOCAL_PORTS_DASHBOARD", "80", "ports.dashboard", PRIVILEGED),
    ("HATCHET_LOCAL_PORTS_DASHBOARD", "7077x", "ports.dashboard", PORT),
    ("HATCHET_LOCAL_PORTS_GRPC", "-7077", "ports.grpc", PORT),
    ("HATCHET_LOCAL_PORTS_GRPC", " 7077", "ports.grpc", PORT),
    ("HATCHET_LOCAL_REGISTRY", "ghcr.io/a b", "registry", IMAGE),
    ("HATCHET_LOCAL_IMAGES_POSTGRES", "Postgres", "images.postgres", IMAGE),
    ("HATCHET_LOCAL_TIMEOUTS_ENGINE", "abc", "timeouts.engine", TIMEOUT),
    ("HATCHET_LOCAL_TIMEOUTS_ENGINE", "0", "timeouts.engine", TIMEOUT),
    ("HATCHET_LOCAL_TIMEOUTS_SETUP", "inf", "timeouts.setup", TIMEOUT),
    ("HATCHET_LOCAL_TIMEOUTS_SETUP", "nan", "timeouts.setup", TIMEOUT),
    ("HATCHET_LOCAL_ENV_FILE", "   ", "env_file", "a non-empty file path"),
    ("HATCHET_LOCAL_NAMESPACE", "Team", "namespace", NAMESPACE),
]


@pytest.mark.parametrize(("name", "value", "key", "expected"), BAD_ENV_VALUES)
def test_bad_environment_value_names_variable_and_key(
    tmp_path: Path, name: str, value: str, key: str, expected: str
) -> None:
    message = config_error(tmp_path, environ={name: value})

    assert message == f"environment variable {name}: {key}: expected {expected}, got {value!r}"
    assert tree(tmp_path) == {}


def test_equal_ports_from_different_sources(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ports: {dashboard: 7077}\n")

    message = config_error(
        tmp_path, flags={"ports.grpc": 7077}, flag_names={"ports.grpc": "--grpc-port"}
    )

    assert message == (
        f"--grpc-port: ports.grpc: expected a port other than ports.dashboard's"
        f" (set by {path}), got 7077"
    )


def test_both_ports_auto_is_fine(tmp_path: Path) -> None:
    environ = {"HATCHET_LOCAL_PORTS_DASHBOARD": "auto", "HATCHET_LOCAL_PORTS_GRPC": "AUTO"}

    assert load(tmp_path, environ=environ).ports == Ports(dashboard=None, grpc=None)


# (dotted key, typed value, option name or None, expected); the message shows repr(value).
BAD_FLAG_VALUES = [
    ("ports.dashboard", 80, "--dashboard-port", PRIVILEGED),
    ("ports.grpc", True, None, PORT),
    ("ports.grpc", "grpc", "--grpc-port", PORT),
    ("dashboard", "maybe", "--dashboard/--no-dashboard", BOOL),
    ("dashboard", 1, None, BOOL),
    ("timeouts.engine", 0.0, "--engine-timeout", TIMEOUT),
    ("timeouts.engine", False, None, TIMEOUT),
    ("stack", "Bad Name", "--stack", STACK),
    ("hatchet_version", "main", "--hatchet-version", VERSION),
    ("env_file", "", "--env-file", "a non-empty file path"),
]


@pytest.mark.parametrize(("key", "value", "flag", "expected"), BAD_FLAG_VALUES)
def test_bad_flag_value_names_flag_and_key(
    tmp_path: Path, key: str, value: object, flag: str | None, expected: str
) -> None:
    names = {key: flag} if flag else {}

    message = config_error(tmp_path, flags={key: value}, flag_names=names)

    source = flag or f"flag {key}"
    assert message == f"{source}: {key}: expected {expected}, got {value!r}"


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("ports.grpc", 7077, lambda c: c.ports.grpc, 7077),
        ("ports.dashboard", "auto", lambda c: c.ports.dashboard, None),
        ("dashboard", False, lambda c: c.dashboard, False),
        ("timeouts.api", 5, lambda c: c.timeouts.api, 5.0),
        ("env_file", Path("x.env"), lambda c: c.env_file.name, "x.env"),
        ("images.postgres", "postgres:17", lambda c: c.image("postgres"), "postgres:17"),
    ],
)
def test_typed_flag_values(
    tmp_path: Path, key: str, value: object, field: Any, expected: object
) -> None:
    assert field(load(tmp_path, flags={key: value})) == expected


def test_unknown_flag_key_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no config key 'ports\.http'"):
        load(tmp_path, flags={"ports.http": 8080})


def test_the_ci_profile_changes_defaults_only(tmp_path: Path) -> None:
    ci = load(tmp_path, environ={"HATCHET_LOCAL_PROFILE": "ci"})
    assert (ci.profile, ci.message_queue, ci.dashboard) == ("ci", "postgres", False)
    (tmp_path / "hatchet-local.yaml").write_text("profile: ci\nmessage_queue: rabbitmq\n")
    explicit = load(tmp_path, environ={"HATCHET_LOCAL_DASHBOARD": "true"})
    assert (explicit.message_queue, explicit.dashboard) == ("rabbitmq", True)


# --- bad input found by tests/test_bad_input.py ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("stack: a\nstack: b\n", "stack", 2),
        ("ports:\n  grpc: 9001\n  grpc: 9002\n", "grpc", 3),
        ("images: {postgres: 'a:1', postgres: 'b:2'}\n", "postgres", 1),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path: Path, text: str, key: str, line: int) -> None:
    path = write_config(tmp_path, text)
    assert config_error(tmp_path) == (
        f"{path}: line {line}: invalid YAML (duplicate key {key!r}); fix the syntax"
    )


def test_a_merge_key_may_be_overridden(tmp_path: Path) -> None:
    # `<<` merges a mapping whose keys the explicit ones override: not a duplicate.
    text = "timeouts: &t {api: 5}\nports:\n  <<: {grpc: 9001, dashboard: 9002}\n  grpc: 9003\n"
    write_config(tmp_path, text)
    assert load(tmp_path).ports == Ports(dashboard=9002, grpc=9003)


def test_a_dangling_symlink_is_not_taken_for_no_file(tmp_path: Path) -> None:
    path = tmp_path / "hatchet-local.yaml"
    path.symlink_to(tmp_path / "elsewhere.yaml")
    assert config_error(tmp_path) == (
        f"{path}: a symlink to {tmp_path / 'elsewhere.yaml'}, which does not exist; "
        "fix the link or remove it"
    )


def test_a_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "hatchet-local.yaml"
    os.mkfifo(path)  # reading it would block until a writer came
    assert config_error(tmp_path) == f"{path}: not a regular file, expected a YAML config file"


@pytest.mark.parametrize(
    "ref",
    [
        "postgres",
        "postgres:15.6",
        "rabbitmq:3-management",
        "hatchet-local-rig/hatchet-lite:v0.101.27",
        "ghcr.io/hatchet-dev/hatchet/hatchet-lite:v0.101.27",
        "localhost:5000/lite@sha256:abc123",
        "registry.example.com:443/a/b_c/d__e/f-g:Tag_1.2-rc",
        "my/lite:dev@sha256:0123456789abcdef",
    ],
)
def test_image_references_docker_accepts(tmp_path: Path, ref: str) -> None:
    write_config(tmp_path, f"images: {{postgres: '{ref}'}}\n")
    assert load(tmp_path).image("postgres") == ref


@pytest.mark.parametrize(
    "ref",
    ["a//b", "UP/x:1", "x:", "x:-tag", "-x", "x/", "host:port/x", "a_/b", "x@sha256:", "x y"],
)
def test_image_references_docker_refuses(tmp_path: Path, ref: str) -> None:
    path = write_config(tmp_path, f"images: {{postgres: '{ref}'}}\n")
    assert config_error(tmp_path) == (f"{path}: images.postgres: expected {IMAGE}, got {ref!r}")


def test_a_deeply_nested_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    depth = 5000
    (tmp_path / "hatchet-local.yaml").write_text("a: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(tmp_path, environ={})
