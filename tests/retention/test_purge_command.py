"""`pushgate purge [--dry-run] [--realm R] [--json]` (issue 10) on SQLite and PostgreSQL: the
counts it shows, a dry run that deletes nothing, a realm of its own, bad input one line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from pushgate.services import Services
from pushgate.store import schema
from tests.retention.support import Seeder, count
from tests.support import TEST_SECRET_KEY

Invoke = Callable[..., Result]


@pytest.fixture
async def run(services: Services) -> Invoke:
    # The command reads the system clock: rows are aged from the real now.
    seed = Seeder(services.settings.database_url, int(time.time() * 1000))
    await seed.user_and_device()
    await seed.sessions(31, "APPROVED", count=2)
    await seed.sessions(31, "PENDING")
    await seed.outbox(8, "done")
    runner = CliRunner()
    env = {
        "PUSHGATE_DATABASE_URL": services.settings.database_url,
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_CONFIG": "",
    }

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return lambda *args: anyio.to_thread.run_sync(invoke, *args)


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


async def test_dry_run_then_purge(run: Callable[..., Any], services: Services) -> None:
    url = services.settings.database_url
    dry = _json(await run("purge", "--dry-run", "--json"))
    assert dry["dryRun"] is True
    assert dry["realms"]["/"]["sessions"] == 2
    assert dry["realms"]["/"]["notifications"] == 4
    assert dry["total"]["outbox"] == 1
    assert await count(url, schema.sessions) == 3  # nothing deleted

    text = await run("purge", "--dry-run")
    assert text.exit_code == 0, text.output
    assert (
        "realm /: would delete 2 finished sessions, 4 notifications, 1 outbox rows" in text.stdout
    )

    done = _json(await run("purge", "--json", "--realm", "root"))
    assert done["dryRun"] is False
    assert list(done["realms"]) == ["/"]
    assert done["total"]["sessions"] == 2
    assert await count(url, schema.sessions) == 1  # the pending one stays
    entries = await count(
        url, schema.audit, schema.audit.c.event == "retention.purged", schema.audit.c.actor == "cli"
    )
    assert entries == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(("--realm", "a/b"), "invalid realm name"), (("--realm", "nowhere"), "does not exist")],
)
async def test_bad_realm_is_one_error_line(
    run: Callable[..., Any], args: tuple[str, ...], fragment: str
) -> None:
    result = await run("purge", "--dry-run", *args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], lines
