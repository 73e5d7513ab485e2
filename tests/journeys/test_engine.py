"""Every path of seed 002's example journey (`PushAuthentication`), stepped by the pure engine
against an in-memory world with a fake clock: no store, no network (STYLE.md §3)."""

from __future__ import annotations

import json
import re

import pytest

from pushgate.journeys import effects as fx
from pushgate.journeys.builtin import builtin_tree
from pushgate.journeys.callbacks import InvalidCallbacks
from pushgate.journeys.engine import Asking, Finished, start, submit
from pushgate.journeys.nodes.base import RequestInfo
from pushgate.journeys.state import JourneyState
from pushgate.journeys.tree import Tree
from tests.journeys.world import World, answered, types
from tests.support import FakeClock

TREE = builtin_tree("PushAuthentication")
assert TREE is not None
PROFILE = json.dumps(
    {
        "identifier": "browser-1",
        "metadata": {"browser": {"userAgent": "Mozilla/5.0 Firefox"}},
        "location": {"latitude": 51.454514, "longitude": -2.58791},
    }
)
# The JavaScript SDK's FRRecoveryCodes (spec §8.5), as Python regexes (same semantics here).
SDK_CODES = re.compile(r'\s[\w\W]"([\w]*)\\')
SDK_DEVICE = re.compile(r"<em>(.*?)</em>")


@pytest.fixture
def world() -> World:
    w = World(FakeClock())
    w.add_user("bob", "secret", devices=1)
    w.add_user("newbie", "secret", devices=0)
    return w


def asking(progress: Asking | Finished) -> Asking:
    assert isinstance(progress, Asking), progress
    return progress


def finished(progress: Asking | Finished) -> Finished:
    assert isinstance(progress, Finished), progress
    return progress


def to_push_wait(world: World, username: str = "bob", tree: Tree = TREE) -> Asking:
    step = asking(world.start(tree))
    assert types(step.shown) == ["NameCallback", "PasswordCallback"]
    assert step.shown.header == "Sign in"
    step = asking(world.submit(tree, step.state, answered(step.shown, username, "secret")))
    assert types(step.shown) == ["DeviceProfileCallback"]
    return asking(world.submit(tree, step.state, answered(step.shown, PROFILE)))


def wait_inputs(step: Asking, index: int = 100) -> list[object]:
    values: list[object] = []
    for callback in step.shown.callbacks:
        if callback.type == "HiddenValueCallback":
            values.append(callback.out("id"))
        elif callback.type == "ConfirmationCallback":
            values.append(index)
    return answered(step.shown, *values)  # type: ignore[arg-type]


def the_push(world: World) -> tuple[str, fx.CreatePushSession]:
    (session_id, push), *_ = reversed(world.pushes.items())
    return session_id, push.effect


def test_approval_with_number_matching(world: World) -> None:
    step = to_push_wait(world)

    assert types(step.shown) == [
        "PollingWaitCallback",
        "HiddenValueCallback",
        "ConfirmationCallback",
    ]
    rendered = step.shown.to_json()
    assert rendered[0]["output"] == [  # type: ignore[index]
        {"name": "waitTime", "value": "5000"},
        {"name": "message", "value": "Tap the number [42] on the Push Notification to continue."},
    ]
    assert rendered[1]["output"] == [  # type: ignore[index]
        {"name": "value", "value": "42"},
        {"name": "id", "value": "pushChallengeNumber"},
    ]
    assert rendered[2]["input"] == [{"name": "IDToken3", "value": 100}]  # type: ignore[index]
    assert step.shown.callbacks[2].out("options") == ["Lost phone? Use a recovery code"]
    session_id, push = the_push(world)
    assert push.push_type == "challenge"
    assert push.message == "Login attempt from bob at Acme"
    assert push.ttl_seconds == 120
    assert push.context == {
        "userAgent": "Mozilla/5.0 Firefox",
        "location": {"latitude": 51.454514, "longitude": -2.58791},
    }
    assert step.state.shared["pushMessageId"] == session_id
    assert step.shown.wait_for_session == session_id

    world.pushes[session_id].state = fx.PushState.APPROVED
    world.clock.advance(5)
    done = finished(world.submit(TREE, step.state, wait_inputs(step)))
    assert done.success
    assert "pushMessageId" not in done.state.shared


def test_a_finished_session_ends_the_wait_at_once(world: World) -> None:
    step = to_push_wait(world)
    session_id, _ = the_push(world)
    world.pushes[session_id].state = fx.PushState.APPROVED
    # The REST layer held the step until the session finished: no need to wait 5 s.
    seen = RequestInfo(finished_sessions=frozenset({session_id}))
    assert finished(world.submit(TREE, step.state, wait_inputs(step), seen)).success


def test_waiting_loops_back_to_push_wait(world: World) -> None:
    step = to_push_wait(world)
    world.clock.advance(2)
    early = asking(world.submit(TREE, step.state, wait_inputs(step)))
    assert early.state.node == "push-wait"
    assert early.shown.callbacks[0].out("waitTime") == "3000"  # what is left of the wait
    world.clock.advance(3)
    again = asking(world.submit(TREE, early.state, wait_inputs(early)))
    assert again.state.node == "push-wait"  # Verifier: Waiting → Push Wait
    assert len(world.pushes) == 1


def test_expiry_sends_a_new_push(world: World) -> None:
    step = to_push_wait(world)
    first, _ = the_push(world)
    world.clock.advance(121)
    resent = asking(world.submit(TREE, step.state, wait_inputs(step)))
    second, _ = the_push(world)
    assert second != first
    assert resent.state.node == "push-wait"
    assert resent.state.shared["pushMessageId"] == second
    world.pushes[second].state = fx.PushState.APPROVED
    world.clock.advance(5)
    assert finished(world.submit(TREE, resent.state, wait_inputs(resent))).success


def test_denial_fails(world: World) -> None:
    step = to_push_wait(world)
    session_id, _ = the_push(world)
    world.pushes[session_id].state = fx.PushState.DENIED
    world.clock.advance(5)
    done = finished(world.submit(TREE, step.state, wait_inputs(step)))
    assert not done.success
    assert done.error is None


def test_wrong_password_fails_and_counts(world: World) -> None:
    step = asking(world.start(TREE))
    done = finished(world.submit(TREE, step.state, answered(step.shown, "bob", "wrong")))
    assert not done.success
    assert world.users["bob"].failures == 1
    assert not world.pushes


def test_unknown_user_fails_without_counting(world: World) -> None:
    step = asking(world.start(TREE))
    done = finished(world.submit(TREE, step.state, answered(step.shown, "nobody", "secret")))
    assert not done.success
    assert not any(isinstance(e, fx.RecordFailure) for e in world.performed)


def test_locked_user_fails_even_with_the_password(world: World) -> None:
    world.users["bob"].locked = True
    step = asking(world.start(TREE))
    done = finished(world.submit(TREE, step.state, answered(step.shown, "bob", "secret")))
    assert not done.success


def to_options(world: World) -> Asking:
    step = to_push_wait(world, "newbie")
    assert types(step.shown) == ["TextOutputCallback", "ConfirmationCallback"]
    assert step.state.shared["mfaMethod"] == "push"
    return step


def test_not_registered_offers_register_get_app_skip_opt_out(world: World) -> None:
    step = to_options(world)
    options = step.shown.callbacks[1].out("options")
    assert options == ["Register device", "Get the app", "Skip this step", "Opt-out"]


def test_skip_succeeds(world: World) -> None:
    step = to_options(world)
    assert finished(world.submit(TREE, step.state, answered(step.shown, 2))).success
    assert not world.users["newbie"].opted_out


def test_opt_out_succeeds_and_skips_push_next_time(world: World) -> None:
    step = to_options(world)
    assert finished(world.submit(TREE, step.state, answered(step.shown, 3))).success
    assert world.users["newbie"].opted_out == {"push"}
    # The next login: Push Sender → Skipped → Success, no options page.
    step = asking(world.start(TREE))
    step = asking(world.submit(TREE, step.state, answered(step.shown, "newbie", "secret")))
    assert finished(world.submit(TREE, step.state, answered(step.shown, PROFILE))).success


def test_get_app_returns_to_the_options(world: World) -> None:
    step = to_options(world)
    app = asking(world.submit(TREE, step.state, answered(step.shown, 1)))
    assert types(app.shown) == ["TextOutputCallback", "ConfirmationCallback"]
    assert "apps.apple.com" in str(app.shown.callbacks[0].out("message"))
    back = asking(world.submit(TREE, app.state, answered(app.shown, 0)))
    assert back.state.node == "mfa-registration-options"


def register(world: World) -> Asking:
    step = to_options(world)
    qr = asking(world.submit(TREE, step.state, answered(step.shown, 0)))
    assert types(qr.shown) == [
        "TextOutputCallback",
        "TextOutputCallback",
        "HiddenValueCallback",
        "PollingWaitCallback",
    ]
    return qr


def test_registration_shows_the_qr_code_as_am_does(world: World) -> None:
    qr = register(world)
    rendered = qr.shown.to_json()
    message, script, hidden, polling = rendered
    assert message["output"][1] == {"name": "messageType", "value": "0"}  # type: ignore[index]
    assert script["output"][1] == {"name": "messageType", "value": "4"}  # type: ignore[index]
    assert str(qr.shown.callbacks[1].out("message")).startswith(
        "window.QRCodeReader.createCode({ id: 'callback_0', text: 'pushauth\\x3a\\x2f\\x2f"
    )
    assert qr.shown.callbacks[2].out("id") == "mfaDeviceRegistration"
    assert str(qr.shown.callbacks[2].out("value")).startswith("pushauth://push/Acme:newbie")
    assert hidden["input"] == [{"name": "IDToken3", "value": "mfaDeviceRegistration"}]  # type: ignore[index]
    assert polling["output"][0] == {"name": "waitTime", "value": "2000"}  # type: ignore[index]
    # The URI carries the device secret: it is never kept in the state.
    assert "pushauth" not in qr.state.to_json()


def test_registration_with_recovery_codes_then_push(world: World) -> None:
    qr = register(world)
    world.clock.advance(2)
    qr = asking(world.submit(TREE, qr.state, answered(qr.shown, "mfaDeviceRegistration")))
    assert qr.state.node == "push-registration"
    (message_id,) = world.registrations
    world.registrations[message_id].completed = True
    world.users["newbie"].devices = 1
    world.clock.advance(2)
    display = asking(world.submit(TREE, qr.state, answered(qr.shown, "mfaDeviceRegistration")))

    assert types(display.shown) == ["TextOutputCallback"]
    assert display.shown.callbacks[0].out("messageType") == "4"
    script = str(display.shown.callbacks[0].out("message"))
    assert "Recovery Codes" in script
    codes = SDK_CODES.findall(script)
    assert len(codes) == 10
    assert all(re.fullmatch(r"[0-9A-Za-z]{10}", c) for c in codes)
    assert set(codes) == world.users["newbie"].codes
    assert SDK_DEVICE.findall(script) == ["Push Device"]
    assert "recoveryCodes" not in display.state.to_json()  # transient: this step only

    wait = asking(world.submit(TREE, display.state, answered(display.shown)))
    assert wait.state.node == "push-wait"
    assert the_push(world)[1].username == "newbie"


def test_registration_times_out_back_to_the_options(world: World) -> None:
    qr = register(world)
    world.clock.advance(61)
    back = asking(world.submit(TREE, qr.state, answered(qr.shown, "mfaDeviceRegistration")))
    assert back.state.node == "mfa-registration-options"


def test_registration_gone_fails(world: World) -> None:
    qr = register(world)
    world.registrations.clear()
    done = finished(world.submit(TREE, qr.state, answered(qr.shown, "mfaDeviceRegistration")))
    assert not done.success


def to_recovery(world: World, codes: set[str] | None = None) -> Asking:
    world.users["bob"].codes = {"AAAAAAAAAA", "BBBBBBBBBB"} if codes is None else codes
    step = to_push_wait(world)
    exited = asking(world.submit(TREE, step.state, wait_inputs(step, index=0)))
    assert types(exited.shown) == ["NameCallback"]
    assert exited.shown.callbacks[0].out("prompt") == "Recovery Code"
    return exited


def test_exit_to_a_recovery_code(world: World) -> None:
    step = to_recovery(world)
    session_id, _ = the_push(world)
    assert world.pushes[session_id].state is fx.PushState.GONE  # the lost phone's push
    assert finished(world.submit(TREE, step.state, answered(step.shown, "AAAAAAAAAA"))).success
    assert world.users["bob"].codes == {"BBBBBBBBBB"}


def test_a_recovery_code_works_once(world: World) -> None:
    step = to_recovery(world)
    assert finished(world.submit(TREE, step.state, answered(step.shown, "AAAAAAAAAA"))).success
    step = to_recovery(world, codes=world.users["bob"].codes)
    again = asking(world.submit(TREE, step.state, answered(step.shown, "AAAAAAAAAA")))
    assert again.state.node == "recovery-code-collector"  # False → Retry → the collector


def test_retry_limit_rejects_after_three_attempts(world: World) -> None:
    step = to_recovery(world)
    for _ in range(2):
        step = asking(world.submit(TREE, step.state, answered(step.shown, "WRONGWRONG")))
        assert types(step.shown) == ["NameCallback"]
    done = finished(world.submit(TREE, step.state, answered(step.shown, "WRONGWRONG")))
    assert not done.success
    assert world.users["bob"].failures == 3  # each pass counts toward the user's lock


@pytest.mark.parametrize(
    ("callbacks", "why"),
    [
        ([], "expected 2 callbacks, got 0"),
        ("nope", "callbacks must be a list"),
        (
            [
                {"type": "NameCallback", "input": [{"name": "IDToken1", "value": "bob"}]},
                {"type": "NameCallback", "input": [{"name": "IDToken2", "value": "x"}]},
            ],
            "callback 2 must be a PasswordCallback",
        ),
        (
            [
                {"type": "NameCallback", "input": [{"name": "IDToken2", "value": "bob"}]},
                {"type": "PasswordCallback", "input": [{"name": "IDToken2", "value": "x"}]},
            ],
            "its input is IDToken1",
        ),
        (
            [
                {"type": "NameCallback", "input": [{"name": "IDToken1", "value": 7}]},
                {"type": "PasswordCallback", "input": [{"name": "IDToken2", "value": "x"}]},
            ],
            "IDToken1 (NameCallback) must be a string",
        ),
        (
            [
                {"type": "NameCallback"},
                {"type": "PasswordCallback", "input": [{"name": "IDToken2", "value": "x"}]},
            ],
            "must have one input",
        ),
    ],
)
def test_wrong_callbacks_are_refused_and_change_nothing(
    world: World, callbacks: object, why: str
) -> None:
    step = asking(world.start(TREE))
    before = step.state.to_json()
    performed = len(world.performed)
    with pytest.raises(InvalidCallbacks, match=re.escape(why)):
        submit(TREE, step.state, callbacks, world.clock.now_ms())
    assert step.state.to_json() == before
    assert len(world.performed) == performed
    # The same state still takes the right answer.
    assert isinstance(world.submit(TREE, step.state, answered(step.shown, "bob", "secret")), Asking)


@pytest.mark.parametrize("value", ["0", True, None, 1.5])
def test_a_confirmation_takes_only_an_integer(world: World, value: object) -> None:
    step = to_push_wait(world)
    sent = wait_inputs(step)
    sent[2]["input"][0]["value"] = value  # type: ignore[index]
    with pytest.raises(InvalidCallbacks, match=r"IDToken3 .* must be an integer"):
        submit(TREE, step.state, sent, world.clock.now_ms())


def test_state_round_trips_small_and_without_secrets(world: World) -> None:
    step = asking(world.start(TREE))
    step = asking(world.submit(TREE, step.state, answered(step.shown, "bob", "secret")))
    text = step.state.to_json()
    assert "secret" not in text  # the password is transient
    assert JourneyState.from_json(text) == step.state
    wait = to_push_wait(world)
    assert len(wait.state.to_json()) < 1024


def test_a_state_for_another_tree_is_refused(world: World) -> None:
    step = asking(world.start(TREE))
    other = JourneyState("/", "Other", step.state.node, 0, shown=step.state.shown)
    with pytest.raises(InvalidCallbacks):
        submit(TREE, other, answered(step.shown, "bob", "x"), world.clock.now_ms())


def test_unreadable_state_is_refused() -> None:
    for text in ("", "[]", '{"v": 2}', '{"v": 1, "r": "/"}'):
        with pytest.raises(InvalidCallbacks):
            JourneyState.from_json(text)


def test_start_is_pure(world: World) -> None:
    progress = start(TREE, "/", world.clock.now_ms())
    assert isinstance(progress, Asking)  # the page needs no effect to show
    assert world.performed == []


def test_a_tree_looping_without_callbacks_fails_instead_of_spinning(world: World) -> None:
    from pushgate.journeys.tree import load_tree

    looping = load_tree(
        {
            "_id": "Loop",
            "entryNodeId": "a",
            "nodes": {
                "a": {
                    "nodeType": "RetryLimitDecisionNode",
                    "config": {"retryLimit": 100, "incrementUserAttributeOnFailure": False},
                    "connections": {"Retry": "b", "Reject": "b"},
                },
                "b": {
                    "nodeType": "RetryLimitDecisionNode",
                    "config": {"retryLimit": 100, "incrementUserAttributeOnFailure": False},
                    "connections": {"Retry": "a", "Reject": "a"},
                },
            },
        }
    )
    done = finished(world.start(looping))
    assert not done.success
    assert done.error == "the journey loops without showing anything"
