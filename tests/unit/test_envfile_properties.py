"""Properties of the settings file writer, with python-dotenv as the oracle for what the Hatchet
Python SDK reads back.

hatchet-sdk 1.37.2 reads its settings with pydantic-settings (`env_file=(".env",
".env.hatchet", ".env.dev", ".env.local")`), whose dotenv source calls
`dotenv_values(path, encoding="utf-8")`: interpolation of `${VAR}` is ON, for quoted values
too, and the file is opened in text mode, so a raw `\\r` reads back as a newline. `read_back`
reads the same way.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

import pytest
from dotenv import dotenv_values
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from hatchet_local.envfile import merge_dotenv, quote, render, write_env_file
from hatchet_local.errors import ConfigError

OUR_KEYS = [
    "HATCHET_CLIENT_TOKEN",
    "HATCHET_CLIENT_TLS_STRATEGY",
    "HATCHET_CLIENT_HOST_PORT",
    "HATCHET_CLIENT_SERVER_URL",
    "HATCHET_CLIENT_TENANT_ID",
    "HATCHET_CLIENT_NAMESPACE",
]
# Characters that matter to a dotenv reader, mixed into arbitrary text (unicode included).
TRICKY = [*"\n\r\"'#$\\{}= \t`:", "${X}", "${X:-d}", "\r\n", "\u2028", "\x0c", "é", "💥"]


def read_back(text: str, *, interpolate: bool = True) -> dict[str, str | None]:
    """What the Hatchet SDK reads from a settings file holding `text`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".env.hatchet"
        path.write_bytes(text.encode())
        return dotenv_values(path, encoding="utf-8", interpolate=interpolate)


def merged_or_refused(existing: str, settings_: Mapping[str, str]) -> str | None:
    """`merge_dotenv`, or None when it refuses because a quote someone left open would take
    our lines in: only ever for a value that needs quotes."""
    try:
        return merge_dotenv(existing, settings_)
    except ConfigError as exc:
        assert "opens a quote that closes only in a later line" in exc.message
        assert any(quote(value) != value for value in settings_.values())
        return None


def interpolated(value: str) -> bool:
    """Whether a dotenv reader would expand part of `value` (see `quote`)."""
    return "${" in value


values = st.lists(
    st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")), max_size=30
).map("".join)
writable = values.filter(lambda v: not interpolated(v))
our_settings = st.dictionaries(st.sampled_from(OUR_KEYS), writable, min_size=1)
endings = st.sampled_from(["\n", "\r\n"])


# --- values ---------------------------------------------------------------------------------


@given(writable)
@example("ends in a newline\n")
@example("carriage\rreturn")
@example("a\r\nb")
@example("$HOME and $")
@example("form\x0cfeed")
def test_a_quoted_value_reads_back_as_written(value: str) -> None:
    assert read_back(f"K={quote(value)}\n")["K"] == value


@given(values.filter(interpolated))
def test_a_value_a_reader_would_expand_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"\$\{"):
        quote(value)


@given(our_settings)
def test_render_dotenv_reads_back_as_the_settings(settings_: dict[str, str]) -> None:
    assert read_back(render(settings_, "dotenv")) == settings_


# --- merging into a file of arbitrary text ---------------------------------------------------


@given(values, our_settings)
@example("A=1\x0cHATCHET_CLIENT_TOKEN=old\n", {"HATCHET_CLIENT_TOKEN": "new"})
@example("A=1\u2028HATCHET_CLIENT_TOKEN=old", {"HATCHET_CLIENT_TOKEN": "new"})
def test_a_file_without_our_keys_is_kept_byte_for_byte(
    existing: str, settings_: dict[str, str]
) -> None:
    """Our keys are appended; everything before them is the file as it was (a last line
    without a line ending gets one)."""
    for key in settings_:
        existing = existing.replace(key, "X")
    merged = merged_or_refused(existing, settings_)
    assume(merged is not None)
    assert merged is not None
    newline = "\r\n" if "\r\n" in existing else "\n"
    kept = existing if not existing or existing.endswith(("\n", "\r")) else existing + newline
    assert merged.startswith(kept)
    assert merged[len(kept) :] == "".join(f"{k}={quote(v)}{newline}" for k, v in settings_.items())


@given(values, our_settings)
@example('A="open\n', {"HATCHET_CLIENT_NAMESPACE": "has space"})
def test_merging_twice_is_merging_once(existing: str, settings_: dict[str, str]) -> None:
    once = merged_or_refused(existing, settings_)
    assert once is None or merge_dotenv(once, settings_) == once


@given(
    values,
    st.dictionaries(st.sampled_from(OUR_KEYS), st.from_regex(r"[A-Za-z0-9.:/-]*", fullmatch=True)),
)
@example('A="open\nB="closes in a later line"\n', {"HATCHET_CLIENT_TOKEN": "eyJ.x.y"})
def test_the_values_up_writes_are_never_refused(existing: str, settings_: dict[str, str]) -> None:
    """Tokens, URLs, host:port, ids, names: plain values, written whatever the file holds."""
    merged = merge_dotenv(existing, settings_)
    read = read_back(merged)
    assert {key: read.get(key) for key in settings_} == settings_


# --- merging into a well-formed file ----------------------------------------------------------


def dotenv_quoted(value: str, quote_char: str) -> str:
    """`value` quoted the way a person may write it: raw newlines allowed inside quotes."""
    escaped = value.replace("\\", "\\\\").replace(quote_char, f"\\{quote_char}")
    return f"{quote_char}{escaped}{quote_char}"


# A value a user wrote: plain words, or quoted and possibly spanning lines, possibly holding
# text that looks like one of our assignments.
user_text = st.lists(
    st.one_of(
        st.sampled_from([*OUR_KEYS, "=", "\n", "\r", " ", "#", "export ", "\x0c", "\u2028"]),
        st.characters(codec="utf-8", exclude_characters="${}"),
    ),
    max_size=12,
).map("".join)
user_values = st.one_of(
    st.from_regex(r"[A-Za-z0-9_./:@+-]*", fullmatch=True),
    st.builds(dotenv_quoted, user_text, st.sampled_from(["'", '"'])),
)
leads = st.sampled_from(["", "  ", "export ", "\texport  "])


@st.composite
def entries(draw: st.DrawFn) -> tuple[str, str | None]:
    """One entry of a settings file a person wrote, and the key it assigns if one of ours."""
    ending = draw(endings)
    kind = draw(st.sampled_from(["comment", "blank", "user", "ours", "bare ours", "quoted ours"]))
    if kind == "comment":
        return (
            f"{draw(st.sampled_from(['', '  ']))}# {draw(st.sampled_from(OUR_KEYS))}=x{ending}",
            None,
        )
    if kind == "blank":
        return draw(st.sampled_from(["", "  ", "\t"])) + ending, None
    if kind == "user":
        key = draw(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True))
        return f"{draw(leads)}{key}={draw(user_values)}{ending}", None
    key = draw(st.sampled_from(OUR_KEYS))
    if kind == "bare ours":  # a key named without a value: dotenv reads it as None
        return f"{draw(leads)}{key}{ending}", key
    if kind == "quoted ours":  # dotenv reads 'KEY'=value as KEY=value
        return f"{draw(leads)}'{key}'={draw(user_values)}{ending}", key
    spaced = draw(st.sampled_from(["=", " = ", "= "]))
    return f"{draw(leads)}{key}{spaced}{draw(user_values)}{ending}", key


def user_bindings(text: str, ours: Mapping[str, str]) -> dict[str, str | None]:
    """The values dotenv reads, without interpolation, for every key that is not ours."""
    return {k: v for k, v in read_back(text, interpolate=False).items() if k not in ours}


@given(st.lists(entries(), max_size=8), our_settings)
@example([('A="x\nHATCHET_CLIENT_TOKEN=inside a value\n"\n', None)], {"HATCHET_CLIENT_TOKEN": "t"})
@example([("HATCHET_CLIENT_TOKEN=a\n", "HATCHET_CLIENT_TOKEN"),
          ("export HATCHET_CLIENT_TOKEN\n", "HATCHET_CLIENT_TOKEN")],
         {"HATCHET_CLIENT_TOKEN": "t"})  # fmt: skip
@example(
    [("HATCHET_CLIENT_TOKEN='a\nB=1\n'\n", "HATCHET_CLIENT_TOKEN")], {"HATCHET_CLIENT_TOKEN": "t"}
)
@settings(max_examples=200)
def test_a_merged_file_gives_the_sdk_our_values_and_keeps_every_other_entry(
    file: list[tuple[str, str | None]], settings_: dict[str, str]
) -> None:
    existing = "".join(text for text, _ in file)
    merged = merge_dotenv(existing, settings_)

    # Every other entry is kept byte for byte, in its place; each of our keys is set where
    # it first stood, later assignments of it dropped, the missing ones appended.
    expected, done = [], set()
    for text, key in file:
        if key is None or key not in settings_:
            expected.append(text)
        elif key not in done:
            lead = re.match(r"[ \t]*(?:export[ \t]+)?", text).group()  # type: ignore[union-attr]
            ending = text[len(text.rstrip("\r\n")) :]
            expected.append(f"{lead}{key}={quote(settings_[key])}{ending}")
            done.add(key)
    newline = "\r\n" if "\r\n" in existing else "\n"
    expected += [f"{k}={quote(v)}{newline}" for k, v in settings_.items() if k not in done]
    assert merged == "".join(expected)

    # What the SDK reads: our values, and the user's own values unchanged.
    read = read_back(merged)
    assert {key: read.get(key) for key in settings_} == settings_
    assert user_bindings(merged, settings_) == user_bindings(existing, settings_)


# --- the file on disk and the SDK itself ---------------------------------------------------------


@given(values, our_settings)
@settings(max_examples=50)
def test_write_env_file_writes_exactly_the_merge(existing: str, settings_: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".env.hatchet"
        path.write_bytes(existing.encode())
        merged = merged_or_refused(existing, settings_)
        if merged is None:
            with pytest.raises(ConfigError):
                write_env_file(path, settings_)
            assert path.read_bytes() == existing.encode()
        else:
            write_env_file(path, settings_)
            assert path.read_bytes() == merged.encode()


def test_the_sdk_reads_env_hatchet_through_python_dotenv_with_interpolation() -> None:
    """The premise of `read_back`, checked against the installed SDK."""
    from hatchet_sdk.config import ClientTLSConfig
    from pydantic_settings import DotEnvSettingsSource

    assert ".env.hatchet" in ClientTLSConfig.model_config["env_file"]  # type: ignore[operator]
    source = DotEnvSettingsSource(ClientTLSConfig)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".env.hatchet"
        path.write_text("A=a\nB=${A}x\nC='${A}'\n")
        assert source._static_read_env_file(path) == {"a": "a", "b": "ax", "c": "a"}


@given(writable)
@settings(max_examples=50)
def test_the_sdk_reads_back_the_value_written(value: str) -> None:
    from hatchet_sdk.config import ClientTLSConfig

    others = {k: v for k, v in os.environ.items() if not k.startswith("HATCHET_CLIENT_")}
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, others, clear=True):
        path = Path(tmp) / ".env.hatchet"
        write_env_file(path, {"HATCHET_CLIENT_TLS_STRATEGY": value})
        assert ClientTLSConfig(_env_file=path).strategy == value  # type: ignore[call-arg]
