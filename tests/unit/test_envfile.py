"""`.env.hatchet`: merged into the user's file line by line, written privately and atomically."""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values

from hatchet_local.envfile import masked, merge_dotenv, quote, render, write_env_file
from hatchet_local.errors import ConfigError, HatchetLocalError

TOKEN = "eyJhbGciOiJFUzI1NiJ9.payload.signature"
SETTINGS = {
    "HATCHET_CLIENT_TOKEN": TOKEN,
    "HATCHET_CLIENT_TLS_STRATEGY": "none",
    "HATCHET_CLIENT_HOST_PORT": "localhost:17077",
}


# --- merge_dotenv ---------------------------------------------------------------------------


def test_empty_file_gets_every_key_in_order() -> None:
    assert merge_dotenv("", SETTINGS) == (
        f"HATCHET_CLIENT_TOKEN={TOKEN}\n"
        "HATCHET_CLIENT_TLS_STRATEGY=none\n"
        "HATCHET_CLIENT_HOST_PORT=localhost:17077\n"
    )


def test_unrelated_lines_are_kept_byte_for_byte() -> None:
    existing = (
        "# my settings\n"
        "\n"
        "export DEBUG=1\n"
        "   # indented comment with HATCHET_CLIENT_TOKEN=commented\n"
        "DATABASE_URL='postgres://x'  # trailing comment\n"
        "  \t\n"
        "WEIRD LINE WITHOUT EQUALS\n"
    )
    merged = merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN})
    assert merged == existing + f"HATCHET_CLIENT_TOKEN={TOKEN}\n"


def test_our_keys_are_replaced_where_they_stand() -> None:
    existing = (
        "A=1\nHATCHET_CLIENT_TOKEN=old-token\nB=2\nHATCHET_CLIENT_HOST_PORT = localhost:7077\nC=3\n"
    )
    assert merge_dotenv(existing, SETTINGS) == (
        "A=1\n"
        f"HATCHET_CLIENT_TOKEN={TOKEN}\n"
        "B=2\n"
        "HATCHET_CLIENT_HOST_PORT=localhost:17077\n"
        "C=3\n"
        "HATCHET_CLIENT_TLS_STRATEGY=none\n"
    )


def test_export_prefix_and_indentation_of_our_key_are_kept() -> None:
    existing = "  export HATCHET_CLIENT_TOKEN=old\n"
    assert merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN}) == (
        f"  export HATCHET_CLIENT_TOKEN={TOKEN}\n"
    )


def test_duplicates_of_our_key_first_replaced_later_dropped() -> None:
    existing = (
        "HATCHET_CLIENT_TOKEN=first\n"
        "KEEP=1\n"
        "HATCHET_CLIENT_TOKEN=second\n"
        "export HATCHET_CLIENT_TOKEN=third\n"
        "KEEP=2\n"
    )
    assert merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN}) == (
        f"HATCHET_CLIENT_TOKEN={TOKEN}\nKEEP=1\nKEEP=2\n"
    )


def test_crlf_line_endings_are_kept() -> None:
    existing = "# windows\r\nA=1\r\nHATCHET_CLIENT_TOKEN=old\r\nB=2\r\n"
    assert merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN}) == (
        f"# windows\r\nA=1\r\nHATCHET_CLIENT_TOKEN={TOKEN}\r\nB=2\r\n"
    )


def test_last_line_without_newline_gets_one_before_appended_keys() -> None:
    existing = "A=1\nB=2"
    assert merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN}) == (
        f"A=1\nB=2\nHATCHET_CLIENT_TOKEN={TOKEN}\n"
    )


def test_our_key_on_a_last_line_without_newline() -> None:
    existing = "A=1\nHATCHET_CLIENT_TOKEN=old"
    assert merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN}) == (
        f"A=1\nHATCHET_CLIENT_TOKEN={TOKEN}\n"
    )


def test_a_key_that_only_starts_like_ours_is_not_ours() -> None:
    existing = "HATCHET_CLIENT_TOKEN_OLD=keep\nXHATCHET_CLIENT_TOKEN=keep\n"
    merged = merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN})
    assert merged == existing + f"HATCHET_CLIENT_TOKEN={TOKEN}\n"


def test_merge_is_idempotent() -> None:
    existing = "# c\nA=1\r\nHATCHET_CLIENT_TOKEN=old\nB=2"
    once = merge_dotenv(existing, SETTINGS)
    assert merge_dotenv(once, SETTINGS) == once


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain-value_1.2:3/4@x+y,z=", "plain-value_1.2:3/4@x+y,z="),
        ("", ""),
        ("has space", '"has space"'),
        ("a#b", '"a#b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines", '"two\\nlines"'),
        ("ends in a newline\n", '"ends in a newline\\n"'),
        ("plain\n", '"plain\\n"'),  # the plain-value pattern must not match before "\n"
        ("it's", '"it\'s"'),
        ("$HOME", '"$HOME"'),
    ],
)
def test_quoting_of_values(value: str, written: str) -> None:
    assert quote(value) == written
    assert merge_dotenv("", {"K": value}) == f"K={written}\n"


def test_quoted_values_read_back_with_python_dotenv(tmp_path: Path) -> None:
    values = {"A": "has space", "B": 'say "hi"', "C": "two\nlines", "D": "a#b", "E": "x\\y",
              "F": "trailing\n", "G": "$HOME"}  # fmt: skip
    path = tmp_path / ".env"
    path.write_text(merge_dotenv("", values))
    assert dotenv_values(path) == values  # as the SDK reads it: interpolation on


# --- what the property tests (test_envfile_properties.py) found -----------------------------


def test_a_carriage_return_in_a_value_reads_back_as_one(tmp_path: Path) -> None:
    """Written raw, a reader opening the file in text mode turned it into a newline."""
    assert quote("a\rb") == '"a\\rb"'
    path = tmp_path / ".env.hatchet"
    write_env_file(path, {"K": "a\rb", "L": "c\r\nd"})
    assert dotenv_values(path) == {"K": "a\rb", "L": "c\r\nd"}
    written = path.read_bytes().decode()
    assert merge_dotenv(written, {"K": "a\rb"}) == written  # merging again changes nothing


def test_a_value_the_reader_would_expand_is_refused() -> None:
    """python-dotenv expands ${VAR} inside quotes too: such a value never reads back."""
    with pytest.raises(ValueError, match="would expand"):
        quote("a${HOME}b")
    with pytest.raises(ValueError, match="would expand"):
        merge_dotenv("", {"K": "${X"})
    assert quote("$HOME $ {}") == '"$HOME $ {}"'


def test_a_line_inside_someones_quoted_value_is_not_an_assignment() -> None:
    existing = 'CERT="-----\nHATCHET_CLIENT_TOKEN=looks like ours\n-----"\n'
    merged = merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN})
    assert merged == existing + f"HATCHET_CLIENT_TOKEN={TOKEN}\n"


@pytest.mark.parametrize("separator", ["\x0c", "\x0b", "\x1c", "\x85", "\u2028"])
def test_only_carriage_returns_and_newlines_end_a_line(separator: str) -> None:
    """str.splitlines also splits at form feeds and the like; a dotenv reader does not."""
    existing = f"A='x{separator}HATCHET_CLIENT_TOKEN=y'\n"
    merged = merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN})
    assert merged == existing + f"HATCHET_CLIENT_TOKEN={TOKEN}\n"


@pytest.mark.parametrize(
    "later", ["HATCHET_CLIENT_TOKEN\n", "export HATCHET_CLIENT_TOKEN  # unset\n",
              "'HATCHET_CLIENT_TOKEN'=old\n"],
)  # fmt: skip
def test_every_later_naming_of_our_key_goes(later: str, tmp_path: Path) -> None:
    """A bare `KEY` reads as unset and `'KEY'=...` as an assignment: left after ours, either
    would win over the value written."""
    merged = merge_dotenv(
        f"HATCHET_CLIENT_TOKEN=old\nA=1\n{later}", {"HATCHET_CLIENT_TOKEN": TOKEN}
    )
    assert merged == f"HATCHET_CLIENT_TOKEN={TOKEN}\nA=1\n"


def test_an_old_value_of_ours_spanning_lines_is_replaced_whole() -> None:
    existing = "HATCHET_CLIENT_TOKEN='old\nB=1\n'\nC=2\n"
    merged = merge_dotenv(existing, {"HATCHET_CLIENT_TOKEN": TOKEN})
    assert merged == f"HATCHET_CLIENT_TOKEN={TOKEN}\nC=2\n"


def test_a_quote_left_open_that_would_take_our_settings_in_is_refused(tmp_path: Path) -> None:
    path = tmp_path / ".env.hatchet"
    path.write_text('# mine\nA="never closed\n')
    with pytest.raises(ConfigError) as info:
        write_env_file(path, {"HATCHET_CLIENT_NAMESPACE": "has space"})
    assert info.value.message == (
        f"{path}: line 2 opens a quote that closes only in a later line, so the settings "
        "written after it would be read as part of it; close that quote and run the same "
        "command again"
    )
    assert path.read_text() == '# mine\nA="never closed\n'
    # A plain value (every value `up` writes is) has no quote to close it: it is written.
    write_env_file(path, {"HATCHET_CLIENT_TOKEN": TOKEN})
    assert dotenv_values(path)["HATCHET_CLIENT_TOKEN"] == TOKEN


# --- write_env_file -------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / ".env.hatchet"
    write_env_file(path, SETTINGS)
    assert mode(path) == 0o600
    assert path.read_text() == merge_dotenv("", SETTINGS)
    assert [p.name for p in tmp_path.iterdir()] == [".env.hatchet"]  # no temp file left


def test_write_keeps_the_users_lines_and_their_crlf(tmp_path: Path) -> None:
    path = tmp_path / ".env.hatchet"
    path.write_bytes(b"# mine\r\nexport X=1\r\nHATCHET_CLIENT_TOKEN=old\r\n\r\nLAST=1")
    write_env_file(path, {"HATCHET_CLIENT_TOKEN": TOKEN, "HATCHET_CLIENT_TLS_STRATEGY": "none"})
    assert path.read_bytes() == (
        b"# mine\r\nexport X=1\r\nHATCHET_CLIENT_TOKEN=" + TOKEN.encode() + b"\r\n\r\n"
        b"LAST=1\r\nHATCHET_CLIENT_TLS_STRATEGY=none\r\n"
    )


def test_write_replaces_the_file_atomically_and_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / ".env.hatchet"
    path.write_text("HATCHET_CLIENT_TOKEN=old\n")
    path.chmod(0o644)
    old_inode = path.stat().st_ino
    # A hard link keeps the old inode reachable: were the file written in place, it changes.
    witness = tmp_path / "witness"
    os.link(path, witness)
    write_env_file(path, {"HATCHET_CLIENT_TOKEN": TOKEN})
    assert path.stat().st_ino != old_inode
    assert witness.read_text() == "HATCHET_CLIENT_TOKEN=old\n"
    assert path.read_text() == f"HATCHET_CLIENT_TOKEN={TOKEN}\n"
    assert mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env.hatchet", "witness"]


def test_write_into_a_missing_directory_is_a_domain_error(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / ".env.hatchet"
    with pytest.raises(HatchetLocalError) as info:
        write_env_file(path, SETTINGS)
    assert str(path) in info.value.message
    assert "cannot write" in info.value.message


# --- render and masked ----------------------------------------------------------------------

ODD = {"HATCHET_CLIENT_TOKEN": TOKEN, "HATCHET_CLIENT_NAMESPACE": "it's odd"}


def test_render_dotenv() -> None:
    assert render(ODD, "dotenv") == (
        f'HATCHET_CLIENT_TOKEN={TOKEN}\nHATCHET_CLIENT_NAMESPACE="it\'s odd"\n'
    )


def test_render_shell_is_safe_to_eval() -> None:
    text = render(ODD, "shell")
    assert text == (
        f"export HATCHET_CLIENT_TOKEN='{TOKEN}'\nexport HATCHET_CLIENT_NAMESPACE='it'\\''s odd'\n"
    )
    words = [shlex.split(line) for line in text.splitlines()]
    assert words == [
        ["export", f"HATCHET_CLIENT_TOKEN={TOKEN}"],
        ["export", "HATCHET_CLIENT_NAMESPACE=it's odd"],
    ]


def test_render_json() -> None:
    text = render(ODD, "json")
    assert json.loads(text) == ODD
    assert text.endswith("}\n")


def test_masked_hides_only_the_token() -> None:
    settings = {**SETTINGS, "HATCHET_CLIENT_SERVER_URL": "http://localhost:18080"}
    assert masked(settings, reveal=False) == {**settings, "HATCHET_CLIENT_TOKEN": "********"}
    assert masked(settings, reveal=True) == settings
    assert settings["HATCHET_CLIENT_TOKEN"] == TOKEN  # the input is not changed
