"""Minting a token in the engine container and proving it against the REST API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from hatchet_local.bootstrap import TOKEN_LIFETIME, TOKEN_NAME, mint_token, token_status
from hatchet_local.compose import Compose
from hatchet_local.defaults import DEFAULT_TENANT_ID
from hatchet_local.errors import BootstrapFailed
from hatchet_local.redact import MASK, Redactor
from tests.unit.fakes import TOKEN_CREATE, FakeRunner, answering

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0ZW5hbnQifQ.c2lnbmF0dXJl"
SECRET = "AdminPassw0rd1234"
SERVER = "http://localhost:18080"


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def compose(runner: FakeRunner) -> Compose:
    return Compose(
        runner,
        base=["docker", "compose"],
        project="unit",
        file=Path("/state/compose.yaml"),
        env_file=Path("/state/secrets.env"),
        redact=Redactor([SECRET]),
    )


# --- mint_token -----------------------------------------------------------------------------


def test_mint_returns_the_last_line(runner: FakeRunner, compose: Compose) -> None:
    logs = 'time="..." level=info msg="loaded config from /config"\n'
    runner.on(*TOKEN_CREATE, stdout=f"{logs}{TOKEN}\n\n")
    assert mint_token(compose, DEFAULT_TENANT_ID) == TOKEN
    (call,) = runner.calls
    assert call.argv[-14:] == (
        "docker", "exec", "unit-hatchet-lite-1",
        "/hatchet-admin", "token", "create", "--config", "/config",
        "--tenant-id", DEFAULT_TENANT_ID, "--name", TOKEN_NAME, "--expiresIn", TOKEN_LIFETIME,
    )  # fmt: skip
    assert TOKEN_LIFETIME == "87600h"


def test_mint_failure_is_bootstrap_failed_with_redacted_details(
    runner: FakeRunner, compose: Compose
) -> None:
    runner.on(
        *TOKEN_CREATE,
        returncode=1,
        stdout="partial output\n",
        stderr=f"could not connect: password authentication failed ({SECRET})\n",
    )
    with pytest.raises(BootstrapFailed) as info:
        mint_token(compose, DEFAULT_TENANT_ID)
    error = info.value
    assert error.exit_code == 8
    assert error.message == (
        "minting a token in hatchet-lite failed (exit 1); see `hatchet-local logs hatchet-lite`"
    )
    assert error.details == f"could not connect: password authentication failed ({MASK})"


@pytest.mark.parametrize(
    ("returncode", "stdout"),
    [
        (0, ""),  # nothing printed
        (0, "level=error msg=tenant not found\n"),  # no token on the last line
        (1, f"{TOKEN}\n"),  # a token, but the command failed
    ],
)
def test_mint_without_a_token_fails(
    runner: FakeRunner, compose: Compose, returncode: int, stdout: str
) -> None:
    runner.on(*TOKEN_CREATE, returncode=returncode, stdout=stdout)
    with pytest.raises(BootstrapFailed) as info:
        mint_token(compose, DEFAULT_TENANT_ID)
    assert f"(exit {returncode})" in info.value.message
    assert info.value.details == stdout.strip()


def test_mint_in_another_service(runner: FakeRunner, compose: Compose) -> None:
    runner.on("docker", "exec", "unit-engine-1", stdout=f"{TOKEN}\n")
    assert mint_token(compose, "tenant-2", service="engine") == TOKEN
    assert "tenant-2" in runner.calls[0].argv


# --- token_status ---------------------------------------------------------------------------


TENANT = "5f0e1c2a-0000-4000-8000-00000000abcd"


def test_200_is_valid_and_the_request_is_authenticated() -> None:
    seen: list[httpx.Request] = []
    with answering(
        lambda _: httpx.Response(200, json={"metadata": {"id": TENANT}}), seen
    ) as client:
        assert token_status(client, SERVER, TOKEN, TENANT) == "valid"
    (request,) = seen
    assert request.method == "GET"
    assert str(request.url) == f"{SERVER}/api/v1/tenants/{TENANT}"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_rejected(status: int) -> None:
    with answering(lambda _: httpx.Response(status)) as client:
        assert token_status(client, SERVER, TOKEN, TENANT) == "rejected"


@pytest.mark.parametrize("status", [500, 404, 302])
def test_other_answers_are_bootstrap_failed(status: int) -> None:
    with (
        answering(lambda _: httpx.Response(status)) as client,
        pytest.raises(BootstrapFailed) as info,
    ):
        token_status(client, SERVER, TOKEN, TENANT)
    assert info.value.message == (
        f"GET {SERVER}/api/v1/tenants/{TENANT} answered HTTP {status}; expected 200"
    )
    assert info.value.exit_code == 8
    assert TOKEN not in info.value.message


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("connection refused"), httpx.ReadTimeout("timed out")]
)
def test_transport_errors_are_bootstrap_failed(error: httpx.TransportError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        error.request = request
        raise error

    with answering(fail) as client, pytest.raises(BootstrapFailed) as info:
        token_status(client, SERVER, TOKEN, TENANT)
    assert info.value.message.startswith(f"GET {SERVER}/api/v1/tenants/{TENANT} failed: ")
    assert type(error).__name__ in info.value.message
    assert TOKEN not in info.value.message
