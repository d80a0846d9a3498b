"""compose/ holds the templates rendered with defaults; a template change shows up there."""

from __future__ import annotations

from pathlib import Path

import pytest

from hatchet_local.render import reference_stacks

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


@pytest.mark.parametrize("name", sorted(reference_stacks()))
def test_reference_stack_matches_the_templates(name: str) -> None:
    kept = (COMPOSE / name).read_text()
    assert kept == reference_stacks()[name], (
        f"compose/{name} is out of date: run scripts/render-reference and review the diff"
    )


def test_every_file_in_compose_is_a_reference_stack() -> None:
    kept = {p.name for p in COMPOSE.glob("*.yaml")}
    assert kept == set(reference_stacks())
