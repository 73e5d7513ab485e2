"""The unmodified ForgeRock JavaScript SDK (npm `@forgerock/javascript-sdk`, in Node) logs in
through the journey `PushAuthentication` of a live pushgate, with the simulator as the phone
(issue 9; spec forgerock-push.md §8).

`login.mjs` is the login page: it walks the journey with the SDK's public API and prints what
a page would show; this test reads it, answers for the person, and makes the simulated phone
scan the QR code and pick the number. `npm ci` runs here first when `node_modules` is missing
or holds another SDK version.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import Notification, SimulatorError, new_device
from pushgate.wiring import build_services
from tests.live_server import free_port, serve_in_subprocess
from tests.support import TEST_SECRET_KEY, empty_database

SDK_DIR = Path(__file__).parent
DRIVER = SDK_DIR / "login.mjs"
SDK_PACKAGE = SDK_DIR / "node_modules" / "@forgerock" / "javascript-sdk" / "package.json"
SDK_VERSION = "4.9.1"  # pinned in package.json and package-lock.json; docs/JOURNEYS.md names it
LOST_PHONE = "Lost phone? Use a recovery code"
PASSWORD = "correct horse"
PAGE_ORIGIN = "http://app.example"  # a login page served apart from pushgate (CORS)
LINE_TIMEOUT = 20.0  # seconds for the driver's next line: the longest is a push wait


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` binary, with the SDK installed beside the driver (`npm ci` once)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("tests/sdk needs Node.js 20+ and npm on PATH (apt-get install nodejs npm)")
    if _installed_sdk() != SDK_VERSION:  # a fresh clone, or an older install
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=SDK_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {SDK_DIR} failed:\n{done.stdout}\n{done.stderr}")
    if _installed_sdk() != SDK_VERSION:
        pytest.fail(f"npm ci did not install @forgerock/javascript-sdk {SDK_VERSION}")
    return node


def _installed_sdk() -> str | None:
    if not SDK_PACKAGE.exists():
        return None
    return str(json.loads(SDK_PACKAGE.read_text())["version"])


@dataclass
class Server:
    base: str
    log_path: Path
    services: Services


@pytest.fixture(scope="module")
async def server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    """`pushgate serve` on loopback, one per backend for this module (each test has its own
    user: starting a server costs seconds)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(database_url=database_url, public_url=base, secret_key=TEST_SECRET_KEY)
    services = build_services(settings)  # the system clock: the server uses it too
    await empty_database(services)
    log_path = tmp_path_factory.mktemp("sdk-server") / "server.log"
    try:
        async with serve_in_subprocess(
            database_url, port, log_path, {"PUSHGATE_CORS_ORIGINS": PAGE_ORIGIN}
        ):
            yield Server(base, log_path, services)
    finally:
        await services.store.aclose()


def _tail(path: Path, chars: int) -> str:
    return path.read_text(errors="replace")[-chars:]


class Login:
    """One run of the driver: a person at a login page in Node, steered line by line."""

    def __init__(
        self, username: str, process: asyncio.subprocess.Process, trace: Path, server: Server
    ) -> None:
        self.username = username
        self._process = process
        self._trace = trace
        self._server = server
        self.seen: list[dict[str, Any]] = []  # the driver's JSON lines

    def fail(self, why: str) -> None:
        """Stop the test with everything needed to see what went wrong."""
        if self._process.returncode is None:
            self._process.kill()
        trace = _tail(self._trace, 12_000)
        server_log = _tail(self._server.log_path, 6_000)
        seen = "\n".join(json.dumps(line) for line in self.seen)
        pytest.fail(
            f"{why}\n--- what the SDK page printed:\n{seen}\n"
            f"--- the SDK's requests and responses (last 12 KB):\n{trace}\n"
            f"--- server log (last 6 KB):\n{server_log}",
            pytrace=False,
        )

    async def expect(self, *keys: str) -> dict[str, Any]:
        """The driver's next line that carries one of `keys`. A waiting step shown again
        (`stillWaiting`: its hold ended before the phone answered) is passed over unless
        asked for."""
        assert self._process.stdout is not None
        wanted = " or ".join(repr(k) for k in keys)
        while True:
            try:
                raw = await asyncio.wait_for(self._process.stdout.readline(), LINE_TIMEOUT)
            except TimeoutError:
                self.fail(f"the SDK printed nothing for {LINE_TIMEOUT} s; {wanted} was expected")
            if not raw:
                await self._process.wait()
                self.fail(f"the driver exited ({self._process.returncode}) before {wanted}")
            line = json.loads(raw)
            self.seen.append(line)
            if "stillWaiting" in line and "stillWaiting" not in keys:
                continue
            if not any(key in line for key in keys):
                self.fail(f"expected {wanted} from the SDK, got {line}")
            return dict(line)

    async def answer(self, **reply: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(reply).encode() + b"\n")
        await self._process.stdin.drain()

    async def ends(self) -> None:
        try:
            code = await asyncio.wait_for(self._process.wait(), LINE_TIMEOUT)
        except TimeoutError:
            self.fail("the driver did not exit")
        if code != 0:
            self.fail(f"the driver exited with {code}")

    async def through_password(self) -> None:
        """The Page node (username + password) and the Device Profile Collector."""
        await self.expect("credentials")
        await self.expect("deviceProfile")


StartLogin = Callable[..., Awaitable[Login]]


@pytest.fixture
def start_login(node: str, server: Server, tmp_path: Path) -> Iterator[StartLogin]:
    started: list[asyncio.subprocess.Process] = []

    async def start(username: str, *, origin: str = "") -> Login:
        """`username` logs in on a page on pushgate's own origin, or on `origin`."""
        trace = tmp_path / f"sdk-{len(started)}.log"
        with trace.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                *[node, str(DRIVER), server.base, username, PASSWORD, "root"],
                cwd=SDK_DIR,
                env={**os.environ, "PAGE_ORIGIN": origin},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        started.append(process)
        return Login(username, process, trace, server)

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()


async def _user_with_phone(server: Server, username: str) -> DeviceClient:
    """A user with a password and a registered phone (registered as `/v1` does it)."""
    await server.services.accounts.create_user("/", username, PASSWORD)
    started = await server.services.devices.start_registration("/", username)
    phone = DeviceClient(new_device())
    await phone.register(started.uri)
    return phone


async def _push(phone: DeviceClient, login: Login) -> Notification:
    """The one push the phone holds (fetched as the app does when the push arrives)."""
    (mechanism,) = phone.device.mechanisms
    for _ in range(50):
        pending = await phone.pending(mechanism)
        if pending:
            assert len(pending) == 1, pending
            return pending[0]
        await asyncio.sleep(0.1)
    login.fail("the phone got no push")
    raise AssertionError  # unreachable: fail() raises


async def _session_of(server: Server, token: str) -> dict[str, Any]:
    """What the server says of a tokenId (AM's `sessions?_action=validate`)."""
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        reply = await http.post(
            "/json/realms/root/sessions?_action=validate",
            json={"tokenId": token},
            headers={"Accept-API-Version": "resource=2.1, protocol=1.0"},
        )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def _approve_with_number(phone: DeviceClient, login: Login) -> str:
    """The waiting page shows a number; the phone picks it; the SDK's tokenId."""
    waiting = await login.expect("number")
    number = waiting["number"]
    assert isinstance(number, str) and number.isdigit(), waiting
    assert f"[{number}]" in str(waiting["message"]), waiting
    assert waiting["exit"] == [LOST_PHONE], waiting
    await login.answer(wait=True)
    push = await _push(phone, login)
    assert push.username == login.username
    assert int(number) in push.numbers and len(push.numbers) == 3, push.claims
    context = push.context or {}
    assert "pushgate-sdk-test" in str(context.get("userAgent")), context  # FRDevice's profile
    await phone.approve(push, number=int(number))
    success = await login.expect("tokenId")
    return str(success["tokenId"])


async def test_the_sdk_logs_in_through_push_authentication(
    start_login: StartLogin, server: Server
) -> None:
    start = functools.partial(start_login, "alice")
    await server.services.accounts.create_user("/", "alice", PASSWORD)
    phone = DeviceClient(new_device())
    async with phone:
        # (1) First login: the user has no device, so the journey registers one by QR code.
        login: Login = await start()
        await login.through_password()
        options = await login.expect("options")
        assert "Register device" in options["options"], options
        await login.answer(option="Register device")
        shown = await login.expect("qr")
        assert shown["use"] == "push" and str(shown["qr"]).startswith("pushauth://"), shown
        assert "Scan the QR code" in str(shown["message"]), shown
        await phone.register(str(shown["qr"]))
        while "recoveryCodes" not in (line := await login.expect("qr", "recoveryCodes")):
            assert line["qr"] == shown["qr"], "the QR code changed while polling"
        codes = line["recoveryCodes"]
        assert isinstance(codes, list) and len(codes) == 10, line
        assert all(len(c) == 10 and c.isalnum() for c in codes), codes
        assert len(set(codes)) == 10
        # The SDK found the device's name in the script's <em> (its fallback otherwise).
        assert line["deviceName"] not in ("", "New Security Key"), line
        token = await _approve_with_number(phone, login)
        success = login.seen[-1]
        assert success["realm"] == "/"
        assert "iPlanetDirectoryPro" in success["cookies"], success
        assert (await _session_of(server, token))["valid"] is True
        await login.answer(done=True)
        await login.ends()

        # (2) A later login: straight to the push, approved with the number the SDK shows.
        login = await start()
        await login.through_password()
        second = await _approve_with_number(phone, login)
        assert second != token
        assert (await _session_of(server, second))["valid"] is True

        # (4) Logout through the SDK (its cookie) ends that session, and only that one.
        await login.answer(logout=True)
        out = await login.expect("loggedOut")
        assert out == {"loggedOut": 200, "cookies": []}, out  # the cookie is deleted too
        await login.ends()
        assert (await _session_of(server, second))["valid"] is False
        assert (await _session_of(server, token))["valid"] is True

        # (3) Lost phone: the wait step's exit leads to a recovery code, which works once.
        login = await start()
        await login.through_password()
        waiting = await login.expect("number")
        push = await _push(phone, login)
        await login.answer(exit=LOST_PHONE)
        prompt = await login.expect("prompt")
        assert prompt["prompt"] == "Recovery Code"
        await login.answer(value=codes[3])
        recovered = await login.expect("tokenId")
        assert (await _session_of(server, str(recovered["tokenId"])))["valid"] is True
        assert await server.services.journeys.recovery_codes_left("/", "alice") == 9
        await login.answer(done=True)
        await login.ends()
        # Exit canceled the push: the lost phone can no longer approve it.
        assert waiting["number"] is not None
        with pytest.raises(SimulatorError):
            await phone.approve(push, number=int(str(waiting["number"])))

        # The same code a second time is refused: the collector asks again, then gives up.
        login = await start()
        await login.through_password()
        await login.expect("number")
        await login.answer(exit=LOST_PHONE)
        await login.expect("prompt")
        await login.answer(value=codes[3])
        for _ in range(5):
            line = await login.expect("prompt", "failure")
            if "failure" in line:
                break
            await login.answer(value=codes[3])
        assert line.get("failure") == {
            "code": 401,
            "reason": "Unauthorized",
            "message": "Login failure",
            "detail": None,
            "authId": None,
        }, line
        await login.ends()


# Headers only: one backend is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_page_on_another_origin_logs_in_and_out(
    start_login: StartLogin, server: Server
) -> None:
    """The page at PAGE_ORIGIN (listed in PUSHGATE_CORS_ORIGINS): the driver's fetch makes the
    browser's CORS checks, so a preflight or an answer a browser would refuse fails here."""
    phone = await _user_with_phone(server, "bob")
    async with phone:
        login = await start_login("bob", origin=PAGE_ORIGIN)
        await login.through_password()
        token = await _approve_with_number(phone, login)
        await login.answer(logout=True)
        # SessionManager posts to `.../sessions/?_action=logout`, with the slash: a redirect
        # to `/sessions` would fail the browser's preflight.
        out = await login.expect("loggedOut")
        assert out == {"loggedOut": 200, "cookies": []}, out
        await login.ends()
    assert (await _session_of(server, token))["valid"] is False


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_approval_before_the_page_polls_again_ends_the_login(
    start_login: StartLogin, server: Server
) -> None:
    """The phone answers while the page is between two requests (here: before its first
    poll). Issue 9: the login completes within 1 s of the approval, so the very next answer is
    the success, not another round of waiting."""
    phone = await _user_with_phone(server, "carol")
    async with phone:
        login = await start_login("carol")
        await login.through_password()
        waiting = await login.expect("number")
        push = await _push(phone, login)
        await phone.approve(push, number=int(waiting["number"]))
        await login.answer(wait=True)  # only now does the page poll
        after = await login.expect("tokenId", "stillWaiting")
        # The hub remembers the answer the page was not listening for (SessionEvents).
        assert "stillWaiting" not in after, after
        await login.answer(done=True)
        await login.ends()
