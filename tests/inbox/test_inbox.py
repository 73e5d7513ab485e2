"""The message inbox (issue 8; PowerAuth's inbox API): a relying party posts with its key, the
user's devices list, read and count with signed requests, each realm apart from the others."""

from __future__ import annotations

import dataclasses

import pytest

from pushgate.protocol import inbox_messages as rq
from pushgate.simulator import SimulatorError
from pushgate.simulator.inbox import inbox_body
from tests.api.helpers import REFUSED, Api
from tests.inbox.conftest import MESSAGES, inbox_of, post


async def test_a_posted_message_is_listed_detailed_read_and_counted(api: Api) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await api.register("/", "alice")
    inbox = inbox_of(api, phone)

    response = await post(api, key, subject="Statement", summary="May", body="Your statement")
    assert response.status_code == 201, response.text
    posted = response.json()
    assert posted == {
        "id": posted["id"],
        "user": "alice",
        "type": "text",
        "subject": "Statement",
        "summary": "May",
        "body": "Your statement",
        "read": False,
        "timestampCreated": api.now_ms(),
    }

    assert await inbox.count() == 1
    [item] = await inbox.list()
    assert (item.id, item.subject, item.summary, item.read, item.body) == (
        posted["id"], "Statement", "May", False, None
    )  # fmt: skip
    detail = await inbox.detail(posted["id"])
    assert (detail.body, detail.read) == ("Your statement", False)  # reading is explicit

    api.advance(5)
    await inbox.read(posted["id"])
    assert await inbox.count() == 0
    assert (await inbox.detail(posted["id"])).read is True
    await inbox.read(posted["id"])  # again: still read, no error
    assert await inbox.count() == 0


async def test_every_device_of_the_user_shares_one_inbox(api: Api) -> None:
    await api.user("/", "alice")
    key = await api.key()
    first, second = await api.register("/", "alice"), await api.register("/", "alice")
    ids = [(await post(api, key, subject=f"m{n}")).json()["id"] for n in range(3)]

    await inbox_of(api, first).read(ids[0])
    assert await inbox_of(api, second).count() == 2
    await inbox_of(api, second).read_all()
    assert await inbox_of(api, first).count() == 0
    assert all(item.read for item in await inbox_of(api, first).list())


async def test_pages_are_newest_first_and_can_hold_unread_ones_only(api: Api) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await api.register("/", "alice")
    inbox = inbox_of(api, phone)
    ids = []
    for n in range(5):
        ids.append((await post(api, key, subject=f"m{n}")).json()["id"])
        api.advance(1)

    pages = [[i.id for i in await inbox.list(page=p, size=2)] for p in range(4)]
    assert pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]], []]
    await inbox.read(ids[3])
    await inbox.read(ids[1])
    unread = [i.id for i in await inbox.list(size=10, only_unread=True)]
    assert unread == [ids[4], ids[2], ids[0]]


async def test_html_is_cleaned_before_it_is_stored(api: Api) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await api.register("/", "alice")
    dirty = (
        '<p onclick="steal()">Hi <b>Alice</b><script>alert(1)</script>'
        '<img src="https://tracker.example/p.gif">'
        '<a href="javascript:steal()">x</a> <a href="https://bank.example/">bank</a></p>'
        "<style>p{}</style><iframe src=https://evil.example></iframe>"
    )
    response = await post(api, key, type="html", body=dirty)
    assert response.status_code == 201, response.text
    body = response.json()["body"]
    assert body == (
        '<p>Hi <b>Alice</b><a rel="noopener noreferrer">x</a> '
        '<a href="https://bank.example/" rel="noopener noreferrer">bank</a></p>'
    )
    # What a device gets is what was stored: the cleaned body.
    assert (await inbox_of(api, phone).detail(response.json()["id"])).body == body
    # A text body is the relying party's text, kept as it is (the device shows it as text).
    text = await post(api, key, body="<b>5 < 6</b>")
    assert text.json()["body"] == "<b>5 < 6</b>"


async def test_html_with_nothing_left_once_cleaned_is_refused(api: Api) -> None:
    await api.user("/", "alice")
    key = await api.key()
    response = await post(api, key, type="html", body="<script>alert(1)</script>")
    assert response.status_code == 400
    assert response.json()["code"] == "invalidRequest"
    assert await api.count("inbox_messages") == 0


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"subject": ""}, 400),
        ({"subject": "s" * 256}, 400),
        ({"summary": "s" * 1025}, 400),
        ({"body": "b" * (32 * 1024 + 1)}, 400),
        ({"body": ""}, 400),
        ({"type": "markdown"}, 400),
        ({"subject": 5}, 400),
        ({"extra": "field"}, 400),
        ({"body": "nul\x00"}, 400),
        ({"user": "nobody"}, 404),
    ],
)
async def test_bad_messages_are_refused_with_the_v1_error_shape(
    api: Api, fields: dict[str, object], status: int
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    response = await post(api, key, **fields)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"code", "message"}
    assert await api.count("inbox_messages") == 0


async def test_posting_needs_a_key(api: Api) -> None:
    await api.user("/", "alice")
    for headers in ({}, {"X-API-Key": "not-a-key"}):
        response = await api.client.post(
            MESSAGES, json={"user": "alice", "subject": "s", "body": "b"}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
    assert await api.count("inbox_messages") == 0


async def test_realms_are_apart(api: Api) -> None:
    """A key posts to its own realm's user of that name; a device sees its own realm only."""
    await api.realm("/other")
    await api.user("/", "alice")
    await api.user("/other", "alice")
    home, other = await api.key("/"), await api.key("/other")
    phone = await api.register("/", "alice")
    elsewhere = await api.register("/other", "alice")

    posted = (await post(api, other, subject="for the other alice")).json()
    assert await inbox_of(api, phone).count() == 0
    assert await inbox_of(api, elsewhere).count() == 1
    # The other realm's message id means nothing to this realm's device.
    with pytest.raises(SimulatorError) as refused:
        await inbox_of(api, phone).read(posted["id"])
    assert refused.value.status == 400
    with pytest.raises(SimulatorError):
        await inbox_of(api, phone).detail(posted["id"])
    assert (await inbox_of(api, elsewhere).detail(posted["id"])).read is False
    await post(api, home)
    assert await inbox_of(api, phone).count() == 1


async def test_a_request_signed_for_another_action_or_by_another_key_is_refused(
    api: Api,
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await api.register("/", "alice")
    await post(api, key)
    url = phone.pending_url.replace("_action=pending", f"_action={rq.READ_ALL}")

    # A count request (or a plain poll) replayed as read-all changes nothing.
    count = inbox_body(phone.mechanism, rq.COUNT, api.now_ms())
    response = await api.post(url, count)
    assert (response.status_code, response.json()) == (400, REFUSED)
    poll = (await api.poll(phone)).request.content
    response = await api.post(url, poll)
    assert (response.status_code, response.json()) == (400, REFUSED)
    # Signed with another secret.
    forger = dataclasses.replace(phone.mechanism, secret=b"x" * 32)
    forged = inbox_body(forger, rq.READ_ALL, api.now_ms())
    response = await api.post(url, forged)
    assert (response.status_code, response.json()) == (400, REFUSED)
    # Too old: outside the allowed clock skew.
    stale = inbox_body(phone.mechanism, rq.READ_ALL, api.now_ms() - 3_600_000)
    response = await api.post(url, stale)
    assert (response.status_code, response.json()) == (400, REFUSED)
    assert await inbox_of(api, phone).count() == 1


@pytest.mark.parametrize(
    ("action", "arguments"),
    [
        (rq.LIST, {"size": 0}),
        (rq.LIST, {"size": 101}),
        (rq.LIST, {"page": -1}),
        (rq.LIST, {"page": "1"}),
        (rq.LIST, {"onlyUnread": "yes"}),
        (rq.DETAIL, {}),
        (rq.READ, {"id": 7}),
    ],
)
async def test_bad_arguments_are_refused(
    api: Api, action: str, arguments: dict[str, object]
) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    url = phone.pending_url.replace("_action=pending", f"_action={action}")
    response = await api.post(url, inbox_body(phone.mechanism, action, api.now_ms(), **arguments))
    assert (response.status_code, response.json()) == (400, REFUSED)
