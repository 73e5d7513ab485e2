"""A model of the session lifecycle against the real services (security.md §9 E7).

Hypothesis drives random sequences of create / approve / deny / replay / cancel / clock moves /
expiry sweeps through the session and device services on a SQLite file, with real device
messages from the simulator, and after every step compares what the relying party would read
with a small model, the realm's default anti-fatigue policy included: a new session cancels
the user's pending one, the eleventh create in a minute is refused, five denials in a row
lock the user (an approval resets the count). Sequential: the races themselves are tested
on PostgreSQL in `tests/security/test_races.py`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from pushgate.accounts.model import RealmPolicy
from pushgate.errors import BadDeviceMessage, Conflict, RateLimited
from pushgate.protocol import device_messages as dm
from pushgate.protocol import qr
from pushgate.protocol.message_ids import parse_message_id
from pushgate.services import Services
from pushgate.sessions.model import Content, PushSession, SessionStatus
from pushgate.sessions.service import NewSession
from pushgate.settings import Settings
from pushgate.simulator import (
    Mechanism,
    answer_body,
    mechanism_from_uri,
    new_device,
    poll_body,
    registration_body,
)
from pushgate.wiring import build_services, migrate_database
from tests.support import TEST_SECRET_KEY, FakeClock

T = TypeVar("T")
PHONES = 2
POLICY = RealmPolicy()  # the defaults: what the model below knows


@dataclass
class Modelled:
    id: str
    expires_ms: int
    status: str = "sent"


@dataclass(frozen=True)
class Push:
    session: Modelled
    phone: int
    message_id: str
    jwt: str


class SessionLifecycle(RuleBasedStateMachine):
    sessions = Bundle("sessions")
    pushes = Bundle("pushes")
    answered = Bundle("answered")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self.folder.name) / 'model.db'}"
        self.clock = FakeClock()
        config = Settings(database_url=url, secret_key=TEST_SECRET_KEY, public_url="http://x")
        self.run(migrate_database(config))
        self.services: Services = build_services(config, self.clock)
        self.phones = [self.run(self._register_phone(i)) for i in range(PHONES)]
        self.known: list[Modelled] = []
        self.created_at: list[int] = []  # every admitted create, refused ones not
        self.denials = 0  # in a row
        self.locked = False

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.services.store.aclose())
        self.loop.close()
        self.folder.cleanup()

    async def _register_phone(self, index: int) -> Mechanism:
        if index == 0:
            await self.services.accounts.create_user("/", "alice", None)
        started = await self.services.devices.start_registration("/", "alice")
        uri = qr.parse(started.uri)
        uid = f"mechanism-{index}"
        body = registration_body(uri, uid, new_device(f"phone {index}"))
        await self.services.devices.register("/", dm.parse_message_request(body))
        return mechanism_from_uri(uri, uid)

    def _expected(self, session: Modelled) -> str:
        if session.status == "sent" and self.clock.now_ms() >= session.expires_ms:
            return "expired"
        return session.status

    # rules ------------------------------------------------------------------------------------

    @rule(target=sessions, ttl=st.integers(min_value=1, max_value=10))
    def create(self, ttl: int) -> Any:
        now = self.clock.now_ms()
        recent = [at for at in self.created_at if at > now - 60_000]
        content = Content("Sign in")
        try:
            made = self.run(self.services.sessions.create("/", NewSession("alice", content, ttl)))
        except RateLimited as exc:
            assert len(recent) >= POLICY.creates_per_minute
            assert 0 < exc.retry_after <= 60
            return multiple()
        assert len(recent) < POLICY.creates_per_minute, "a create over the limit was admitted"
        self.created_at.append(now)
        if self.locked:
            assert (made.notification_count, made.status.wire) == (0, "error")
            session = Modelled(made.id, made.expires_ms, "error")
        else:
            assert made.notification_count == PHONES
            for older in self.known:
                if self._expected(older) == "sent":
                    older.status = "canceled"  # superseded
            session = Modelled(made.id, made.expires_ms)
        self.known.append(session)
        return session

    @rule(target=pushes, session=sessions, phone=st.integers(0, PHONES - 1))
    def poll(self, session: Modelled, phone: int) -> Push | None:
        mechanism = self.phones[phone]
        body = poll_body(mechanism, self.clock.now_ms())
        found = self.run(self.services.devices.pending("/", dm.parse_poll_request(body)))
        # Only notifications of sessions still sent and not past their deadline are offered.
        offered = {p.message_id for p in found}
        assert len(offered) == sum(1 for s in self.known if self._expected(s) == "sent")
        for pending in found:
            owner = self.run(self._session_of(pending.message_id))
            if owner == session.id:
                return Push(session, phone, pending.message_id, pending.jwt)
        assert self._expected(session) != "sent"
        return None

    async def _session_of(self, message_id: str) -> str | None:
        async with self.services.store.autocommit() as db:
            found = await db.sessions.open_notification("/", message_id)
        return found.session.id if found else None

    @rule(target=answered, push=consumes(pushes), approve=st.booleans())
    def answer(self, push: Push | None, approve: bool) -> Push | None:
        if push is None:
            return None
        mechanism = self.phones[push.phone]
        body = answer_body(mechanism, push.message_id, push.jwt, approve)
        request = dm.MessageRequest(parse_message_id(body["messageId"]), body["jwt"])
        expected = self._expected(push.session)
        try:
            finished = self.run(self.services.sessions.answer("/", request))
        except BadDeviceMessage:
            assert expected != "sent", "a valid answer to a sent session was refused"
            return push
        assert expected == "sent", f"an answer to a {expected} session was accepted"
        push.session.status = "accepted" if approve else "rejected"
        self.denials = 0 if approve else self.denials + 1
        self.locked = self.locked or self.denials >= POLICY.lock_after_failures
        assert finished.status.wire == push.session.status
        return push

    @rule(push=answered)
    def replay(self, push: Push | None) -> None:
        if push is None:
            return
        mechanism = self.phones[push.phone]
        body = answer_body(mechanism, push.message_id, push.jwt, True)
        request = dm.MessageRequest(parse_message_id(body["messageId"]), body["jwt"])
        try:
            self.run(self.services.sessions.answer("/", request))
        except BadDeviceMessage:
            return
        raise AssertionError("a replayed answer was accepted")

    @rule(session=sessions)
    def cancel(self, session: Modelled) -> None:
        expected = self._expected(session)
        try:
            canceled = self.run(self.services.sessions.cancel("/", session.id))
        except Conflict:
            assert expected != "sent"
            return
        assert expected == "sent"
        assert canceled.status is SessionStatus.CANCELED
        session.status = "canceled"

    @rule(seconds=st.integers(min_value=1, max_value=10))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: bool(self.known))
    @rule()
    def sweep(self) -> None:
        due = sum(1 for s in self.known if s.status == "sent" and self._expected(s) == "expired")
        assert self.run(self.services.sessions.expire_due()) == due
        for session in self.known:
            if self._expected(session) == "expired":
                session.status = "expired"

    @rule(session=sessions)
    def relying_party_reads(self, session: Modelled) -> None:
        read = self.run(self.services.sessions.get("/", session.id))
        assert read.status.wire == self._expected(session)
        session.status = self._expected(session)  # a read settles an expiry it sees

    @invariant()
    def stored_state_matches_the_model(self) -> None:
        # Straight from the store, so that checking does not itself settle expiries.
        now = self.clock.now_ms()
        for session in self.known:
            stored = self.run(self._stored(session.id))
            assert stored.status_at(now).wire == self._expected(session), session

    async def _stored(self, session_id: str) -> PushSession:
        async with self.services.store.autocommit() as db:
            found = await db.sessions.get("/", session_id)
        assert found is not None
        return found


SessionLifecycle.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_session_lifecycle = SessionLifecycle.TestCase
