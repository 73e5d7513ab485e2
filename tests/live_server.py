"""`pushgate serve` in a subprocess on a free loopback port, for the tests that drive it over
real HTTP from outside (tests/e2e, tests/sdk)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import TEST_SECRET_KEY

START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve_in_subprocess(
    database_url: str, port: int, log_path: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[str]:
    """The server on `port`, its output in `log_path`, once `/healthz` answers; yields its
    base URL. `env` adds to (or overrides) the settings every live server gets."""
    base = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "PUSHGATE_DATABASE_URL": database_url,
        "PUSHGATE_PUBLIC_URL": base,
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_LOG_FORMAT": "json",
        "PUSHGATE_CONFIG": "",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "pushgate", "serve", "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await _wait_until_up(base, process, log_path)
            yield base
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), 10)


async def _wait_until_up(base: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{_tail(log)}")
            try:
                if (await http.get(base + "/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"server did not come up within {START_SECONDS} s")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]
