"""`pushgate worker --port N` (issue 10): a real worker process answers `/healthz`, `/readyz`
and `/metrics` about its own background runtime, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from pushgate.cli.main import cli
from tests.cli.conftest import assert_one_error_line
from tests.cli.test_processes import START_TIMEOUT, Running

TOKEN = "scrape-token"
TASKS = {"expiry", "listener", "outbox", "webhooks", "pushes", "purge"}


@pytest.fixture
def environ(fresh_database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env.update(
        PYTHONUNBUFFERED="1",
        PUSHGATE_DATABASE_URL=fresh_database_url,
        PUSHGATE_LOG_FORMAT="json",
        PUSHGATE_METRICS_TOKEN=TOKEN,
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),  # PostgreSQL's default key file goes there
    )
    return env


@pytest.fixture
def worker(environ: dict[str, str], tmp_path: Path) -> Iterator[Running]:
    process = Running(["worker", "--port", "0"], environ, tmp_path)
    yield process
    process.close()


def _ready(client: httpx.Client) -> httpx.Response:
    """/readyz once it says ready (the runtime needs a moment), or its last answer."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        response = client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_the_worker_serves_its_probes_and_metrics(worker: Running) -> None:
    url = str(worker.wait_for("pushgate worker listening")[0]["url"])
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")  # the real port

    with httpx.Client(base_url=url, timeout=5) as client:
        ready = _ready(client)
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"

        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        tasks = health.json()["tasks"]
        assert set(tasks) == TASKS
        assert all(task["state"] == "running" for task in tasks.values())

        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert metrics.status_code == 200
        assert "pushgate_outbox_depth 0.0" in metrics.text

        missing = client.get("/v1/push/sessions")  # the API is not served here
        assert missing.status_code == 404
        assert missing.json() == {"code": "badRequest", "message": "Not Found"}

    assert worker.stop(signal.SIGTERM) == 0
    log = "".join(worker.lines)
    assert "Traceback" not in log
    assert "pushgate worker stopped" in log


def test_a_busy_port_is_one_line_before_anything_starts(busy_port: int, tmp_path: Path) -> None:
    database = tmp_path / "pushgate.db"
    env = {"PUSHGATE_DATABASE_URL": f"sqlite:///{database}", "PUSHGATE_CONFIG": ""}

    result = CliRunner().invoke(cli, ["worker", "--port", str(busy_port)], env=env)

    assert_one_error_line(result, f"cannot listen on 127.0.0.1:{busy_port}", "--port")
    assert not database.exists()  # not even migrated


def test_host_without_port_is_refused() -> None:
    result = CliRunner().invoke(cli, ["worker", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--host needs --port" in result.stderr
