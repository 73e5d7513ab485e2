"""Node unit tests: each node is a pure function of its context (STYLE.md §3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pushgate.journeys import effects as fx
from pushgate.journeys import recovery_codes
from pushgate.journeys.engine import NO_REQUEST
from pushgate.journeys.locale import LocaleError, Localized, normalize_locale, preferred_locales
from pushgate.journeys.nodes import REGISTRY
from pushgate.journeys.nodes.base import NodeContext, NodeError, Outcome, Perform, RequestInfo, Show
from pushgate.journeys.nodes.data_store_decision import password_matches
from pushgate.journeys.nodes.push_registration import js_escaped
from pushgate.journeys.state import JourneyState
from pushgate.protocol.push_payload import PushType

NOW = 1_790_000_000_000
FACTS = fx.UserFacts(None, False, 1, False, "Acme")


def run(
    type_name: str,
    config: dict[str, Any] | None = None,
    *,
    shared: dict[str, Any] | None = None,
    results: tuple[fx.Result, ...] = (),
    inputs: tuple[Any, ...] | None = None,
    request: RequestInfo = NO_REQUEST,
) -> Show | Outcome | Perform:
    node_type = REGISTRY[type_name]
    state = JourneyState("/", "T", "n", NOW, shared=shared or {})
    ctx = NodeContext("n", node_type.parse(config or {}), state, inputs, NOW, request, results)
    return node_type.process(ctx)


SENDER = "PushAuthenticationSenderNode"


def test_sender_looks_the_user_up_then_creates_one_push() -> None:
    first = run(SENDER, shared={"username": "bob"})
    assert first == Perform(fx.LookUpUser("bob"))
    second = run(SENDER, {"pushType": "BIOMETRIC"}, shared={"username": "bob"}, results=(FACTS,))
    assert isinstance(second, Perform)
    assert isinstance(second.effect, fx.CreatePushSession)
    assert second.effect.push_type is PushType.BIOMETRIC
    assert second.effect.context is None  # contextInfo is off by default
    created = fx.PushCreated("s-1", None, NOW + 120_000)
    sent = run(SENDER, shared={"username": "bob"}, results=(FACTS, created))
    assert isinstance(sent, Outcome)
    assert sent.name == "SENT"
    assert sent.state.shared["pushMessageId"] == "s-1"
    assert sent.state.shared["t"] == 120_000


def test_sender_message_is_localized_with_fallback() -> None:
    config = {"userMessage": {"en": "Hi {{user}} at {{issuer}}", "fr": "Salut {{user}}"}}

    def message(locales: tuple[str, ...]) -> str:
        step = run(
            SENDER,
            config,
            shared={"username": "bob"},
            results=(FACTS,),
            request=RequestInfo(locales=locales),
        )
        assert isinstance(step, Perform) and isinstance(step.effect, fx.CreatePushSession)
        return step.effect.message

    assert message(("fr-ca",)) == "Salut bob"  # by its language
    assert message(("de",)) == "Hi bob at Acme"  # the server's locale
    assert message(()) == "Hi bob at Acme"
    only_fr = {"userMessage": {"fr": "Salut"}}
    step = run(SENDER, only_fr, shared={"username": "bob"}, results=(FACTS,))
    assert isinstance(step, Perform) and isinstance(step.effect, fx.CreatePushSession)
    assert step.effect.message == "Login attempt from bob at Acme"  # the default


def test_sender_context_info_and_custom_payload() -> None:
    shared = {
        "username": "bob",
        "forgeRock.device.profile": {"userAgent": "UA", "location": {"latitude": 1.0}},
        "orderId": "A-17",
    }
    step = run(
        SENDER,
        {"contextInfo": True, "customPayload": ["orderId", "absent"]},
        shared=shared,
        results=(FACTS,),
        request=RequestInfo(remote_ip="192.0.2.1", user_agent="header UA"),
    )
    assert isinstance(step, Perform) and isinstance(step.effect, fx.CreatePushSession)
    assert step.effect.context == {
        "remoteIp": "192.0.2.1",
        "userAgent": "UA",
        "location": {"latitude": 1.0},
    }
    assert json.loads(step.effect.custom_payload or "") == {"orderId": "A-17"}


def test_sender_payload_over_3_kb_is_an_error() -> None:
    shared = {"username": "bob", "big": "x" * 3100}
    with pytest.raises(NodeError, match="Payload data exceed maximum accepted size"):
        run(SENDER, {"customPayload": ["big"]}, shared=shared, results=(FACTS,))


@pytest.mark.parametrize(
    ("shared", "results", "reason"),
    [
        ({}, (), "MISSING_USERNAME"),
        ({"username": "ghost"}, (None,), "MISSING_USERNAME"),
        ({"username": "bob", "pushMessageId": "open"}, (), "SENDER_ALREADY_USED"),
        (
            {"username": "bob"},
            (FACTS, fx.PushNotSent(fx.FailureReason.CTS_ERROR, "db down")),
            "CTS_ERROR",
        ),
        (
            {"username": "bob"},
            (FACTS, fx.PushNotSent(fx.FailureReason.TRANSMISSION_FAILURE, "no device")),
            "TRANSMISSION_FAILURE",
        ),
    ],
)
def test_sender_failures_are_captured_or_errors(
    shared: dict[str, Any], results: tuple[fx.Result, ...], reason: str
) -> None:
    captured = run(SENDER, {"captureFailure": True}, shared=shared, results=results)
    assert isinstance(captured, Outcome)
    assert captured.name == "FAILURE"
    assert captured.state.shared["PushAuthFailureReason"] == reason
    with pytest.raises(NodeError):
        run(SENDER, shared=shared, results=results)


def test_sender_identity_error_message() -> None:
    with pytest.raises(NodeError, match="Failed to fetch identity"):
        run(SENDER, shared={"username": "ghost"}, results=(None,))


def test_sender_without_devices() -> None:
    none = fx.UserFacts(None, False, 0, False, "Acme")
    opted = fx.UserFacts(None, False, 0, True, "Acme")
    step = run(SENDER, shared={"username": "bob"}, results=(none,))
    assert isinstance(step, Outcome) and step.name == "NOT_REGISTERED"
    assert step.state.shared["mfaMethod"] == "push"
    step = run(SENDER, shared={"username": "bob"}, results=(opted,))
    assert isinstance(step, Outcome) and step.name == "SKIPPED"
    step = run(SENDER, {"mandatory": True}, shared={"username": "bob"}, results=(opted,))
    assert isinstance(step, Outcome) and step.name == "NOT_REGISTERED"


def test_wait_for_a_tap_push_has_no_number() -> None:
    step = run("PushWaitNode", {"secondsToWait": 3, "waitingMessage": {"en": "{{time}} s"}})
    assert isinstance(step, Show)
    assert [c.type for c in step.shown.callbacks] == ["PollingWaitCallback", "ConfirmationCallback"]
    assert step.shown.callbacks[0].out("waitTime") == "3000"
    assert step.shown.callbacks[0].out("message") == "3 s"
    assert step.state.shared["n.waitUntil"] == NOW + 3000


def test_verifier_outcomes() -> None:
    shared = {"pushMessageId": "s", "pushNumberChallengeKey": "42"}
    for state, outcome in [
        (fx.PushState.APPROVED, "TRUE"),
        (fx.PushState.DENIED, "FALSE"),
        (fx.PushState.GONE, "FALSE"),
        (fx.PushState.EXPIRED, "EXPIRED"),
        (fx.PushState.PENDING, "WAITING"),
        (fx.PushState.UNDELIVERED, "FALSE"),
    ]:
        step = run("PushResultVerifierNode", shared=shared, results=(fx.PushRead(state),))
        assert isinstance(step, Outcome) and step.name == outcome
        assert ("pushMessageId" in step.state.shared) is (outcome == "WAITING")
        # Only a push nobody received says why: PingAM's capture-failure reason.
        reason = step.state.shared.get("PushAuthFailureReason")
        assert reason == ("TRANSMISSION_FAILURE" if state is fx.PushState.UNDELIVERED else None)
    with pytest.raises(NodeError):
        run("PushResultVerifierNode")


def test_options_without_get_app_and_skip() -> None:
    config = {"getApp": False, "mandatory": True, "registerDeviceLabel": {"fr": "Enregistrer"}}
    step = run("MultiFactorRegistrationOptionsNode", config, request=RequestInfo(locales=("fr",)))
    assert isinstance(step, Show)
    assert step.shown.callbacks[1].out("options") == ["Enregistrer"]
    chosen = run("MultiFactorRegistrationOptionsNode", config, inputs=(None, 0))
    assert isinstance(chosen, Outcome) and chosen.name == "registerOutcome"
    out_of_range = run("MultiFactorRegistrationOptionsNode", config, inputs=(None, 1))
    assert isinstance(out_of_range, Show)


def test_registration_of_a_user_with_a_device_succeeds_at_once() -> None:
    step = run("PushRegistrationNode", shared={"username": "bob"}, results=(FACTS,))
    assert isinstance(step, Outcome) and step.name == "successOutcome"


def test_registration_without_recovery_codes() -> None:
    shared = {"username": "bob", "n.messageId": "REGISTER:x", "n.startedAt": NOW}
    read = fx.RegistrationRead("REGISTER:x", "pushauth://push/a:b", True, NOW + 1)
    step = run(
        "PushRegistrationNode", {"generateRecoveryCodes": False}, shared=shared, results=(read,)
    )
    assert isinstance(step, Outcome) and step.name == "successOutcome"
    assert step.effects == ()
    assert "recoveryCodes" not in step.state.transient


def test_device_profile_keeps_only_what_is_needed() -> None:
    profile = {
        "identifier": "id-1",
        "metadata": {"browser": {"userAgent": "UA"}, "platform": {"fonts": ["a"] * 10}},
        "location": {"latitude": 91, "longitude": 0},
    }
    config = {"deviceLocation": True}
    step = run("DeviceProfileCollectorNode", config, inputs=(json.dumps(profile),))
    assert isinstance(step, Outcome)
    assert step.state.shared["forgeRock.device.profile"] == {
        "identifier": "id-1",
        "userAgent": "UA",
    }
    with pytest.raises(NodeError, match="maximum size"):
        run("DeviceProfileCollectorNode", {"maximumSize": 1}, inputs=("x" * 2000,))


def test_retry_limit_counts_and_resets() -> None:
    step = run("RetryLimitDecisionNode", {"retryLimit": 2}, shared={"username": "bob"})
    assert isinstance(step, Outcome) and step.name == "Retry"
    assert step.effects == (fx.RecordFailure("bob", "retry limit decision"),)
    again = run(
        "RetryLimitDecisionNode",
        {"retryLimit": 2, "incrementUserAttributeOnFailure": False},
        shared={"username": "bob", "n.retryCount": 1},
    )
    assert isinstance(again, Outcome) and again.name == "Reject" and again.effects == ()
    assert "n.retryCount" not in again.state.shared


def test_opt_out_marks_the_method() -> None:
    step = run(
        "OptOutMultiFactorAuthenticationNode", shared={"username": "bob", "mfaMethod": "push"}
    )
    assert isinstance(step, Outcome)
    assert step.effects == (fx.MarkOptOut("bob", "push"),)


def test_password_matches_argon2id_only_for_the_right_password() -> None:
    from argon2 import PasswordHasher

    stored = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert password_matches(stored, "pw")
    assert not password_matches(stored, "PW")
    assert not password_matches(None, "pw")
    assert not password_matches("not a hash", "pw")


def test_locales() -> None:
    assert normalize_locale("en_GB") == "en-gb"
    with pytest.raises(LocaleError, match="Invalid locale provided"):
        normalize_locale("english!")
    assert preferred_locales("fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5, de;q=0") == ("fr-ch", "fr", "en")
    assert Localized("d", {"en-gb": "gb"}).pick(["en-gb"]) == "gb"


def test_recovery_codes_are_distinct_alphanumeric() -> None:
    codes = recovery_codes.new_codes()
    assert len(set(codes)) == 10
    assert all(recovery_codes.is_code(c) for c in codes)
    assert recovery_codes.digest("u1", codes[0]) != recovery_codes.digest("u2", codes[0])


def test_js_escaping_of_the_qr_uri() -> None:
    assert js_escaped("pushauth://push/a:b?x=1&y='") == (
        "pushauth\\x3a\\x2f\\x2fpush\\x2fa\\x3ab\\x3fx\\x3d1\\x26y\\x3d\\x27"
    )
