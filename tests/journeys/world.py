"""An in-memory world for the pure engine tests: it performs the effects nodes ask for on
plain dicts, so a whole tree is stepped without a store or a network (STYLE.md §3)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher

from pushgate.journeys import effects as fx
from pushgate.journeys.callbacks import Json, Shown
from pushgate.journeys.engine import (
    NO_REQUEST,
    Asking,
    Finished,
    Performing,
    Progress,
    resume,
    start,
    submit,
)
from pushgate.journeys.nodes.base import RequestInfo
from pushgate.journeys.state import JourneyState
from pushgate.journeys.tree import Tree
from tests.support import FakeClock

HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass
class User:
    password_hash: str | None
    devices: int = 0
    opted_out: set[str] = field(default_factory=set)
    locked: bool = False
    failures: int = 0
    codes: set[str] = field(default_factory=set)


@dataclass
class Push:
    username: str
    effect: fx.CreatePushSession
    number: str | None
    expires_ms: int
    state: fx.PushState = fx.PushState.PENDING


@dataclass
class Registration:
    username: str
    expires_ms: int
    completed: bool = False


@dataclass
class World:
    clock: FakeClock
    users: dict[str, User] = field(default_factory=dict)
    pushes: dict[str, Push] = field(default_factory=dict)
    registrations: dict[str, Registration] = field(default_factory=dict)
    performed: list[Any] = field(default_factory=list)
    fail_pushes: fx.PushNotSent | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def add_user(self, name: str, password: str | None = "secret", devices: int = 0) -> User:
        user = User(HASHER.hash(password) if password is not None else None, devices)
        self.users[name] = user
        return user

    def perform(self, effect: fx.Effect) -> fx.Result:
        self.performed.append(effect)
        now = self.clock.now_ms()
        match effect:
            case fx.LookUpUser(username):
                user = self.users.get(username)
                if user is None:
                    return None
                return fx.UserFacts(
                    user.password_hash, user.locked, user.devices, "push" in user.opted_out, "Acme"
                )
            case fx.CreatePushSession():
                if self.fail_pushes is not None:
                    return self.fail_pushes
                session_id = f"session-{next(self._ids)}"
                number = "42" if effect.push_type == "challenge" else None
                expires = now + effect.ttl_seconds * 1000
                self.pushes[session_id] = Push(effect.username, effect, number, expires)
                return fx.PushCreated(session_id, number, expires)
            case fx.ReadPushSession(session_id):
                push = self.pushes.get(session_id)
                if push is None:
                    return fx.PushRead(fx.PushState.GONE)
                if push.state is fx.PushState.PENDING and now >= push.expires_ms:
                    push.state = fx.PushState.EXPIRED
                return fx.PushRead(push.state)
            case fx.CancelPushSession(session_id):
                if self.pushes[session_id].state is fx.PushState.PENDING:
                    self.pushes[session_id].state = fx.PushState.GONE
                return None
            case fx.StartRegistration(username):
                message_id = f"REGISTER:{next(self._ids)}"
                self.registrations[message_id] = Registration(username, now + 120_000)
                return fx.RegistrationRead(
                    message_id,
                    f"pushauth://push/Acme:{username}?m={message_id}",
                    False,
                    now + 120_000,
                )
            case fx.ReadRegistration(username, message_id):
                found = self.registrations.get(message_id)
                if found is None:
                    return None
                uri = f"pushauth://push/Acme:{username}?m={message_id}"
                return fx.RegistrationRead(message_id, uri, found.completed, found.expires_ms)
            case fx.SaveRecoveryCodes(username, codes):
                self.users[username].codes = set(codes)
                return None
            case fx.UseRecoveryCode(username, code):
                user = self.users[username]
                if code in user.codes:
                    user.codes.remove(code)
                    return True
                return False
            case fx.MarkOptOut(username, method):
                self.users[username].opted_out.add(method)
                return None
            case fx.RecordFailure(username):
                self.users[username].failures += 1
                return None
        raise AssertionError(f"unexpected effect {effect!r}")

    def drive(
        self, progress: Progress, tree: Tree, request: RequestInfo = NO_REQUEST
    ) -> Asking | Finished:
        while isinstance(progress, Performing):
            result = self.perform(progress.effect)
            progress = resume(tree, progress.run.performed(result), self.clock.now_ms(), request)
        return progress

    def start(self, tree: Tree, realm: str = "/") -> Asking | Finished:
        return self.drive(start(tree, realm, self.clock.now_ms()), tree)

    def submit(
        self,
        tree: Tree,
        state: JourneyState,
        callbacks: object,
        request: RequestInfo = NO_REQUEST,
    ) -> Asking | Finished:
        # What the REST layer does: the state goes through its JSON form between steps.
        restored = JourneyState.from_json(state.to_json())
        return self.drive(
            submit(tree, restored, callbacks, self.clock.now_ms(), request), tree, request
        )


def answered(shown: Shown, *values: Json) -> list[Json]:
    """The step's callbacks as the SDK sends them back: each input set in order."""
    rendered = shown.to_json()
    given = iter(values)
    for callback in rendered:
        assert isinstance(callback, dict)
        inputs = callback.get("input")
        if isinstance(inputs, list) and inputs:
            entry = inputs[0]
            assert isinstance(entry, dict)
            entry["value"] = next(given)
    rest = list(given)
    assert not rest, f"more values than inputs: {rest}"
    return json.loads(json.dumps(rendered))


def types(shown: Shown) -> list[str]:
    return [c.type for c in shown.callbacks]
