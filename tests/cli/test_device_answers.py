"""`pushgate device` against a real `pushgate serve` (issue 7): a code push answered with
`--code`, a challenge with `--number`, the context and operation of a pending push shown, an
approval bound to the operation's data, denials with a reason, and `pushgate user unlock`
lifting the lock that denials set. The server is a real process on a SQLite file; the admin
and device commands run through click's runner, the relying party is plain httpx."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from pushgate.protocol.device_messages import operation_hash
from tests.cli.conftest import assert_one_error_line

PAYMENT = "A1*A100CZK*ICZ2730300000001165254011*R/VS123456*D20180425"
CONTEXT = {
    "remoteIp": "203.0.113.7",
    "userAgent": "Firefox/128.0",
    "location": {"latitude": 50.08, "longitude": 14.42},
}


@dataclass
class Server:
    url: str
    env: dict[str, str]

    def admin(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)

    def device(self, state: Path, *args: str) -> Result:
        return CliRunner().invoke(cli, ["device", *args, "--state", str(state)])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("device-answers")
    port = _free_port()
    env = {
        "PUSHGATE_DATABASE_URL": f"sqlite:///{home / 'pushgate.db'}",
        "PUSHGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PUSHGATE_SECRET_KEY_FILE": str(home / "pushgate.key"),
        "PUSHGATE_CONFIG": "",
    }
    started = Server(f"http://127.0.0.1:{port}", env)
    assert started.admin("migrate").exit_code == 0  # the key file, before the server reads it
    base = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pushgate", "serve", "--port", str(port), "--no-access-log"],
        env={**base, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "pushgate serve exited"
            try:
                if httpx.get(f"{started.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "pushgate serve did not start"
            time.sleep(0.05)
        yield started
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Party:
    server: Server
    key: str
    username: str
    state: Path

    def create(self, **fields: object) -> dict[str, Any]:
        reply = httpx.post(
            f"{self.server.url}/v1/push/sessions",
            json={"user": self.username, **fields},
            headers={"X-API-Key": self.key},
        )
        assert reply.status_code == 201, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def get(self, session_id: str) -> dict[str, Any]:
        reply = httpx.get(
            f"{self.server.url}/v1/push/sessions/{session_id}", headers={"X-API-Key": self.key}
        )
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def device(self, *args: str) -> Result:
        return self.server.device(self.state, *args)


def _party(server: Server, tmp_path: Path, username: str, realm: str = "/") -> Party:
    assert server.admin("user", "create", username, "--realm", realm).exit_code == 0
    key = json.loads(server.admin("apikey", "create", "--realm", realm, "--json").stdout)
    started = server.admin("register", username, "--realm", realm, "--json")
    state = tmp_path / f"{username}.json"
    registered = server.device(state, "register", json.loads(started.stdout)["uri"])
    assert registered.exit_code == 0, registered.output
    return Party(server, key["apiKey"], username, state)


def test_a_code_push_shows_its_operation_and_is_approved_bound_to_it(
    server: Server, tmp_path: Path
) -> None:
    alice = _party(server, tmp_path, "alice")
    operation = {"name": "authorize_payment", "data": PAYMENT}
    session = alice.create(pushType="code", context=CONTEXT, operation=operation)

    listed = alice.device("pending", "--json")
    assert listed.exit_code == 0, listed.output
    (shown,) = json.loads(listed.stdout)
    assert shown["type"] == "code"
    assert shown["context"] == CONTEXT
    assert shown["operation"] == {"id": session["operationId"], **operation}
    text = alice.device("pending").output
    assert "from 203.0.113.7 with 'Firefox/128.0' near 50.08,14.42" in text
    assert f"operation authorize_payment {session['operationId']}: {PAYMENT}" in text

    # The app would not send a code push's approval without the typed code.
    refused = alice.device("approve")
    assert refused.exit_code == 1 and "pass --code" in refused.output
    assert alice.get(session["id"])["status"] == "sent"

    approved = alice.device("approve", "--code", session["code"], "--json")
    assert approved.exit_code == 0, approved.output
    answer = json.loads(approved.stdout)
    assert answer["operationHash"] == operation_hash(PAYMENT)
    assert answer["code"] == session["code"]
    assert alice.get(session["id"])["status"] == "accepted"


def test_an_approval_of_other_data_or_a_wrong_code_counts_as_a_failure(
    server: Server, tmp_path: Path
) -> None:
    bob = _party(server, tmp_path, "bob")
    session = bob.create(pushType="code", operation={"name": "authorize_payment", "data": PAYMENT})
    wrong_code = f"{(int(session['code']) + 1) % 10**6:06d}"

    other = bob.device("approve", "--code", session["code"], "--operation-data", "A1*A999CZK")
    assert other.exit_code == 1 and "HTTP 400" in other.output
    seen = bob.get(session["id"])
    assert (seen["status"], seen["failureCount"]) == ("sent", 1)

    pushed = json.loads(bob.device("pending", "--json").stdout)[0]["messageId"]
    wrong = bob.device("approve", "--message-id", pushed, "--code", wrong_code)
    assert wrong.exit_code == 1
    assert bob.get(session["id"])["failureCount"] == 2

    right = bob.device("approve", "--message-id", pushed, "--code", session["code"])
    assert right.exit_code == 0, right.output
    assert "bound to operation authorize_payment" in right.output
    done = bob.get(session["id"])
    assert (done["status"], done["failureCount"]) == ("accepted", 2)


def test_a_challenge_is_answered_with_the_number(server: Server, tmp_path: Path) -> None:
    carol = _party(server, tmp_path, "carol")
    session = carol.create(pushType="challenge")
    refused = carol.device("approve")
    assert refused.exit_code == 1 and "pass --number" in refused.output
    approved = carol.device("approve", "--number", session["challengeNumber"])
    assert approved.exit_code == 0, approved.output
    assert carol.get(session["id"])["status"] == "accepted"


@pytest.mark.parametrize(
    ("given", "sent"),
    [("unexpected_operation", "UNEXPECTED_OPERATION"), ("INCORRECT_DATA", "INCORRECT_DATA")],
)
def test_a_denial_carries_its_reason(server: Server, tmp_path: Path, given: str, sent: str) -> None:
    dave = _party(server, tmp_path, f"dave-{sent.lower()}")
    session = dave.create(operation={"name": "login", "data": "A2"})
    denied = dave.device("deny", "--deny-reason", given)
    assert denied.exit_code == 0, denied.output
    assert f"reason {sent}" in denied.output
    done = dave.get(session["id"])
    assert (done["status"], done["denyReason"]) == ("rejected", sent)


def test_denials_lock_the_user_and_user_unlock_lifts_the_lock(
    server: Server, tmp_path: Path
) -> None:
    assert server.admin("realm", "create", "locks").exit_code == 0
    # Before the server has read the realm (it keeps a policy for up to 10 s).
    changed = server.admin("realm", "settings", "locks", "--lock-after-failures", "2")
    assert changed.exit_code == 0, changed.output
    erin = _party(server, tmp_path, "erin", realm="locks")
    for _ in range(2):
        session = erin.create()
        assert erin.device("deny").exit_code == 0
        assert erin.get(session["id"])["status"] == "rejected"

    locked = erin.create()
    assert (locked["status"], locked["notificationCount"]) == ("error", 0)

    unlocked = server.admin("user", "unlock", "erin", "--realm", "locks", "--json")
    assert unlocked.exit_code == 0, unlocked.output
    assert json.loads(unlocked.stdout) == {
        "realm": "/locks",
        "username": "erin",
        "locked": False,
        "failureCount": 0,
    }
    again = erin.create()
    assert again["status"] == "sent"
    assert erin.device("approve").exit_code == 0
    assert erin.get(again["id"])["status"] == "accepted"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("approve", "--code", "12345"), "--code must be 6 digits"),
        (("approve", "--code", "\uff11\uff12\uff13\uff14\uff15\uff16"), "--code must be 6 digits"),
        (("deny", "--deny-reason", "BORED"), "--deny-reason must be one of UNKNOWN"),
    ],
)
def test_bad_answers_are_one_line_before_anything_is_read(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    result = CliRunner().invoke(cli, ["device", *args, "--state", str(tmp_path / "none.json")])
    assert_one_error_line(result, fragment)
