"""What `/json/.../authenticate` refuses (issue 9 "Must hold"): a tampered, expired,
other-realm or other-tree authId, a step submitted twice, callbacks with wrong input names or
types; each a clear CREST error, with nothing written. Unknown realms and trees are 404."""

from __future__ import annotations

import base64

import anyio
import httpx
import pytest

from pushgate.services import Services
from tests.api.authenticate.flow import PROFILE, Rest, Step, fill, make_user, types, url_for
from tests.api.helpers import Api


def crest(status: int, message: str) -> dict[str, object]:
    reason = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}[status]
    return {"code": status, "reason": reason, "message": message}


INVALID = crest(400, "Invalid authId")
TIMED_OUT = crest(401, "Session has timed out")
REPLAYED = crest(400, "This journey step was submitted already")


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


@pytest.fixture
def rest(api: Api) -> Rest:
    return Rest(api)


@pytest.fixture
async def credentials(rest: Rest, services: Services) -> Step:
    """The credentials page, filled in: its submission would look the user up."""
    await make_user(services, "alice")
    return fill(await rest.begin(), "alice", "pw")


async def refused(rest: Rest, api: Api, body: object, status: int, url: str | None = None) -> dict:
    before = await api.snapshot()
    response = await rest.post(body, url)
    assert response.status_code == status, response.text
    assert "set-cookie" not in response.headers
    assert await api.snapshot() == before  # nothing performed, nothing consumed
    data: dict = response.json()
    return data


def _flip(auth_id: str, position: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(auth_id + "=" * (-len(auth_id) % 4)))
    raw[position] ^= 0x20
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("position", [0, 5, 40, -1])
async def test_a_tampered_auth_id(rest: Rest, api: Api, credentials: Step, position: int) -> None:
    tampered = {**credentials, "authId": _flip(credentials["authId"], position)}
    assert await refused(rest, api, tampered, 400) == INVALID
    assert types(await rest.ok(credentials)) == ["DeviceProfileCallback"]  # the real one works


@pytest.mark.parametrize("auth_id", ["x", "not an authId!", 42, ["a"], "A" * 9000])
async def test_junk_auth_ids(rest: Rest, api: Api, credentials: Step, auth_id: object) -> None:
    assert await refused(rest, api, {**credentials, "authId": auth_id}, 400) == INVALID


async def test_an_expired_auth_id(rest: Rest, api: Api, credentials: Step) -> None:
    api.advance(5 * 60)
    assert await refused(rest, api, credentials, 401) == TIMED_OUT


async def test_an_auth_id_of_another_realm(
    rest: Rest, api: Api, credentials: Step, services: Services
) -> None:
    await services.accounts.create_realm("alpha")
    await make_user(services, "alice", realm="/alpha")
    assert await refused(rest, api, credentials, 400, url_for("/alpha")) == INVALID


async def test_an_auth_id_of_another_tree(
    rest: Rest, api: Api, credentials: Step, services: Services
) -> None:
    other = (await services.journeys.export_tree("/", "PushAuthentication")).replace(
        '"_id": "PushAuthentication"', '"_id": "Other"'
    )
    await services.journeys.import_tree("/", other)
    assert await refused(rest, api, credentials, 400, url_for("/", "Other")) == INVALID


async def test_without_auth_index_value_any_tree_of_the_realm(
    rest: Rest, credentials: Step
) -> None:
    assert types(await rest.ok(credentials, url_for("/", None))) == ["DeviceProfileCallback"]


async def test_a_step_submitted_twice(rest: Rest, api: Api, credentials: Step) -> None:
    profile = await rest.ok(credentials)
    assert await refused(rest, api, credentials, 400) == REPLAYED
    # The journey went on from the first submission.
    assert "authId" in await rest.ok(fill(profile, PROFILE))


async def test_a_step_submitted_twice_at_once(rest: Rest, credentials: Step) -> None:
    statuses: list[int] = []

    async def send() -> None:
        statuses.append((await rest.post(credentials)).status_code)

    async with anyio.create_task_group() as tasks:
        for _ in range(3):
            tasks.start_soon(send)
    assert sorted(statuses) == [200, 400, 400]


def _with_input(step: Step, index: int, name: str, value: object) -> Step:
    callbacks = [dict(c) for c in step["callbacks"]]
    callbacks[index]["input"] = [{"name": name, "value": value}]
    return {**step, "callbacks": callbacks}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: _with_input(s, 0, "IDToken9", "alice"),
            "callback 1 (NameCallback): its input is IDToken1",
        ),
        (
            lambda s: _with_input(s, 1, "IDToken2", 1234),
            "IDToken2 (PasswordCallback) must be a string",
        ),
        (lambda s: {**s, "callbacks": s["callbacks"][:1]}, "expected 2 callbacks, got 1"),
        (lambda s: {**s, "callbacks": "no"}, "callbacks must be a list"),
        (lambda s: {k: v for k, v in s.items() if k != "callbacks"}, "callbacks must be a list"),
        (
            lambda s: {**s, "callbacks": list(reversed(s["callbacks"]))},
            "callback 1 must be a NameCallback",
        ),
    ],
)
async def test_wrong_callbacks_change_nothing(
    rest: Rest, api: Api, credentials: Step, change: object, message: str
) -> None:
    wrong = change(credentials)  # type: ignore[operator]
    assert await refused(rest, api, wrong, 400) == crest(400, message)
    # Not consumed: the corrected step goes through.
    assert types(await rest.ok(credentials)) == ["DeviceProfileCallback"]


async def test_unknown_top_level_keys_are_ignored(rest: Rest, credentials: Step) -> None:
    posted = {**credentials, "header": "Sign in", "stage": None, "extra": {"x": 1}}
    assert types(await rest.ok(posted)) == ["DeviceProfileCallback"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body must be a JSON object: invalid JSON"),
        (b"[]", "the body must be a JSON object: JSON value is not an object"),
        (
            b'{"authId": 1, "authId": 2}',
            "the body must be a JSON object: duplicate member 'authId'",
        ),
    ],
)
async def test_bodies_that_are_not_a_json_object(
    rest: Rest, api: Api, body: bytes, message: str
) -> None:
    assert await refused(rest, api, body, 400) == crest(400, message)


@pytest.mark.parametrize(
    "url",
    [
        url_for("/nowhere"),
        url_for("/", "NoSuchTree"),
        url_for("/", "bad%2Fname"),
        "/json/realms/root/realms/a/realms/b/authenticate",
        "/json/realms/root/elsewhere/authenticate",
    ],
)
async def test_unknown_realms_and_trees_are_404(rest: Rest, api: Api, url: str) -> None:
    found = await refused(rest, api, b"", 404, url)
    assert found["code"] == 404 and found["reason"] == "Not Found"


async def test_an_unsupported_auth_index_type(rest: Rest, api: Api) -> None:
    url = "/json/realms/root/authenticate?authIndexType=module&authIndexValue=DataStore"
    found = await refused(rest, api, b"", 400, url)
    assert found == crest(400, "authIndexType 'module' is not supported: use service")


@pytest.mark.parametrize("url", ["/json/authenticate", "/json/realms/root/authenticate"])
async def test_root_realm_urls(rest: Rest, url: str) -> None:
    assert types(await rest.ok(b"", url)) == ["NameCallback", "PasswordCallback"]


async def test_a_sub_realm(rest: Rest, services: Services) -> None:
    await services.accounts.create_realm("alpha")
    await make_user(services, "bob", realm="/alpha")
    url = "/json/realms/root/realms/alpha/authenticate"
    page = await rest.ok(b"", url)
    assert types(await rest.ok(fill(page, "bob", "pw"), url)) == ["DeviceProfileCallback"]
    # The root realm's endpoint does not open it.
    response = await rest.post(fill(page, "bob", "pw"), "/json/authenticate")
    assert response.status_code == 400
