from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.helpers import E2E, RIG_IMAGES


@pytest.fixture(scope="session")
def rig_images() -> dict[str, str]:
    """The rig's stand-in images. Missing images fail the run: they are never skipped."""
    check = subprocess.run(
        [sys.executable, str(E2E / "images" / "rig.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        pytest.fail(check.stdout + check.stderr, pytrace=False)
    return RIG_IMAGES
