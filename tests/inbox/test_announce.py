"""A new inbox message is announced to each of the user's devices with a silent push (seed 004
"Message Inbox": `mtoken.inboxMessage.new` with `inboxId`), through the outbox and the loopback
providers, in the commit that stores the message."""

# The delivery fixtures (services with every provider on loopback) are imported here, so their
# names come back as parameters.
# ruff: noqa: F811

from __future__ import annotations

import dataclasses

import pytest

from pushgate.simulator import new_device
from tests.api.helpers import Api
from tests.delivery.conftest import (  # noqa: F401 - fixtures
    Providers,
    api,
    apns_key,
    apns_key_file,
    apns_server,
    fcm_key,
    fcm_server,
    pki,
    providers,
    push_service,
    push_settings,
    register,
    services,
    vapid,
)
from tests.inbox.conftest import inbox_of, post

KINDS = ["gcm", "apns", "webpush"]


@pytest.mark.parametrize("kind", KINDS)
async def test_each_device_of_the_user_is_told_of_a_new_message(
    api: Api, providers: Providers, kind: str
) -> None:
    await api.user("/", "alice")
    await api.user("/", "bob")
    key = await api.key()
    phone = await register(api, providers, kind)
    await api.register("/", "bob", device=providers.device(kind, "bob-phone"))

    posted = (await post(api, key)).json()
    assert await api.count("outbox", kind="push.notice") == 1  # alice's one device only
    assert await api.services.outbox_worker.run_once() == 1

    [push] = providers.pushes(kind)
    assert push["silent"] is True
    assert push["messageType"] == "mtoken.inboxMessage.new"
    assert push["inboxId"] == posted["id"]
    assert "message" not in push  # no JWT: the device fetches the message itself
    [item] = await inbox_of(api, phone).list()
    assert item.id == posted["id"]


async def test_a_device_without_a_transport_is_not_pushed_to(
    api: Api, providers: Providers
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    polling = dataclasses.replace(new_device(), communication_type="none")
    phone = await api.register("/", "alice", device=polling)
    await post(api, key)
    assert await api.count("outbox", kind="push.notice") == 0
    assert await inbox_of(api, phone).count() == 1


async def test_a_message_refused_writes_no_push(api: Api, providers: Providers) -> None:
    await api.user("/", "alice")
    key = await api.key()
    await register(api, providers, "gcm")
    response = await post(api, key, type="html", body="<script></script>")
    assert response.status_code == 400
    assert await api.count("outbox", kind="push.notice") == 0
