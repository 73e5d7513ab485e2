"""Key rotation while a server answers (issue 10 "Keeping it healthy"), on SQLite and
PostgreSQL: `pushgate keys rotate` runs as an operator runs it, beside a server process that
started before it and keeps registering phones and answering pushes the whole time. No request
fails, every sealed secret ends under the new key, and afterwards the new key alone opens the
database: the old one is no longer needed.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.types import ASGIApp

from pushgate.api.app import create_app
from pushgate.cli.main import cli
from pushgate.rotation.service import KeyRotation
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.store.sealing import key_id
from pushgate.wiring import build_services
from tests.api.helpers import Api, Phone
from tests.support import FakeClock, empty_database_at

OLD_KEY = bytes(range(32))


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "secret.key"
    path.write_text(base64.b64encode(OLD_KEY).decode() + "\n")
    path.chmod(0o600)
    return path


def _settings(database_url: str, key: Path, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        public_url="http://testserver",
        secret_key_file=str(key),
        secret_key_check_seconds=0.05,  # how soon the server looks at its key file again
        vapid_private_key_file=str(tmp_path / "vapid.pem"),
    )


@asynccontextmanager
async def _serving(app: ASGIApp, sock: socket.socket) -> AsyncIterator[None]:
    """A uvicorn server on `sock` in the test's own loop, until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield
        finally:
            server.should_exit = True


@pytest.fixture
async def server(
    database_url: str, key_path: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Services, socket.socket]]:
    """The services of a server started before any rotation, and its loopback socket (served
    inside the test: a task group cannot span a fixture's setup and teardown)."""
    await empty_database_at(database_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = _settings(database_url, key_path, tmp_path).model_copy(update={"public_url": base})
    services = build_services(settings, clock)
    try:
        yield services, sock
    finally:
        sock.close()
        await services.store.aclose()


async def _cycle(api: Api, key: str, phone: Phone) -> None:
    """One push approved on `phone`: create, poll, answer, read; every step must succeed."""
    created = await api.create_session(key, phone.username)
    push = await api.push(phone)
    response = await api.answer(phone, push)
    assert response.status_code == 200, response.text
    assert await api.status(key, created["id"]) == "accepted"


def _rotate(database_url: str, key: Path) -> dict[str, object]:
    env = {
        "PUSHGATE_DATABASE_URL": database_url,
        "PUSHGATE_SECRET_KEY_FILE": str(key),
        "PUSHGATE_SECRET_KEY_CHECK_SECONDS": "0.05",
        "PUSHGATE_CONFIG": "",
    }
    args = ["keys", "rotate", "--batch", "3", "--grace-seconds", "0.6", "--json"]
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found: dict[str, object] = json.loads(result.stdout)
    return found


async def test_rotation_while_the_server_answers(
    server: tuple[Services, socket.socket], database_url: str, key_path: Path, tmp_path: Path
) -> None:
    services, sock = server
    base = services.settings.public_base
    async with (
        _serving(create_app(services, close_store=False), sock),
        httpx.AsyncClient(base_url=base) as http,
    ):
        await _rotate_while_serving(Api(http, services), database_url, key_path, tmp_path)


async def _rotate_while_serving(
    api: Api, database_url: str, key_path: Path, tmp_path: Path
) -> None:
    key = await api.key()
    await api.allow_many_sessions()
    phones = []
    for i in range(6):
        await api.user("/", f"user{i}")
        phones.append(await api.register("/", f"user{i}"))
    await api.services.webhooks.add("/", "https://rp.example.com/hooks")
    await api.start("/", "user0")  # a registration still pending: its secret is sealed too

    rotated: dict[str, object] = {}
    during = 0

    async def rotate() -> None:
        rotated.update(await anyio.to_thread.run_sync(_rotate, database_url, key_path))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(rotate)
        while not rotated:
            # Old secrets, then new ones sealed by a server that learns the key as it goes.
            phone = phones[during % len(phones)]
            await _cycle(api, key, phone)
            await api.user("/", f"late{during}")
            phones.append(await api.register("/", f"late{during}"))
            during += 1
            await anyio.sleep(0.01)
    assert during >= 3, "the rotation ended before the server had answered anything"

    new_key = base64.b64decode(await anyio.Path(key_path).read_text())
    assert rotated["primary"] == f"{key_id(new_key):02x}"
    assert rotated["retiredKeys"] == [f"{key_id(OLD_KEY):02x}"]
    assert (await anyio.Path(key_path).read_text()).count("\n") == 1  # the new key alone
    retired = await anyio.Path(str(rotated["retiredFile"])).read_text()
    assert base64.b64decode(retired) == OLD_KEY

    # The server that started before keeps working, sealing with the new key.
    await _cycle(api, key, phones[0])
    await api.user("/", "after")
    phones.append(await api.register("/", "after"))

    # Only the new key is needed now: a process with that key alone opens every secret.
    alone = build_services(
        Settings(
            database_url=database_url,
            secret_key=base64.b64encode(new_key).decode(),
            vapid_private_key_file=str(tmp_path / "vapid.pem"),
        )
    )
    try:
        census = await KeyRotation(alone.store).census()
        assert census.total() == census.under(key_id(new_key))
        assert census.tables["devices"][key_id(new_key)] == len(phones)
        assert census.tables["webhooks"][key_id(new_key)] == 1
        async with alone.store.autocommit() as db:
            for phone in phones:
                found = await db.devices.get("/", phone.mechanism.mechanism_uid)
                assert found is not None
                assert found[0].secret == phone.mechanism.secret
        (webhook,) = await alone.webhooks.list("/")
        assert webhook.secret
    finally:
        await alone.store.aclose()
