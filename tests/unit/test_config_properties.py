"""Configuration layering as a property: for any settings given in the file, the environment
and flags, every key resolves to flag > environment > file > default, and a profile changes
only the defaults."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hatchet_local.config import PROFILES, Config, default_stack, env_var, load_config

_NO_SETTINGS: dict[str, str] = {}


@dataclass(frozen=True)
class Key:
    """One setting: how its values are drawn, written in each layer, and read back."""

    values: st.SearchStrategy[Any]
    read: Callable[[Config], Any]
    env: Callable[[Any], st.SearchStrategy[str]] = lambda value: st.just(str(value))


def _bool_words(value: bool) -> st.SearchStrategy[str]:
    return st.sampled_from(["true", "yes", "on", "1", "True"] if value else ["false", "no", "0"])


_ports = st.integers(1024, 65535)
_seconds = st.integers(1, 3600)
KEYS: dict[str, Key] = {
    "stack": Key(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), lambda c: c.stack),
    "profile": Key(st.sampled_from(sorted(PROFILES)), lambda c: c.profile),
    "hatchet_version": Key(
        st.from_regex(r"v[0-9]{1,2}\.[0-9]{1,3}\.[0-9]{1,2}", fullmatch=True),
        lambda c: c.hatchet_version,
    ),
    "message_queue": Key(st.sampled_from(["rabbitmq", "postgres"]), lambda c: c.message_queue),
    "dashboard": Key(st.booleans(), lambda c: c.dashboard, _bool_words),
    "expose": Key(st.booleans(), lambda c: c.expose, _bool_words),
    "ports.dashboard": Key(_ports, lambda c: c.ports.dashboard),
    "ports.grpc": Key(_ports, lambda c: c.ports.grpc),
    "pull_policy": Key(st.sampled_from(["missing", "always", "never"]), lambda c: c.pull_policy),
    "timeouts.engine": Key(_seconds, lambda c: c.timeouts.engine),
    "timeouts.api": Key(_seconds, lambda c: c.timeouts.api),
    "namespace": Key(
        st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True), lambda c: c.namespace
    ),
    "registry": Key(
        st.from_regex(r"[a-z]{1,8}\.example/[a-z]{1,8}", fullmatch=True), lambda c: c.registry
    ),
    "images.postgres": Key(
        st.from_regex(r"postgres:1[0-9]", fullmatch=True), lambda c: c.image("postgres")
    ),
    "advertise": Key(st.from_regex(r"[a-z]{1,10}(\.lan)?", fullmatch=True), lambda c: c.advertise),
}
LAYERS = ("file", "environment", "flag")


@dataclass
class Given:
    """What each layer says: dotted key -> value (None: the layer does not set the key)."""

    file: dict[str, Any]
    environment: dict[str, str]
    flags: dict[str, Any]
    expected: dict[str, Any]  # the value each layer-set key must resolve to

    def file_text(self) -> str:
        nested: dict[str, Any] = {}
        for key, value in self.file.items():
            section, _, name = key.rpartition(".")
            (nested.setdefault(section, {}) if section else nested)[name] = value
        return yaml.safe_dump(nested)


@st.composite
def layers(draw: st.DrawFn) -> Given:
    given_ = Given({}, {}, {}, {})
    for name, key in KEYS.items():
        by_layer = {}
        for layer in draw(st.sets(st.sampled_from(LAYERS))):
            by_layer[layer] = value = draw(key.values)
            if layer == "file":
                given_.file[name] = value
            elif layer == "environment":
                given_.environment[env_var(name)] = draw(key.env(value))
            else:
                given_.flags[name] = value
        # LAYERS is in order of precedence: the last layer that sets the key wins.
        for layer in LAYERS:
            if layer in by_layer:
                given_.expected[name] = by_layer[layer]
    return given_


def load(project: Path, given_: Given, **flags: Any) -> Config:
    if given_.file:
        (project / "hatchet-local.yaml").write_text(given_.file_text())
    return load_config(project, environ=given_.environment, flags={**given_.flags, **flags})


# Each example loads the configuration from a file of its own: fewer than hypothesis's 100.
@settings(max_examples=60)
@given(layers())
def test_every_key_resolves_to_flag_then_environment_then_file_then_default(
    given_: Given,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        ports = given_.expected.get("ports.dashboard"), given_.expected.get("ports.grpc")
        assume(None in ports or ports[0] != ports[1])  # equal ports are refused (tested apart)
        config = load(project, given_)
        defaults = load_config(project / "empty", environ=_NO_SETTINGS)
        for name, key in KEYS.items():
            if name in given_.expected:
                expected = given_.expected[name]
            elif name == "stack":
                expected = default_stack(project)  # named after the folder
            else:
                expected = PROFILES[config.profile].get(name, key.read(defaults))
            assert key.read(config) == expected, name


@settings(max_examples=60)
@given(layers(), st.sampled_from(sorted(PROFILES)), st.sampled_from(sorted(PROFILES)))
def test_a_profile_changes_only_the_defaults(given_: Given, first: str, second: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        ports = given_.expected.get("ports.dashboard"), given_.expected.get("ports.grpc")
        assume(None in ports or ports[0] != ports[1])
        a, b = load(project, given_, profile=first), load(project, given_, profile=second)
        changed = {name for name, key in KEYS.items() if key.read(a) != key.read(b)}
        changeable = set(PROFILES[first]) | set(PROFILES[second])
        assert changed <= {"profile"} | (changeable - set(given_.expected))
