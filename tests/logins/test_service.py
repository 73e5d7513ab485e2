"""Login sessions (logins/service.py) on both stores: opened for a user, found by token
only, closed once, expired by time; journey step ids consumed once; expired rows purged."""

from __future__ import annotations

import pytest

from pushgate.errors import NotFound
from pushgate.logins.model import Login
from pushgate.logins.service import LoginService
from pushgate.services import Services
from tests.api.helpers import audit_events, count_rows
from tests.support import FakeClock

LIFETIME = 7200


@pytest.fixture
def logins(services: Services) -> LoginService:
    return services.logins


@pytest.fixture
async def user_id(services: Services) -> str:
    return (await services.accounts.create_user("/", "alice", None)).id


async def test_open_validate_close(
    logins: LoginService, services: Services, clock: FakeClock, user_id: str
) -> None:
    token, login = await logins.open("root", "alice", "PushAuthentication")
    now = clock.now_ms()
    assert login == Login("/", user_id, "alice", "PushAuthentication", now, now + LIFETIME * 1000)
    assert await logins.validate(token) == login
    assert await logins.close(token) is True
    assert await logins.validate(token) is None
    assert await logins.close(token) is False
    assert await audit_events(services, user_id) == ["user.created", "login.opened", "login.closed"]


async def test_tokens_are_random_and_distinct(logins: LoginService, user_id: str) -> None:
    tokens = {(await logins.open("/", "alice", "T"))[0] for _ in range(5)}
    assert len(tokens) == 5 and all(len(t) >= 43 for t in tokens)


async def test_expiry(logins: LoginService, clock: FakeClock, user_id: str) -> None:
    token, _ = await logins.open("/", "alice", "T")
    clock.advance(LIFETIME - 1)
    assert await logins.validate(token) is not None
    clock.advance(1)
    assert await logins.validate(token) is None
    assert await logins.close(token) is False  # an expired session is not open


@pytest.mark.parametrize("token", ["", "nope", "x" * 500])
async def test_unknown_tokens(logins: LoginService, user_id: str, token: str) -> None:
    await logins.open("/", "alice", "T")
    assert await logins.validate(token) is None
    assert await logins.close(token) is False


async def test_no_such_user(logins: LoginService, services: Services) -> None:
    with pytest.raises(NotFound):
        await logins.open("/", "nobody", "T")
    assert await count_rows(services, "login_sessions") == 0


async def test_a_step_id_is_consumed_once(logins: LoginService, clock: FakeClock) -> None:
    expires = clock.now_ms() + 60_000
    assert await logins.consume_step("a" * 32, expires) is True
    assert await logins.consume_step("a" * 32, expires) is False
    assert await logins.consume_step("b" * 32, expires) is True


async def test_purge_removes_only_expired_rows(
    logins: LoginService, services: Services, clock: FakeClock, user_id: str
) -> None:
    await logins.open("/", "alice", "T")
    await logins.consume_step("a" * 32, clock.now_ms() + 1000)
    clock.advance(LIFETIME)
    fresh, _ = await logins.open("/", "alice", "T")
    await logins.consume_step("b" * 32, clock.now_ms() + 1000)
    assert await logins.purge() == 2
    assert await count_rows(services, "login_sessions") == 1
    assert await count_rows(services, "journey_steps") == 1
    assert await logins.validate(fresh) is not None
