"""`pushgate audit tail` and `pushgate audit export` (issue 10) on SQLite and PostgreSQL: what
they print, in text and JSON lines, their filters, bad input as one `Error:` line, and
`--follow` in a real process printing what another process appends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from pushgate.audit.model import AuditEntry, iso_ms
from pushgate.cli.main import cli
from pushgate.services import Services
from tests.support import TEST_SECRET_KEY

Invoke = Callable[..., Result]
NOW = int(time.time() * 1000)
HOUR = 3_600_000


def _env(services: Services) -> dict[str, str]:
    return {
        "PUSHGATE_DATABASE_URL": services.settings.database_url,
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_CONFIG": "",
    }


@pytest.fixture
async def run(services: Services) -> Invoke:
    await services.accounts.create_realm("alpha")
    async with services.store.transaction() as tx:
        await tx.audit.append(AuditEntry("/", "old.event", "s-old", NOW - 48 * HOUR))
        await tx.audit.append(
            AuditEntry(
                "/alpha",
                "session.answered",
                "s-1",
                NOW - 2 * HOUR,
                {"status": "accepted"},
                actor="device:d-1",
                remote_ip="192.0.2.7",
            )
        )
        await tx.audit.append(AuditEntry("/", "apikey.created", "k-1", NOW - HOUR))
    runner = CliRunner()
    env = _env(services)

    def invoke(*args: str) -> Result:
        # The commands call asyncio.run: a thread of their own, outside the test's loop.
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def _lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_tail_shows_the_newest_oldest_first(run: Invoke) -> None:
    result = await anyio.to_thread.run_sync(run, "audit", "tail", "-n", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(iso_ms(NOW - 2 * HOUR))
    assert "/alpha  session.answered  s-1  by device:d-1 from 192.0.2.7" in lines[0]
    assert '{"status":"accepted"}' in lines[0]
    assert "apikey.created  k-1  by - from -" in lines[1]


async def test_tail_json_and_realm_filter(run: Invoke) -> None:
    found = _lines(
        await anyio.to_thread.run_sync(run, "audit", "tail", "--realm", "alpha", "--json")
    )
    assert [(e["event"], e["realm"]) for e in found] == [
        ("realm.created", "/alpha"),
        ("session.answered", "/alpha"),
    ]
    answered = found[1]
    assert answered["actor"] == "device:d-1"
    assert answered["remoteIp"] == "192.0.2.7"
    assert answered["atMs"] == NOW - 2 * HOUR
    assert answered["data"] == {"status": "accepted"}
    assert isinstance(answered["id"], int)


async def test_export_window_as_json_lines(run: Invoke) -> None:
    day = _lines(await anyio.to_thread.run_sync(run, "audit", "export", "--since", "24h"))
    assert [e["subject"] for e in day] == ["s-1", "k-1"]
    until = iso_ms(NOW - 90 * 60_000)  # between the two
    early = _lines(
        await anyio.to_thread.run_sync(run, "audit", "export", "--since", "3d", "--until", until)
    )
    assert [e["subject"] for e in early] == ["s-old", "s-1"]
    alpha = _lines(
        await anyio.to_thread.run_sync(run, "audit", "export", "--since", "3d", "--realm", "/alpha")
    )
    assert [e["subject"] for e in alpha] == ["s-1"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("export", "--since", "yesterday"), "ISO-8601"),
        (("export", "--since", "1h", "--until", "2h"), "--until must be later"),
        (("tail", "--realm", "no/such/realm"), "invalid realm name"),
    ],
)
async def test_bad_input_is_one_error_line(
    run: Invoke, args: tuple[str, ...], fragment: str
) -> None:
    result = await anyio.to_thread.run_sync(run, "audit", *args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0]


async def test_follow_prints_what_another_process_appends(run: Invoke, services: Services) -> None:
    env = {**os.environ, **_env(services)}
    follower = subprocess.Popen(  # noqa: ASYNC220 - read in a worker thread below
        [sys.executable, "-m", "pushgate", "audit", "tail", "--follow", "--json", "-n", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        first = await anyio.to_thread.run_sync(follower.stdout.readline)
        assert json.loads(first)["subject"] == "k-1", first
        async with services.store.transaction() as tx:
            await tx.audit.append(AuditEntry("/", "apikey.created", "k-2", NOW, actor="cli"))
        with anyio.fail_after(15):
            later = await anyio.to_thread.run_sync(follower.stdout.readline)
        shown = json.loads(later)
        assert (shown["subject"], shown["actor"]) == ("k-2", "cli")
    finally:
        follower.terminate()
        follower.wait(10)
        if follower.stdout:
            follower.stdout.close()
        if follower.stderr:
            follower.stderr.close()
