"""Where `up` may write (issue #16): a config file that came with a cloned repository may not
make it write or chmod outside the project; a link is neither followed nor replaced; the
closing line says how a worker gets the settings."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import cast

import pytest

from hatchet_local.client_settings import how_to_load
from hatchet_local.config import load_config
from hatchet_local.envfile import write_env_file
from hatchet_local.errors import ConfigError
from hatchet_local.server import Connection
from hatchet_local.team_state import TenantToken
from hatchet_local.tokens import write_handout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def config_with(project: Path, text: str, **environ: str) -> Path:
    (project / "hatchet-local.yaml").write_text(text)
    return load_config(project, environ=environ).env_file


@pytest.mark.parametrize("named", ["~/notes.env", "../notes.env", "/etc/passwd"])
def test_a_config_file_may_not_name_an_env_file_outside_the_project(
    project: Path, named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config_with(project, f"env_file: {named}\n")
    assert info.value.message == (
        f"{project / 'hatchet-local.yaml'}: env_file: {named} is outside the project "
        f"({project}); a config file may only name a file inside it, so pass --env-file "
        f"{named} (or set HATCHET_LOCAL_ENV_FILE) to write there"
    )
    assert "\n" not in info.value.message


def test_nor_one_inside_a_folder_that_links_out(project: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (project / "notes").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r"env_file: notes/x\.env is outside the project"):
        config_with(project, "env_file: notes/x.env\n")


def test_the_environment_and_the_command_line_may_name_any(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "notes.env"
    assert config_with(project, "", HATCHET_LOCAL_ENV_FILE=str(outside)) == outside
    # The environment wins over the file's own (refused) choice, as it always does.
    assert config_with(project, "env_file: ~/x.env\n", HATCHET_LOCAL_ENV_FILE=str(outside)) == (
        outside
    )
    flagged = load_config(project, environ={}, flags={"env_file": str(outside)}).env_file
    assert flagged == outside


def test_a_config_file_may_name_a_file_inside_the_project(project: Path) -> None:
    assert config_with(project, "env_file: config/dev.env\n") == project / "config/dev.env"


SETTINGS = {"HATCHET_CLIENT_TOKEN": "eyJhbGciOiJFUzI1NiJ9.e30.sig"}


def test_a_team_folder_that_is_a_link_is_refused_and_its_target_left_alone(
    project: Path, tmp_path: Path
) -> None:
    """`.hatchet` from a cloned repository pointing elsewhere: making it 0700 would change its
    target, wherever that is. Refused before anything is asked of the server."""
    target = tmp_path / "shared"
    target.mkdir(mode=0o755)
    target.chmod(0o755)
    (project / ".hatchet").symlink_to(target)
    no_server = cast(Connection, None)  # never reached: the link is refused first
    with pytest.raises(ConfigError, match=r"\.hatchet: a symbolic link \(to "):
        write_handout(no_server, TOKEN, None, project / ".hatchet" / "team-a.env")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert list(target.iterdir()) == []


TOKEN = TenantToken("team-a", "tenant-id", SETTINGS["HATCHET_CLIENT_TOKEN"], "http://localhost:1")


@pytest.mark.parametrize("where", [".env.hatchet", ".hatchet/team-a.env", "ci.env"])
def test_an_env_file_that_is_a_link_is_neither_followed_nor_replaced(
    project: Path, tmp_path: Path, where: str
) -> None:
    target = tmp_path / "real.env"
    target.write_text("MINE=1\n")
    link = project / where
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(target)
    with pytest.raises(ConfigError) as info:
        write_env_file(link, SETTINGS)
    assert info.value.message == (
        f"{link}: a symbolic link (to {target}); hatchet-local neither writes through a link "
        f"nor replaces one: remove the link, or name the file it points to"
    )
    assert link.is_symlink()
    assert target.read_text() == "MINE=1\n"


@pytest.mark.parametrize("name", [".env", ".env.hatchet", ".env.dev", ".env.local"])
def test_the_summary_says_the_sdk_reads_only_its_own_file_names(name: str, tmp_path: Path) -> None:
    assert how_to_load(tmp_path / name, tmp_path) == (
        f"Next: run your worker from this directory; the Hatchet Python SDK reads {name} "
        f"from its working directory by itself."
    )


@pytest.mark.parametrize("where", ["hatchet.env", "config/.env.hatchet"])
def test_for_any_other_file_it_says_how_to_load_it(where: str, tmp_path: Path) -> None:
    path = tmp_path / where
    line = how_to_load(path, tmp_path)
    assert line.startswith("Next: start your worker with `hatchet-local run -- CMD` ")
    assert f"or load {path} yourself (`set -a; . {path}; set +a`)" in line
    assert "reads only .env, .env.hatchet, .env.dev and .env.local" in line
    assert "by itself" in line.split(");")[1]  # never said of this file
