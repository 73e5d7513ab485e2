"""`pushgate device inbox` against a real `pushgate serve` process (issue 8): the simulated
device lists, shows, reads and counts what a relying party posted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from tests.cli.conftest import _restore_logging  # noqa: F401 - autouse: commands set up logging


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path_factory.mktemp("inbox-cli")
    port = _free_port()
    env = {
        "PUSHGATE_DATABASE_URL": f"sqlite:///{home / 'pushgate.db'}",
        "PUSHGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PUSHGATE_SECRET_KEY_FILE": str(home / "pushgate.key"),
        "PUSHGATE_CONFIG": "",
    }
    assert CliRunner().invoke(cli, ["migrate"], env=env).exit_code == 0
    base = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pushgate", "serve", "--port", str(port), "--no-access-log"],
        env={**base, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "pushgate serve exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "pushgate serve did not start"
            time.sleep(0.05)
        yield url, env
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_device_reads_its_inbox_from_the_command_line(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = server

    def admin(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    def device(*args: str) -> Result:
        return CliRunner().invoke(cli, ["device", *args, "--state", str(tmp_path / "d.json")])

    assert admin("user", "create", "alice").exit_code == 0
    key = json.loads(admin("apikey", "create", "--json").stdout)["apiKey"]
    started = json.loads(admin("register", "alice", "--json").stdout)
    assert device("register", started["uri"]).exit_code == 0
    ids = []
    for subject in ("First", "Second"):
        reply = httpx.post(
            f"{url}/v1/inbox/messages",
            json={"user": "alice", "subject": subject, "body": f"<p>{subject}</p>", "type": "html"},
            headers={"X-API-Key": key},
        )
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["id"])

    assert device("inbox", "count").stdout == "2 unread\n"
    listed = device("inbox", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert {m["subject"] for m in json.loads(listed.stdout)} == {"First", "Second"}
    assert device("inbox", "list").stdout.count("* ") == 2
    shown = device("inbox", "show", ids[0])
    assert shown.exit_code == 0 and "<p>First</p>" in shown.stdout

    assert device("inbox", "read", ids[0]).exit_code == 0
    assert json.loads(device("inbox", "count", "--json").stdout) == {"countUnread": 1}
    [unread] = json.loads(device("inbox", "list", "--unread", "--json").stdout)
    assert unread["id"] == ids[1]
    assert device("inbox", "read-all").exit_code == 0
    assert device("inbox", "count").stdout == "0 unread\n"

    unknown = device("inbox", "show", "00000000-0000-4000-8000-000000000000")
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output
    error = unknown.stderr.strip().splitlines()[-1]  # after the HTTP client's own log lines
    assert error.startswith("Error: ") and "HTTP 400" in error, unknown.stderr
