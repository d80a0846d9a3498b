"""Every file of a stack that holds a secret is checked the same way (issue #16): readable by
others, it is refused with the `chmod` to run, whichever command reads it first."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hatchet_local.errors import ConfigError
from hatchet_local.state import StackDir

READERS: dict[str, Callable[[StackDir], object]] = {
    "secrets.env": StackDir.secrets,
    "token.json": StackDir.load_token,
    "tenants.json": StackDir.tenant_tokens,
    "users.json": StackDir.user_passwords,
    "session.json": StackDir.session,
    "handouts.json": StackDir.handouts,
    "archived.json": StackDir.archived,
}


def test_the_table_covers_every_file_of_secrets(tmp_path: Path) -> None:
    assert {p.name for p in StackDir(tmp_path, "s").secret_files()} == set(READERS)


@pytest.mark.parametrize("name", sorted(READERS))
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secret_file_others_may_read_is_refused(tmp_path: Path, name: str, mode: int) -> None:
    stack_dir = StackDir(tmp_path, "s")
    stack_dir.path.mkdir(parents=True)
    path = stack_dir.path / name
    path.write_text("{}\n" if name.endswith(".json") else "")
    path.chmod(mode)
    with pytest.raises(ConfigError) as info:
        READERS[name](stack_dir)
    assert info.value.message == (
        f"{path}: holds secrets but others may read it (mode {mode:04o}); run `chmod 600 {path}`"
    )


def test_written_secret_files_are_private(tmp_path: Path) -> None:
    stack_dir = StackDir(tmp_path, "s")
    stack_dir.secrets()
    stack_dir.save_user_password("bob@example.com", "Passw0rdPassw0rd")
    assert json.loads(stack_dir.users_file.read_text()) == {"bob@example.com": "Passw0rdPassw0rd"}
    for path in (stack_dir.secrets_file, stack_dir.users_file):
        assert path.stat().st_mode & 0o777 == 0o600
