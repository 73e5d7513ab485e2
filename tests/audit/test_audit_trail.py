"""The audit trail (issue 10, "Seeing what it does") on SQLite and PostgreSQL: who and from
where on the entries the device and relying-party faces write, fraud reports marked, and the
reads behind `pushgate audit tail|export`: newest first shown oldest first, realm filters,
time windows paged by (time, id) without loss or repetition, following appends."""

from __future__ import annotations

import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.audit.model import AuditEntry, AuditQuery, iso_ms, parse_instant
from pushgate.audit.service import AuditTrail
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.wiring import build_services
from tests.api.helpers import Api
from tests.support import FakeClock

T0 = 1_790_000_000_000


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def _entries(services: Services, subject: str) -> list[AuditEntry]:
    trail = AuditTrail(services.store)
    return [r.entry async for r in trail.export(AuditQuery()) if r.entry.subject == subject]


async def test_device_answers_name_the_device_and_the_client_address(api: Api) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    issued = await api.services.accounts.create_api_key("/")
    created = await api.create_session(issued.key, "alice")
    push = await api.push(phone)
    response = await api.answer(phone, push, approve=False, deny_reason="UNEXPECTED_OPERATION")
    assert response.status_code == 200, response.text

    device_id = (await api.device_row(phone.mechanism.mechanism_uid))["id"]
    registered = await _entries(api.services, device_id)
    assert [(e.event, e.actor, e.remote_ip) for e in registered] == [
        ("device.registered", f"device:{device_id}", "127.0.0.1")
    ]
    session = await _entries(api.services, created["id"])
    assert [(e.event, e.actor, e.remote_ip) for e in session] == [
        ("session.created", f"apikey:{issued.id}", "127.0.0.1"),  # the relying party
        ("session.answered", f"device:{device_id}", "127.0.0.1"),
    ]
    answered = session[1].data
    assert answered["status"] == "rejected"
    assert answered["denyReason"] == "UNEXPECTED_OPERATION"
    assert answered["fraudReported"] is True


async def test_a_cancel_names_the_key_that_asked(api: Api) -> None:
    issued = await api.services.accounts.create_api_key("/")
    await api.user("/", "carol")
    await api.register("/", "carol")
    created = await api.create_session(issued.key, "carol")
    response = await api.cancel(issued.key, created["id"])
    assert response.status_code == 200, response.text
    canceled = (await _entries(api.services, created["id"]))[-1]
    assert (canceled.event, canceled.actor) == ("session.canceled", f"apikey:{issued.id}")


async def test_a_plain_denial_is_no_fraud_report(api: Api) -> None:
    await api.user("/", "bob")
    phone = await api.register("/", "bob")
    created = await api.create_session(await api.key(), "bob")
    response = await api.answer(phone, await api.push(phone), approve=False)
    assert response.status_code == 200, response.text
    answered = (await _entries(api.services, created["id"]))[-1]
    assert answered.data["status"] == "rejected"
    assert "fraudReported" not in answered.data


async def _append(services: Services, *entries: AuditEntry) -> None:
    async with services.store.transaction() as tx:
        for entry in entries:
            await tx.audit.append(entry)


async def test_newest_and_realm_filter(services: Services) -> None:
    await services.accounts.create_realm("alpha")
    await _append(
        services,
        *(AuditEntry("/", "test.root", f"r{i}", T0 + i) for i in range(5)),
        *(AuditEntry("/alpha", "test.alpha", f"a{i}", T0 + 10 + i) for i in range(3)),
    )
    trail = AuditTrail(services.store)
    newest = await trail.newest(None, 4)
    assert [r.entry.subject for r in newest] == ["r4", "a0", "a1", "a2"]
    assert [r.entry.subject for r in await trail.newest("/", 2)] == ["r3", "r4"]
    alpha = await trail.newest("/alpha", 100)
    # The realm's creation is audited too.
    assert [r.entry.subject for r in alpha] == ["/alpha", "a0", "a1", "a2"]


async def test_export_pages_a_window_by_time_then_id(services: Services) -> None:
    # Out of time order on purpose, with ties: ids and times need not agree.
    times = [T0 + 5, T0 + 1, T0 + 3, T0 + 3, T0 + 9, T0 + 0, T0 + 3, T0 + 7]
    await _append(
        services,
        *(AuditEntry("/", "test.e", f"s{i}", at, {"i": i}) for i, at in enumerate(times)),
    )
    trail = AuditTrail(services.store)
    query = AuditQuery(since_ms=T0 + 1, until_ms=T0 + 9)
    for page in (1, 2, 3, 100):  # every page size gives the same rows, once each
        found = [r async for r in trail.export(query, page=page)]
        assert [r.entry.at_ms - T0 for r in found] == [1, 3, 3, 3, 5, 7]
        ids = [r.id for r in found]
        assert len(set(ids)) == len(ids)
        same_time = [r.id for r in found if r.entry.at_ms == T0 + 3]
        assert same_time == sorted(same_time)
    everything = [r async for r in trail.export(AuditQuery())]
    assert len(everything) == len(times)
    assert [r async for r in trail.export(AuditQuery(realm="/other"))] == []


async def test_follow_yields_what_is_appended_after_the_tail(services: Services) -> None:
    await _append(services, AuditEntry("/", "test.before", "b", T0))
    trail = AuditTrail(services.store)
    shown = await trail.newest(None, 10)
    assert [r.entry.subject for r in shown] == ["b"]
    following = trail.follow(None, shown, poll_seconds=0.01)
    await _append(services, AuditEntry("/", "test.after", "x1", T0 + 1))
    first = await anext(following)
    await _append(services, AuditEntry("/", "test.after", "x2", T0 + 2))
    second = await anext(following)
    await following.aclose()
    assert [first.entry.subject, second.entry.subject] == ["x1", "x2"]
    assert first.id > shown[-1].id


async def test_actor_and_address_longer_than_their_columns_are_cut(services: Services) -> None:
    await _append(
        services, AuditEntry("/", "test.long", "l", T0, actor="a" * 300, remote_ip="f" * 100)
    )
    (record,) = await AuditTrail(services.store).newest(None, 1)
    assert record.entry.actor == "a" * 128
    assert record.entry.remote_ip == "f" * 64


def test_instants_iso_and_relative() -> None:
    now = T0
    assert parse_instant("24h", now) == now - 86_400_000
    assert parse_instant("90s", now) == now - 90_000
    assert parse_instant("2w", now) == now - 14 * 86_400_000
    assert parse_instant("2026-12-01T08:00:00Z", now) == 1_796_112_000_000
    assert parse_instant("2026-12-01T09:00:00+01:00", now) == 1_796_112_000_000
    assert parse_instant("2026-12-01T08:00:00", now) == 1_796_112_000_000  # UTC
    assert iso_ms(1_796_112_000_123) == "2026-12-01T08:00:00.123Z"
    for bad in ("", "yesterday", "-5h", "5y", "h"):
        with pytest.raises(ValueError, match="ISO-8601"):
            parse_instant(bad, now)


async def test_a_trusted_proxy_names_the_client(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    behind = build_services(settings.model_copy(update={"trusted_proxies": "127.0.0.1"}), clock)
    app = create_app(behind, close_store=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            issued = await behind.accounts.create_api_key("/")
            await behind.accounts.create_user("/", "dave", None)
            response = await http.post(
                "/v1/push/sessions",
                json={"user": "dave"},
                headers={"X-API-Key": issued.key, "X-Forwarded-For": "203.0.113.9"},
            )
            assert response.status_code == 201, response.text
        (created,) = await _entries(behind, response.json()["id"])
        assert (created.actor, created.remote_ip) == (f"apikey:{issued.id}", "203.0.113.9")
    finally:
        await behind.store.aclose()


async def test_an_inbox_message_names_the_key_that_posted_it(api: Api) -> None:
    issued = await api.services.accounts.create_api_key("/")
    await api.user("/", "erin")
    response = await api.client.post(
        "/v1/inbox/messages",
        json={"user": "erin", "subject": "Hello", "summary": "Hi", "body": "Text"},
        headers={"X-API-Key": issued.key},
    )
    assert response.status_code == 201, response.text
    (posted,) = await _entries(api.services, response.json()["id"])
    assert (posted.event, posted.actor, posted.remote_ip) == (
        "inbox.posted",
        f"apikey:{issued.id}",
        "127.0.0.1",
    )
