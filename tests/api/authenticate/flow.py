"""A ForgeRock SDK's view of `/json/.../authenticate` for the REST tests: post the whole
previous step back with its inputs filled in, as the SDKs do (spec forgerock-push.md §8.1),
and a phone (the simulator) that registers by QR and answers pushes."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import httpx
from argon2 import PasswordHasher

from pushgate.protocol import qr
from pushgate.services import Services
from pushgate.simulator import mechanism_from_uri, new_device, new_mechanism_uid, registration_body
from tests.api.helpers import Api, Phone

TREE = "PushAuthentication"
URL = f"/json/realms/root/authenticate?authIndexType=service&authIndexValue={TREE}"
SESSIONS = "/json/realms/root/sessions"
# What the JS SDK sends with every step (spec §8.1).
SDK_HEADERS = {
    "Accept-API-Version": "protocol=1.0,resource=2.1",
    "Content-Type": "application/json",
    "Accept": "application/json",
    "X-Requested-With": "forgerock-sdk",
    "Accept-Language": "en-GB,en;q=0.8",
    "User-Agent": "Mozilla/5.0 (test) Firefox/128.0",
}
PROFILE = json.dumps({"identifier": "b1", "metadata": {"browser": {"userAgent": "Firefox"}}})
SDK_CODES = re.compile(r'\s[\w\W]"([\w]*)\\')  # the JS SDK's FRRecoveryCodes regex
FAILURE = {"code": 401, "reason": "Unauthorized", "message": "Login failure"}
Step = dict[str, Any]
# Cheap argon2id parameters: the hash says how to verify it, so logins stay fast in tests.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_HASHES: dict[str, str] = {}


async def make_user(
    services: Services, username: str, password: str = "pw", realm: str = "/"
) -> str:
    """A user the journey's Data Store Decision logs in (as `pushgate user create` makes)."""
    user = await services.accounts.create_user(realm, username, None)
    hashed = _HASHES.setdefault(password, _CHEAP.hash(password))
    async with services.store.transaction() as tx:
        assert await tx.journeys.set_password_hash(user.id, hashed)
    return username


def url_for(realm: str = "/", tree: str | None = TREE) -> str:
    path = "/json/realms/root" + (f"/realms/{realm.strip('/')}" if realm != "/" else "")
    query = f"?authIndexType=service&authIndexValue={tree}" if tree else ""
    return f"{path}/authenticate{query}"


def fill(step: Step, *values: object) -> Step:
    """The step as the SDK posts it back: everything it got, the inputs set in order (those
    given None or no value keep their starting value)."""
    posted = copy.deepcopy(step)
    given = iter(values)
    for callback in posted["callbacks"]:
        for entry in callback.get("input", []):
            value = next(given, None)
            if value is not None:
                entry["value"] = value
    return posted


def types(step: Step) -> list[str]:
    return [c["type"] for c in step["callbacks"]]


def output(step: Step, index: int, name: str) -> Any:
    return next(o["value"] for o in step["callbacks"][index]["output"] if o["name"] == name)


def hidden(step: Step, id_: str) -> str:
    for callback in step["callbacks"]:
        outputs = {o["name"]: o["value"] for o in callback["output"]}
        if callback["type"] == "HiddenValueCallback" and outputs.get("id") == id_:
            return str(outputs["value"])
    raise AssertionError(f"no HiddenValueCallback {id_!r} in {types(step)}")


class Rest:
    """One browser: its cookie jar is the httpx client's."""

    def __init__(self, api: Api, url: str = URL) -> None:
        self.api = api
        self.client: httpx.AsyncClient = api.client
        self.url = url

    async def post(self, body: object, url: str | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post(url or self.url, content=content, headers=SDK_HEADERS)

    async def ok(self, body: object, url: str | None = None) -> Step:
        response = await self.post(body, url)
        assert response.status_code == 200, response.text
        data: Step = response.json()
        return data

    async def begin(self) -> Step:
        return await self.ok(b"")

    async def submit(self, step: Step, *values: object) -> Step:
        return await self.ok(fill(step, *values))

    async def answer(self, step: Step, *values: object) -> Step:
        """The next step, the success, or the 401 failure."""
        response = await self.post(fill(step, *values))
        assert response.status_code in (200, 401), response.text
        data: Step = response.json()
        return data

    async def to_options_or_wait(self, username: str, password: str = "pw") -> Step:
        """Credentials and the device profile: the step after them (or the failure)."""
        page = await self.begin()
        profile = await self.answer(page, username, password)
        if "authId" not in profile:
            return profile
        assert types(profile) == ["DeviceProfileCallback"], profile
        return await self.submit(profile, PROFILE)

    async def register_by_qr(self, username: str, password: str = "pw") -> tuple[Step, Phone]:
        """From the options page to the recovery codes, the phone scanning the QR code."""
        options = await self.to_options_or_wait(username, password)
        assert types(options) == ["TextOutputCallback", "ConfirmationCallback"], options
        scan = await self.submit(options, 0)  # Register
        uri = qr.parse(hidden(scan, "mfaDeviceRegistration"))
        device, uid = new_device(), new_mechanism_uid()
        body = registration_body(uri, uid, device)
        response = await self.api.post(uri.register_url, body)
        assert response.status_code == 200, response.text
        phone = Phone("/", username, mechanism_from_uri(uri, uid), device, body)
        codes = await self.submit(scan)  # the next poll sees the registration done
        return codes, phone
