"""A model of the relying-party API against the live HTTP faces (security.md §9 E7; issue 7
"Must hold"), on SQLite and PostgreSQL.

Hypothesis drives random sequences through the ASGI app: `POST /v1/push/sessions` with push
types default, challenge and code; the device's answers (the simulator's bodies on the device
endpoint: the right number or code, a wrong one, a denial, a replay); `PATCH` cancels; `GET`s
with and without `?wait=`; the FakeClock moving; expiry sweeps; the operator's unlock. After
each step the server's answers and its stored sessions agree with a small model of the
realm's policy: failureCount and `maxFailureCount`, the supersede rule, the creates-per-minute
limit with its Retry-After, the user's lock. Small limits, so that every rule is reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pushgate.accounts.model import RealmPolicy
from pushgate.api.app import create_app
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.simulator import Notification as Push
from pushgate.store import schema
from pushgate.store.engine import create_engine
from pushgate.wiring import build_services
from tests.api.helpers import REFUSED, SESSIONS, Api, Phone
from tests.support import TEST_SECRET_KEY, FakeClock, empty_database_at

T = TypeVar("T")
POLICY = RealmPolicy(
    max_failure_count=2, lock_after_failures=2, creates_per_minute=4, one_pending_per_user=True
)
WINDOW_MS = 60_000
SUPERSEDED = "superseded by a newer session"
TOO_MANY = "too many wrong answers"
STORED = {
    "PENDING": "sent",
    "APPROVED": "accepted",
    "DENIED": "rejected",
    "EXPIRED": "expired",
    "CANCELED": "canceled",
    "FAILED": "error",
}


@dataclass
class Modelled:
    id: str
    push_type: str
    expires_ms: int
    answer: str | None  # the challenge number or the code the login page shows
    status: str = "sent"
    failures: int = 0
    detail: str | None = None


class LiveApiModel(RuleBasedStateMachine):
    database_url: ClassVar[str] = ""
    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        config = Settings(
            database_url=self.database_url,
            secret_key=TEST_SECRET_KEY,
            public_url="http://testserver",
            api_key_cache_seconds=0,
        )
        self.run(empty_database_at(self.database_url))
        self.services: Services = build_services(config, self.clock)
        transport = httpx.ASGITransport(app=create_app(self.services, close_store=False))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.api = Api(self.http, self.services)
        self.engine: AsyncEngine = create_engine(self.database_url)
        self.known: list[Modelled] = []
        self.created_at: list[int] = []  # every 201, in order; the 429s are not
        self.user_failures = 0  # consecutive denials and wrong answers
        self.locked = False
        self.answered: list[dict[str, str]] = []  # bodies the server accepted once

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.http.aclose())
        self.run(self.engine.dispose())
        self.run(self.services.store.aclose())
        self.loop.close()

    @initialize()
    def setup(self) -> None:
        async def go() -> tuple[str, Phone]:
            await self.services.accounts.set_realm_policy(
                "/",
                {
                    "maxFailureCount": POLICY.max_failure_count,
                    "lockAfterFailures": POLICY.lock_after_failures,
                    "createsPerMinute": POLICY.creates_per_minute,
                },
            )
            await self.api.user("/", "alice")
            return await self.api.key(), await self.api.register("/", "alice")

        self.key, self.phone = self.run(go())

    # the model ------------------------------------------------------------------------------------

    def expected(self, session: Modelled) -> str:
        if session.status == "sent" and self.clock.now_ms() >= session.expires_ms:
            return "expired"
        return session.status

    def sent(self) -> list[Modelled]:
        return [s for s in self.known if self.expected(s) == "sent"]

    def count_failure(self) -> None:
        self.user_failures += 1
        if not self.locked and self.user_failures >= POLICY.lock_after_failures:
            self.locked = True
            for session in self.sent():  # a locked user approves nothing
                session.status, session.detail = "error", "the user is locked"

    # the relying party ----------------------------------------------------------------------------

    @rule(
        target=sessions,
        push_type=st.sampled_from([None, "default", "challenge", "code", "challenge", "code"]),
        ttl=st.integers(min_value=1, max_value=40),
        then=st.sampled_from([None, "right", "wrong", "deny"]),
    )
    def create(self, push_type: str | None, ttl: int, then: str | None) -> Any:
        """A create, and (to reach deep states in few steps) the device's answer to it."""
        session = self._create(push_type, ttl)
        answerable = session is not None and session.status == "sent"
        if answerable and then and (then != "wrong" or session.push_type != "default"):
            self._answer(then)
        return session if session is not None else multiple()

    def _create(self, push_type: str | None, ttl: int) -> Modelled | None:
        body: dict[str, object] = {"user": "alice", "secondsToExpire": ttl}
        if push_type is not None:
            body["pushType"] = push_type
        response = self.run(self.api.create_session_response(self.key, body))
        now = self.clock.now_ms()
        in_window = [at for at in self.created_at if at > now - WINDOW_MS]
        if len(in_window) >= POLICY.creates_per_minute:
            assert response.status_code == 429, response.text
            assert response.json()["code"] == "rateLimited"
            frees_at = in_window[-POLICY.creates_per_minute] + WINDOW_MS
            assert response.headers["retry-after"] == str(-(-(frees_at - now) // 1000))
            return None  # refused: no session
        assert response.status_code == 201, response.text
        self.created_at.append(now)
        made = response.json()
        kind = push_type or "default"
        assert made["pushType"] == kind
        if self.locked:
            assert (made["status"], made["notificationCount"]) == ("error", 0)
            session = Modelled(made["id"], kind, now + ttl * 1000, None, "error")
        else:
            assert (made["status"], made["notificationCount"]) == ("sent", 1)
            for older in self.sent():
                older.status, older.detail = "canceled", SUPERSEDED
            answer = made.get("challengeNumber") or made.get("code")
            assert (answer is None) == (kind == "default")
            session = Modelled(made["id"], kind, now + ttl * 1000, answer)
        self.known.append(session)
        return session

    @rule(session=sessions)
    def cancel(self, session: Modelled) -> None:
        response = self.run(self.api.cancel(self.key, session.id))
        if self.expected(session) == "sent":
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "canceled"
            session.status = "canceled"
        else:
            assert response.status_code == 409, response.text

    @rule(session=sessions, wait=st.booleans())
    def read(self, session: Modelled, wait: bool) -> None:
        expected = self.expected(session)
        # A wait on a session still sent would hold for a real second: only finished ones.
        url = f"{SESSIONS}/{session.id}" + ("?wait=5" if wait and expected != "sent" else "")
        response = self.run(self.http.get(url, headers={"X-API-Key": self.key}))
        assert response.status_code == 200, response.text
        shown = response.json()
        assert shown["status"] == expected, (shown, session)
        assert shown["failureCount"] == session.failures
        assert shown["detail"] == session.detail
        assert shown["pushType"] == session.push_type
        field = {"challenge": "challengeNumber", "code": "code"}.get(session.push_type)
        if field is not None:
            assert shown.get(field) == (session.answer if expected == "sent" else None)
        session.status = expected  # a read writes down the expiry it sees

    # the device ----------------------------------------------------------------------------------

    def _offered(self) -> tuple[Modelled, Push] | None:
        """What the device's poll offers: the one session sent, if any."""
        pushes: list[Push] = self.run(self.api.pending(self.phone))
        sent = self.sent()
        assert len(pushes) == len(sent) <= 1, (pushes, sent)  # one pending per user
        return (sent[0], pushes[0]) if sent else None

    def _answer(self, how: str) -> None:
        offered = self._offered()
        assert offered is not None  # the rules' preconditions: a session is sent
        session, push = offered
        fields: dict[str, Any] = {}
        if how == "deny":
            fields["approve"] = False
        elif session.push_type == "challenge":
            assert session.answer is not None
            picked = int(session.answer)
            if how == "wrong":
                picked = next(n for n in push.numbers if n != picked)
            fields["number"] = picked
        elif session.push_type == "code":
            assert session.answer is not None
            right = session.answer
            fields["code"] = right if how == "right" else f"{(int(right) + 1) % 10**6:06d}"
        body = self.api.answer_body(self.phone, push, **fields)
        response = self.run(self.api.post(self.phone.authenticate_url, body))
        if how == "wrong":
            assert (response.status_code, response.json()) == (400, REFUSED)
            session.failures += 1
            if session.failures >= POLICY.max_failure_count:
                session.status, session.detail = "error", TOO_MANY
            self.count_failure()
            return
        assert (response.status_code, response.content) == (200, b"{}"), response.text
        self.answered.append(body)
        if how == "deny":
            session.status = "rejected"
            self.count_failure()
        else:
            session.status = "accepted"
            self.user_failures = 0  # the lock itself stays until an operator lifts it

    @precondition(lambda self: bool(self.sent()))
    @rule()
    def approve(self) -> None:
        self._answer("right")

    @precondition(lambda self: any(s.push_type != "default" for s in self.sent()))
    @rule()
    def answer_wrong(self) -> None:
        """The wrong number or code (a default push has nothing to get wrong)."""
        self._answer("wrong")

    @precondition(lambda self: bool(self.sent()))
    @rule()
    def deny(self) -> None:
        self._answer("deny")

    @precondition(lambda self: bool(self.answered))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        body = data.draw(st.sampled_from(self.answered))
        response = self.run(self.api.post(self.phone.authenticate_url, body))
        assert (response.status_code, response.json()) == (400, REFUSED)

    # time and the operator --------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 5, 15, 61]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        due = [s for s in self.known if s.status == "sent" and self.expected(s) == "expired"]
        assert self.run(self.services.sessions.expire_due()) == len(due)
        for session in due:
            session.status = "expired"

    @precondition(lambda self: self.locked or self.user_failures > 0)
    @rule()
    def unlock(self) -> None:
        self.run(self.services.accounts.unlock_user("/", "alice"))
        self.locked, self.user_failures = False, 0

    # what is stored -------------------------------------------------------------------------------

    @invariant()
    def stored_sessions_and_user_match_the_model(self) -> None:
        if not hasattr(self, "key"):
            return
        stored, user = self.run(self._stored())
        now = self.clock.now_ms()
        assert len(stored) == len(self.known)
        for session in self.known:
            status, expires_ms, failures, detail = stored[session.id]
            shown = "expired" if status == "PENDING" and now >= expires_ms else STORED[status]
            assert shown == self.expected(session), session
            assert (failures, detail) == (session.failures, session.detail), session
        assert user == (self.user_failures, self.locked)
        self._offered()  # and the device is offered exactly the session sent

    async def _stored(self) -> tuple[dict[str, tuple[str, int, int, str | None]], tuple[int, bool]]:
        s, u = schema.sessions.c, schema.users.c
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(s.id, s.status, s.expires_ms, s.failure_count, s.detail)
            )
            sessions = {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}
            failures, locked_ms = (
                await conn.execute(
                    select(u.failure_count, u.locked_ms).where(u.username == "alice")
                )
            ).one()
        return sessions, (failures, locked_ms is not None)


def test_the_live_api_agrees_with_the_model(database_url: str) -> None:
    LiveApiModel.database_url = database_url
    run_state_machine_as_test(
        LiveApiModel,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
