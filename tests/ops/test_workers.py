"""`pushgate serve --workers N` and metrics (issue 10): prometheus-client's multi-process mode
in a fresh directory per start, so any worker's `/metrics` counts every worker's work, and
the directory is gone after the server stops."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest

from pushgate.cli.serving import MULTIPROC_VARIABLE, metrics_directory
from pushgate.settings import Settings
from pushgate.wiring import build_services, migrate_database
from tests.cli.test_processes import Running, _children
from tests.ops.helpers import sample
from tests.support import TEST_SECRET_KEY


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for process in started:
        process.close()


def _api_key(url: str) -> str:
    settings = Settings(database_url=url, secret_key=TEST_SECRET_KEY)

    async def make() -> str:
        await migrate_database(settings)
        services = build_services(settings)
        try:
            return (await services.accounts.create_api_key("/")).key
        finally:
            await services.store.aclose()

    return asyncio.run(make())


def _create(port: int, key: str, count: int) -> None:
    # A new connection each time: the kernel hands it to whichever worker accepts.
    for _ in range(count):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            reply = client.post(
                "/v1/push/sessions", json={"user": "nobody"}, headers={"X-API-Key": key}
            )
            assert reply.status_code == 201, reply.text


def _created(port: int) -> float | None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        reply = client.get("/metrics")
    assert reply.status_code == 200
    return sample(reply.text, "pushgate_sessions_created_total")


def test_any_worker_counts_every_workers_sessions(tmp_path: Path, running: list[Running]) -> None:
    url = f"sqlite:///{tmp_path / 'pushgate.db'}"
    key = _api_key(url)
    parent = tmp_path / "metrics"
    parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env.update(
        PYTHONUNBUFFERED="1",
        PUSHGATE_DATABASE_URL=url,
        PUSHGATE_SECRET_KEY=TEST_SECRET_KEY,
        PUSHGATE_LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(parent),
    )
    server = Running(["serve", "--port", "0", "--workers", "2"], env, tmp_path)
    running.append(server)
    port = int(str(server.wait_for("pushgate listening")[0]["url"]).rsplit(":", 1)[1])
    server.wait_for("Application startup complete", count=2)
    workers = [
        w
        for w in _children(server.process.pid)
        if "spawn_main" in Path(f"/proc/{w}/cmdline").read_text()
    ]
    assert len(workers) == 2
    [directory] = parent.iterdir()  # this start's own
    assert directory.name.startswith("pushgate-metrics-")

    first, second = workers
    os.kill(second, signal.SIGSTOP)
    try:
        _create(port, key, 3)  # all on the first worker
    finally:
        os.kill(second, signal.SIGCONT)
    os.kill(first, signal.SIGSTOP)
    try:
        assert _created(port) == 3  # the second worker reports the first one's sessions
        _create(port, key, 2)
        assert _created(port) == 5
    finally:
        os.kill(first, signal.SIGCONT)
    assert _created(port) == 5  # whichever answers

    assert server.stop() == 0
    assert list(parent.iterdir()) == []  # removed at the end: the next start counts afresh


def test_one_worker_counts_in_memory_and_a_bad_parent_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_VARIABLE, str(tmp_path))
    with metrics_directory(1) as path:
        assert path is None
        assert MULTIPROC_VARIABLE not in os.environ  # one process: no files
    assert os.environ[MULTIPROC_VARIABLE] == str(tmp_path)  # as the operator set it

    monkeypatch.setenv(MULTIPROC_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(click.ClickException) as refused, metrics_directory(2):
        pass
    assert refused.value.message.startswith(f"cannot make the metrics directory in {tmp_path}")
