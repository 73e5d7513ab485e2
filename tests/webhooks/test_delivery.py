"""Webhooks end to end (issue 7 "Webhooks", "Must hold"), on SQLite and PostgreSQL: each event
reaches a real receiver on loopback, signed so that the Standard Webhooks library accepts it;
a receiver that fails and recovers gets the same id and body on every attempt, on the
schedule; one that never recovers is dead-lettered after every attempt; a removed webhook
stops receiving; secrets are sealed at rest."""

from __future__ import annotations

import itertools

import httpx
import pytest
from sqlalchemy import select

from pushgate.errors import InvalidRequest, NotFound
from pushgate.outbox.model import OutboxRow, OutboxState
from pushgate.services import Services
from pushgate.sessions.model import Content
from pushgate.sessions.service import NewSession
from pushgate.sessions.wire import session_json
from pushgate.settings import Settings
from pushgate.store import schema
from pushgate.webhooks import signing
from pushgate.webhooks.model import KIND, MAX_ATTEMPTS
from pushgate.wiring import build_services
from tests.api.helpers import Api, Phone, connect
from tests.support import FakeClock
from tests.webhooks.receiver import receiving


@pytest.fixture
def api(client: httpx.AsyncClient, hooked: Services) -> Api:
    return Api(client, hooked)


async def _subscribe(services: Services, url: str, *events: str) -> str:
    """A webhook of the root realm; the snapshot reloaded, as the refresh task does."""
    webhook = await services.webhooks.add("/", url, events)
    await services.webhooks.refresh()
    return webhook.secret


async def _user(api: Api, name: str) -> tuple[str, Phone]:
    await api.user("/", name)
    return await api.key(), await api.register("/", name)


async def _deliver(services: Services) -> None:
    while await services.outbox_worker.run_once():
        pass


async def _rows(services: Services) -> list[OutboxRow]:
    async with services.store.autocommit() as db:
        found = await db.webhooks.deliveries(KIND, None, None, 100)
    return sorted(found, key=lambda row: row.id)


async def _data(services: Services, session_id: str) -> dict[str, object]:
    """What `GET /v1/push/sessions/{id}` answers now."""
    return session_json(await services.sessions.get("/", session_id), services.clock.now_ms())


async def test_every_session_event_arrives_signed(
    api: Api, hooked: Services, clock: FakeClock
) -> None:
    async with receiving() as receiver:
        secret = await _subscribe(hooked, receiver.url)
        key, alice = await _user(api, "alice")
        _, bob = await _user(api, "bob")
        _, carol = await _user(api, "carol")
        _, dave = await _user(api, "dave")
        await _deliver(hooked)
        assert receiver.types() == ["device.registered"] * 4
        receiver.received.clear()

        accepted = await api.create_session(key, "alice")
        rejected = await api.create_session(key, "bob")
        canceled = await api.create_session(key, "carol")
        expired = await api.create_session(key, "dave", secondsToExpire=30)
        await _deliver(hooked)
        assert receiver.received == []  # an ordinary create is no event

        assert (await api.answer(alice, await api.push(alice))).status_code == 200
        assert (await api.answer(bob, await api.push(bob), approve=False)).status_code == 200
        assert (await api.cancel(key, canceled["id"])).status_code == 200
        clock.advance(31)
        await hooked.sessions.expire_due()
        failed = await api.create_session(key, "nobody")  # no such user: created in `error`
        assert dave and carol
        await _deliver(hooked)

        by_session = {r.event["data"]["id"]: r for r in receiver.received}
        expected = {
            accepted["id"]: "session.accepted",
            rejected["id"]: "session.rejected",
            canceled["id"]: "session.canceled",
            expired["id"]: "session.expired",
            failed["id"]: "session.error",
        }
        assert {sid: r.event["type"] for sid, r in by_session.items()} == expected
        for session_id, received in by_session.items():
            verified = received.verify(secret)
            assert verified["data"] == await _data(hooked, session_id)
            assert set(verified) == {"type", "timestamp", "data"}
            assert received.headers["content-type"] == "application/json"
            assert received.id.startswith("msg_")
        assert len({r.id for r in receiver.received}) == len(receiver.received)


async def test_device_registered_and_event_filter(api: Api, hooked: Services) -> None:
    async with receiving() as receiver:
        secret = await _subscribe(hooked, receiver.url, "device.registered", "session.rejected")
        key, alice = await _user(api, "alice")
        session = await api.create_session(key, "alice")
        assert (await api.answer(alice, await api.push(alice))).status_code == 200  # accepted
        await _deliver(hooked)

        [received] = receiver.received  # not the acceptance: not subscribed
        event = received.verify(secret)
        assert event["type"] == "device.registered"
        row = await api.device_row(alice.mechanism.mechanism_uid)
        assert event["data"] == {
            "id": alice.mechanism.mechanism_uid,
            "user": "alice",
            "realm": "/",
            "name": row["name"],
            "deviceType": row["device_type"],
        }
        assert session["id"]


async def test_a_failing_receiver_gets_the_same_message_until_it_recovers(
    api: Api, hooked: Services, clock: FakeClock
) -> None:
    async with receiving() as receiver:
        secret = await _subscribe(hooked, receiver.url, "session.accepted")
        key, alice = await _user(api, "alice")
        await api.create_session(key, "alice")
        assert (await api.answer(alice, await api.push(alice))).status_code == 200
        receiver.statuses = [500, 503]

        await _deliver(hooked)
        [row] = await _rows(hooked)
        assert row.state is OutboxState.PENDING and row.last_error == "HTTP 500"
        first_wait = row.next_attempt_ms - clock.ms
        assert 0 < first_wait <= 5_000
        await _deliver(hooked)
        assert len(receiver.received) == 1  # not due yet

        clock.ms = row.next_attempt_ms
        await _deliver(hooked)
        [row] = await _rows(hooked)
        assert row.last_error == "HTTP 503"
        second_wait = row.next_attempt_ms - clock.ms
        assert first_wait < second_wait <= 20_000

        clock.ms = row.next_attempt_ms
        await _deliver(hooked)
        [row] = await _rows(hooked)
        assert row.state is OutboxState.DONE and row.attempts == 3

        assert len(receiver.received) == 3
        assert len({r.id for r in receiver.received}) == 1
        assert len({r.body for r in receiver.received}) == 1
        stamps = [r.timestamp for r in receiver.received]
        assert stamps == sorted(stamps) and stamps[0] < stamps[-1]  # each attempt's own time
        for received in receiver.received:
            assert received.verify(secret)["type"] == "session.accepted"
        await _deliver(hooked)
        assert len(receiver.received) == 3  # never again after a 2xx


async def test_a_receiver_that_never_recovers_is_dead_lettered(
    settings: Settings, clock: FakeClock, hooked: Services
) -> None:
    async with receiving() as receiver:
        # A low global limit must not cut webhooks short: they have their own schedule.
        strict = build_services(settings.model_copy(update={"outbox_max_attempts": 2}), clock)
        try:
            await strict.webhooks.refresh()
            secret = await _subscribe(strict, receiver.url)
            await strict.accounts.create_user("/", "alice", None)
            await strict.sessions.create("/", _request("alice"))  # no device: `error` at once
            receiver.statuses = [500] * 100

            times = []
            while True:
                await _deliver(strict)
                [row] = await _rows(strict)
                times.append(clock.ms)
                if row.state is not OutboxState.PENDING:
                    break
                clock.ms = row.next_attempt_ms
            assert row.state is OutboxState.DEAD and row.last_error == "HTTP 500"
            assert row.attempts == len(receiver.received) == len(times) == MAX_ATTEMPTS >= 8
            assert times[7] - times[0] >= 3_600_000  # eight attempts span more than an hour
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert gaps[0] <= 5_000 and gaps[1] <= 20_000
            assert gaps == sorted(gaps)  # growing
            assert len({r.id for r in receiver.received}) == 1
            for received in receiver.received:  # each valid at its own attempt's time
                signing.verify(secret, received.headers, received.body, received.timestamp)

            [dead] = await strict.webhooks.deliveries(state=OutboxState.DEAD)
            assert (dead.type, dead.url, dead.attempts) == ("session.error", receiver.url, 11)
            assert dead.next_attempt_ms is None
            await _deliver(strict)
            assert len(receiver.received) == MAX_ATTEMPTS
        finally:
            await strict.webhooks.sender.aclose()
            await strict.store.aclose()


def _request(username: str) -> NewSession:
    return NewSession(username, Content("Sign in"), 60)


async def test_an_unreachable_receiver_is_retried(hooked: Services, clock: FakeClock) -> None:
    await _subscribe(hooked, "http://127.0.0.1:9/hook")  # discard port: nothing listens
    await hooked.accounts.create_user("/", "alice", None)
    await hooked.sessions.create("/", _request("alice"))
    await _deliver(hooked)
    [row] = await _rows(hooked)
    assert row.state is OutboxState.PENDING and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("cannot connect to")
    assert row.next_attempt_ms - clock.ms <= 5_000


async def test_a_removed_webhook_receives_nothing_more(
    settings: Settings, clock: FakeClock, hooked: Services
) -> None:
    async with receiving() as receiver:
        await _subscribe(hooked, receiver.url)
        await hooked.accounts.create_user("/", "alice", None)
        await hooked.sessions.create("/", _request("alice"))  # one event, not yet delivered
        other = build_services(settings, clock)  # another process: the CLI
        try:
            [webhook] = await other.webhooks.list("/")
            await other.webhooks.remove(webhook.id)
            with pytest.raises(NotFound):
                await other.webhooks.remove(webhook.id)
        finally:
            await other.store.aclose()

        await hooked.webhooks.refresh()  # what the refresh task does every 2 s
        await hooked.sessions.create("/", _request("alice"))
        await _deliver(hooked)
        assert receiver.received == []
        [row] = await _rows(hooked)  # the event from before: given up, not sent
        assert row.state is OutboxState.DEAD and row.last_error == "the webhook was removed"


async def test_the_secret_is_sealed_at_rest(hooked: Services) -> None:
    async with receiving() as receiver:
        created = await hooked.webhooks.add("/", receiver.url, ["session.error"])
        key = signing.secret_bytes(created.secret)
        async with connect(hooked) as conn:
            [row] = (await conn.execute(select(schema.webhooks))).mappings().all()
        raw = repr(dict(row)).encode() + bytes(row["secret"])
        assert created.secret.encode() not in raw and key not in raw
        assert created.secret.removeprefix("whsec_").encode() not in raw
        [listed] = await hooked.webhooks.list()
        assert listed.secret == created.secret  # opens with the server key


async def test_bad_subscriptions_are_refused(
    settings: Settings, clock: FakeClock, hooked: Services
) -> None:
    for url in ("ftp://x/", "http:///nohost", "http://user:pw@host/", "not a url", "http://h:x/"):
        with pytest.raises(InvalidRequest):
            await hooked.webhooks.add("/", url)
    with pytest.raises(InvalidRequest, match="unknown event type"):
        await hooked.webhooks.add("/", "http://127.0.0.1/", ["session.created"])
    with pytest.raises(NotFound):
        await hooked.webhooks.add("/nowhere", "http://127.0.0.1/")

    limited = settings.model_copy(update={"webhook_allowed_hosts": "hooks.example, *.rp.test"})
    strict = build_services(limited, clock)
    try:
        with pytest.raises(InvalidRequest, match="ALLOWED_HOSTS"):
            await strict.webhooks.add("/", "http://127.0.0.1/hook")
        await strict.webhooks.add("/", "https://HOOKS.example/in")
        await strict.webhooks.add("/", "http://a.b.rp.test:8080/in")
    finally:
        await strict.store.aclose()
    assert len(await hooked.webhooks.list("/")) == 2
