"""Held Push Wait steps (issue 9: "the login completes within 1 s of the approval"): a
resubmitted wait is held on the session events hub until the push ends, then answered with
the journey's result; its first showing is answered at once, so the number can be shown."""

from __future__ import annotations

import anyio
import httpx
import pytest

from pushgate.services import Services
from pushgate.settings import Settings
from tests.api.authenticate.flow import FAILURE, Rest, Step, fill, hidden, make_user, output
from tests.api.helpers import Api, Phone

HOLD_SECONDS = 1.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"journey_hold_seconds": HOLD_SECONDS})


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


@pytest.fixture
def rest(api: Api) -> Rest:
    return Rest(api)


async def waiting(rest: Rest, services: Services) -> tuple[Step, Phone]:
    await make_user(services, "alice")
    codes, phone = await rest.register_by_qr("alice")
    wait = await rest.submit(codes)
    assert output(wait, 0, "waitTime") == "0"  # answered at once, the number on it
    return wait, phone


async def held_while(
    rest: Rest, services: Services, wait: Step, phone_acts: object
) -> httpx.Response:
    """Submit the wait again; once the server holds it (a waiter on the hub), the phone acts."""
    answers: list[httpx.Response] = []

    async def submit() -> None:
        answers.append(await rest.post(fill(wait)))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(submit)
        with anyio.fail_after(5):
            while services.events.waiting == 0:
                await anyio.sleep(0.005)
        await phone_acts()  # type: ignore[operator]
    return answers[0]


async def test_an_approval_answers_the_held_step(api: Api, rest: Rest, services: Services) -> None:
    wait, phone = await waiting(rest, services)

    async def approve() -> None:
        push = await api.push(phone)
        number = int(hidden(wait, "pushChallengeNumber"))
        assert (await api.answer(phone, push, number=number)).status_code == 200

    # The fake clock never moves: only the session's end can have answered the step.
    response = await held_while(rest, services, wait, approve)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"tokenId", "successUrl", "realm"}
    assert services.events.waiting == 0


async def test_a_denial_answers_the_held_step(api: Api, rest: Rest, services: Services) -> None:
    wait, phone = await waiting(rest, services)

    async def deny() -> None:
        push = await api.push(phone)
        assert (await api.answer(phone, push, approve=False)).status_code == 200

    response = await held_while(rest, services, wait, deny)
    assert response.status_code == 401 and response.json() == FAILURE


async def test_nothing_happens_the_hold_ends_with_the_same_wait(
    rest: Rest, services: Services
) -> None:
    wait, _ = await waiting(rest, services)
    with anyio.fail_after(HOLD_SECONDS + 4):
        again = await rest.submit(wait)
    assert [c["type"] for c in again["callbacks"]] == [c["type"] for c in wait["callbacks"]]
    assert hidden(again, "pushChallengeNumber") == hidden(wait, "pushChallengeNumber")
    assert output(again, 0, "waitTime") == "0"  # come straight back: the server waits
    assert again["authId"] != wait["authId"]
    assert services.events.waiting == 0
