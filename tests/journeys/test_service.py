"""The journey service on both databases, with the simulator as the phone: the seed 002
journey against the real session, device and account services, the phone talking to the
device endpoint over ASGI (tests/api/helpers.py)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from pushgate.journeys.callbacks import InvalidCallbacks
from pushgate.journeys.engine import Asking, Finished
from pushgate.journeys.nodes.base import RequestInfo
from pushgate.journeys.service import JourneyService
from pushgate.journeys.state import JourneyState
from pushgate.journeys.tree import TreeError
from pushgate.protocol import qr
from pushgate.services import Services
from pushgate.simulator import mechanism_from_uri, new_device, new_mechanism_uid, registration_body
from tests.api.helpers import Api, Phone
from tests.journeys.world import answered, types

PROFILE = json.dumps({"identifier": "b1", "metadata": {"browser": {"userAgent": "Firefox"}}})
SDK_CODES = re.compile(r'\s[\w\W]"([\w]*)\\')
BROWSER = RequestInfo(locales=("en-gb",), remote_ip="192.0.2.7", user_agent="Firefox")


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


@pytest.fixture
def journeys(services: Services) -> JourneyService:
    return services.journeys


def asking(progress: Asking | Finished) -> Asking:
    assert isinstance(progress, Asking), progress
    return progress


async def step(journeys: JourneyService, at: Asking, *values: object) -> Asking | Finished:
    # Between steps the state lives only in its JSON form (the REST layer seals it).
    state = JourneyState.from_json(at.state.to_json())
    return await journeys.step(state, answered(at.shown, *values), BROWSER)  # type: ignore[arg-type]


async def login(journeys: JourneyService, username: str, password: str = "pw") -> Asking | Finished:
    page = asking(await journeys.begin("/", "PushAuthentication", BROWSER))
    profile = await step(journeys, page, username, password)
    if isinstance(profile, Finished):
        return profile
    assert types(profile.shown) == ["DeviceProfileCallback"]
    return await step(journeys, profile, PROFILE)


def wait_values(at: Asking, index: int = 100) -> list[object]:
    return [
        c.out("id") if c.type == "HiddenValueCallback" else index
        for c in at.shown.callbacks
        if c.type != "PollingWaitCallback"
    ]


async def register_by_qr(api: Api, journeys: JourneyService, username: str) -> tuple[Asking, Phone]:
    """From the options page to the recovery codes, the phone scanning the QR code."""
    options = asking(await login(journeys, username))
    assert types(options.shown) == ["TextOutputCallback", "ConfirmationCallback"]
    shown_qr = asking(await step(journeys, options, 0))
    uri_text = str(shown_qr.shown.callbacks[2].out("value"))
    uri = qr.parse(uri_text)
    device, uid = new_device(), new_mechanism_uid()
    body = registration_body(uri, uid, device)
    response = await api.post(uri.register_url, body)
    assert response.status_code == 200, response.text
    phone = Phone("/", username, mechanism_from_uri(uri, uid), device, body)
    api.advance(2)
    display = asking(await step(journeys, shown_qr, "mfaDeviceRegistration"))
    return display, phone


async def test_registration_recovery_codes_and_number_matching(
    api: Api, journeys: JourneyService, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    display, phone = await register_by_qr(api, journeys, "alice")
    codes = SDK_CODES.findall(str(display.shown.callbacks[0].out("message")))
    assert len(codes) == 10
    assert await journeys.recovery_codes_left("/", "alice") == 10

    wait = asking(await step(journeys, display))
    number = wait.shown.callbacks[1].out("value")
    assert wait.shown.callbacks[1].out("id") == "pushChallengeNumber"
    push = await api.push(phone)
    assert push.message == "Login attempt from alice at " + services.settings.issuer
    assert int(str(number)) in push.numbers
    assert push.context == {"remoteIp": "192.0.2.7", "userAgent": "Firefox"}
    wrong = next(n for n in push.numbers if n != int(str(number)))
    assert (await api.answer(phone, push, number=wrong)).status_code == 400
    assert (await api.answer(phone, push, number=int(str(number)))).status_code == 200

    session_id = str(wait.state.shared["pushMessageId"])
    done = await journeys.step(
        JourneyState.from_json(wait.state.to_json()),
        answered(wait.shown, *wait_values(wait)),  # type: ignore[arg-type]
        RequestInfo(finished_sessions=frozenset({session_id})),
    )
    assert isinstance(done, Finished) and done.success
    assert await api.stored_status(session_id) == "APPROVED"


async def test_a_recovery_code_works_once(
    api: Api, journeys: JourneyService, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    display, _ = await register_by_qr(api, journeys, "alice")
    code = SDK_CODES.findall(str(display.shown.callbacks[0].out("message")))[0]

    for attempt in range(2):
        wait = asking(await login(journeys, "alice"))
        session_id = str(wait.state.shared["pushMessageId"])
        collector = asking(await step(journeys, wait, *wait_values(wait, index=0)))
        assert await api.stored_status(session_id) == "CANCELED"  # the lost phone's push
        result = await step(journeys, collector, code)
        if attempt == 0:
            assert isinstance(result, Finished) and result.success
        else:
            assert isinstance(result, Asking)  # False → Retry Limit → Retry
            assert result.state.node == "recovery-code-collector"
    assert await journeys.recovery_codes_left("/", "alice") == 9


async def test_expiry_sends_a_new_push(
    api: Api, journeys: JourneyService, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    display, phone = await register_by_qr(api, journeys, "alice")
    wait = asking(await step(journeys, display))
    first = str(wait.state.shared["pushMessageId"])
    api.advance(121)
    resent = asking(await step(journeys, wait, *wait_values(wait)))
    second = str(resent.state.shared["pushMessageId"])
    assert second != first
    assert await api.stored_status(first) == "EXPIRED"
    push = await api.push(phone)
    number = int(str(resent.shown.callbacks[1].out("value")))
    assert (await api.answer(phone, push, number=number)).status_code == 200
    api.advance(5)
    done = await step(journeys, resent, *wait_values(resent))
    assert isinstance(done, Finished) and done.success


async def test_denial_fails(api: Api, journeys: JourneyService, services: Services) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    display, phone = await register_by_qr(api, journeys, "alice")
    wait = asking(await step(journeys, display))
    push = await api.push(phone)
    assert (await api.answer(phone, push, approve=False)).status_code == 200
    api.advance(5)
    done = await step(journeys, wait, *wait_values(wait))
    assert isinstance(done, Finished) and not done.success


async def test_opt_out_is_remembered(
    journeys: JourneyService, services: Services, api: Api
) -> None:
    await services.accounts.create_user("/", "carol", "pw")
    options = asking(await login(journeys, "carol"))
    done = await step(journeys, options, 3)  # Opt-out
    assert isinstance(done, Finished) and done.success
    assert await api.count("mfa_opt_outs", method="push") == 1
    again = await login(journeys, "carol")  # Push Sender: Skipped → Success
    assert isinstance(again, Finished) and again.success


async def test_wrong_passwords_count_toward_the_lock(
    journeys: JourneyService, services: Services
) -> None:
    await services.accounts.create_user("/", "dave", "pw")
    await services.accounts.set_realm_policy("/", {"lockAfterFailures": 2})
    for _ in range(2):
        failed = await login(journeys, "dave", "guess")
        assert isinstance(failed, Finished) and not failed.success
    locked = await login(journeys, "dave", "pw")  # the right password, too late
    assert isinstance(locked, Finished) and not locked.success
    async with services.store.autocommit() as db:
        user = await db.accounts.get_user("/", "dave")
    assert user is not None and user.locked


async def test_wrong_callbacks_change_nothing(
    api: Api, journeys: JourneyService, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    page = asking(await journeys.begin("/", "PushAuthentication"))
    before = await api.snapshot()
    with pytest.raises(InvalidCallbacks):
        await journeys.step(page.state, [{"type": "NameCallback"}])
    assert await api.snapshot() == before


async def test_set_password(journeys: JourneyService, services: Services) -> None:
    await services.accounts.create_user("/", "erin", None)
    failed = await login(journeys, "erin", "new")
    assert isinstance(failed, Finished) and not failed.success
    await journeys.set_password("/", "erin", "new")
    assert isinstance(await login(journeys, "erin", "new"), Asking)  # on to the options


async def test_trees_import_export_list(journeys: JourneyService, api: Api) -> None:
    listed = await journeys.list_trees("/")
    assert [(t.name, t.builtin, t.default) for t in listed] == [("PushAuthentication", True, True)]
    data = json.loads(await journeys.export_tree("/", "PushAuthentication"))
    data["_id"] = "Tap"
    data["nodes"]["push-sender"]["config"]["pushType"] = "DEFAULT"
    await journeys.import_tree("/", json.dumps(data))
    assert [t.name for t in await journeys.list_trees("/")] == ["PushAuthentication", "Tap"]
    assert json.loads(await journeys.export_tree("/", "Tap"))["_id"] == "Tap"

    data["nodes"]["push-wait"]["config"]["exitMessage"] = {"xx-not-a-locale-at-all": "x"}
    before = await api.snapshot()
    with pytest.raises(TreeError, match="Invalid locale provided"):
        await journeys.import_tree("/", json.dumps(data))
    assert await api.snapshot() == before
