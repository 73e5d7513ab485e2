"""`pushgate serve` and `pushgate worker` as real processes: settings reach uvicorn's worker
processes without `os.environ`, and Ctrl-C (SIGINT) or SIGTERM is a clean stop."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 20.0
DEVICE_PATH = "/json/push/sns/message?_action=register"


class Running:
    """A `pushgate` process whose stderr (JSON log lines) is read by a thread."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pushgate", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            self._queue.put(line)

    def wait_for(self, event: str, count: int = 1) -> list[dict[str, object]]:
        """The first `count` log records whose event starts with `event`."""
        found: list[dict[str, object]] = []
        deadline = time.monotonic() + START_TIMEOUT
        while len(found) < count:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {event!r} in time; stderr:\n{''.join(self.lines)}")
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if str(record.get("event", "")).startswith(event):
                found.append(record)
        return found

    def stop(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=10)
        self._reader.join(timeout=5)  # every line is read once the pipe closes
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        assert self.process.stderr is not None
        self.process.stderr.close()


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """The test process's environment without any pushgate setting: only the file counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    path = tmp_path / "pushgate.env"
    path.write_text(
        f"PUSHGATE_DATABASE_URL=sqlite:///{tmp_path / 'data' / 'pushgate.db'}\n"
        "PUSHGATE_MAX_BODY_BYTES=2000\n"
        "PUSHGATE_LOG_FORMAT=json\n"
    )
    return path


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for process in started:
        process.close()


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _body_limit_seen(port: int) -> int:
    """The status of a 3000-byte device message on a fresh connection: 413 under the file's
    2000-byte limit, 400 (an unknown device) under the default 64 KiB."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        body = json.dumps({"messageId": "REGISTER:x", "jwt": "x" * 3000})
        headers = {"Content-Type": "application/json"}
        return client.post(DEVICE_PATH, content=body, headers=headers).status_code


# Before: the CLI wrote PUSHGATE_CONFIG into os.environ for uvicorn's workers to load the
# settings again; now each worker receives the parent's Settings, pickled with the app factory.
def test_every_worker_serves_with_the_config_file(
    config: Path, environ: dict[str, str], tmp_path: Path, running: list[Running]
) -> None:
    server = Running(
        ["serve", "--port", "0", "--workers", "2", "--config", str(config)], environ, tmp_path
    )
    running.append(server)
    port = int(str(server.wait_for("pushgate listening")[0]["url"]).rsplit(":", 1)[1])
    server.wait_for("Application startup complete", count=2)
    workers = _children(server.process.pid)
    workers = [w for w in workers if "spawn_main" in Path(f"/proc/{w}/cmdline").read_text()]
    assert len(workers) == 2

    # Each worker in turn is the only one accepting connections (the other is stopped).
    for serving, paused in (workers, reversed(workers)):
        os.kill(paused, signal.SIGSTOP)
        try:
            assert _body_limit_seen(port) == 413, f"worker {serving}"
        finally:
            os.kill(paused, signal.SIGCONT)

    assert server.stop() == 0
    assert "Traceback" not in "".join(server.lines)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_cleanly_when_signalled(
    signum: int, config: Path, environ: dict[str, str], tmp_path: Path, running: list[Running]
) -> None:
    server = Running(["serve", "--port", "0", "--config", str(config)], environ, tmp_path)
    running.append(server)
    port = int(str(server.wait_for("pushgate listening")[0]["url"]).rsplit(":", 1)[1])
    server.wait_for("Application startup complete")
    assert _body_limit_seen(port) == 413
    assert server.stop(signum) == 0
    assert "Traceback" not in "".join(server.lines)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_worker_runs_until_signalled(
    signum: int, config: Path, environ: dict[str, str], tmp_path: Path, running: list[Running]
) -> None:
    worker = Running(["worker", "--config", str(config)], environ, tmp_path)
    running.append(worker)
    worker.wait_for("pushgate worker started")
    assert worker.process.poll() is None
    assert worker.stop(signum) == 0
    log = "".join(worker.lines)
    assert "Traceback" not in log
    assert "pushgate worker stopped" in log
    assert (tmp_path / "data" / "pushgate.key").exists()  # the key lives beside the database
