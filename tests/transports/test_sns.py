"""The SNS transport with real boto3 calls: against moto's server on loopback (registration,
publish and its envelope, disabled and deleted endpoints), and against a small loopback SNS
that answers the Query protocol's errors moto cannot be made to give (throttling, 5xx,
InvalidParameter)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.sns import sns_backends
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pushgate.errors import BadRequest, ConfigError, Unavailable
from pushgate.settings import Settings, load_settings
from pushgate.transports.base import (
    Delivered,
    PushRequest,
    Rejected,
    RetryAfter,
    TokenGone,
    apns_payload,
)
from pushgate.transports.sns import SnsConfig, SnsTransport, envelope
from tests.api.live import serving
from tests.support import FakeClock

REGION = "us-east-1"
KEYS = {"access_key_id": "testing", "secret_access_key": "testing"}
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ1IjoieCJ9.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def applications(moto_url: str) -> dict[str, str]:
    """The platform applications an operator made in AWS: one per provider, as AM's config."""
    client = boto3.client(
        "sns",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    made = {}
    for name, platform in (("apple", "APNS"), ("google", "GCM")):
        answer = client.create_platform_application(
            Name=f"pushgate-{name}", Platform=platform, Attributes={"PlatformCredential": "x"}
        )
        made[name] = answer["PlatformApplicationArn"]
    client.close()
    return made


@pytest.fixture
async def sns(
    moto_url: str, applications: dict[str, str], clock: FakeClock
) -> AsyncIterator[SnsTransport]:
    config = SnsConfig(
        REGION,
        endpoint_url=moto_url,
        apple_arn=applications["apple"],
        google_arn=applications["google"],
        **KEYS,
    )
    transport = SnsTransport(config, clock)
    yield transport
    await transport.aclose()


def sent_to(arn: str) -> list[dict[str, Any]]:
    """What moto's endpoint received, each message's envelope decoded."""
    endpoint = sns_backends[DEFAULT_ACCOUNT_ID][REGION].platform_endpoints[arn]
    return [json.loads(message) for message in endpoint.messages.values()]


def prompt(token: str, clock: FakeClock, **changes: Any) -> PushRequest:
    fields: dict[str, Any] = {
        "token": token,
        "message_id": f"AUTHENTICATE:{uuid.uuid4()}{clock.now_ms()}",
        "expires_ms": clock.now_ms() + 120_000,
        "collapse_id": "session-1",
        "jwt": JWT,
        "body": "Login attempt from alice at pushgate",
        "push_type": "challenge",
        "extras": {"messageType": "mtoken.operationInit", "operationId": "session-1"},
    }
    fields.update(changes)
    return PushRequest(**fields)


def app_token() -> str:
    return uuid.uuid4().hex * 2


# --- registration: AM's CreatePlatformEndpoint ----------------------------------------------


async def test_registration_makes_an_endpoint_under_the_transports_application(
    sns: SnsTransport, applications: dict[str, str]
) -> None:
    google = await sns.register("gcm", app_token())
    apple = await sns.register("apns", app_token())
    assert google is not None and apple is not None
    assert google.startswith(applications["google"].replace(":app/", ":endpoint/"))
    assert apple.startswith(applications["apple"].replace(":app/", ":endpoint/"))


async def test_registering_a_token_again_gives_the_same_endpoint(sns: SnsTransport) -> None:
    token = app_token()
    assert await sns.register("gcm", token) == await sns.register("gcm", token)


async def test_a_refresh_brings_a_disabled_endpoint_back(
    sns: SnsTransport, moto_url: str, clock: FakeClock
) -> None:
    token = app_token()
    arn = await sns.register("gcm", token)
    assert arn is not None
    _client(moto_url).set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "false"})
    assert isinstance(await sns.send(prompt(arn, clock)), TokenGone)
    # The app registers (or refreshes) again with its token: the same endpoint, enabled.
    assert await sns.register("gcm", token) == arn
    attributes = _client(moto_url).get_endpoint_attributes(EndpointArn=arn)["Attributes"]
    assert attributes == {"Token": token, "Enabled": "true"}
    assert isinstance(await sns.send(prompt(arn, clock)), Delivered)


async def test_no_application_for_the_transport_means_polling(
    moto_url: str, applications: dict[str, str], clock: FakeClock
) -> None:
    config = SnsConfig(REGION, endpoint_url=moto_url, google_arn=applications["google"], **KEYS)
    transport = SnsTransport(config, clock)
    try:
        assert await transport.register("apns", app_token()) is None
    finally:
        await transport.aclose()


def _client(moto_url: str) -> Any:
    return boto3.client(
        "sns",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


# --- publish: AM's envelope -----------------------------------------------------------------


async def test_a_prompt_is_published_in_ams_envelope(sns: SnsTransport, clock: FakeClock) -> None:
    arn = await sns.register("gcm", app_token())
    assert arn is not None
    request = prompt(arn, clock)
    result = await sns.send(request)
    assert isinstance(result, Delivered) and result.provider_id
    [message] = sent_to(arn)
    assert set(message) == {"default", "GCM", "APNS", "APNS_SANDBOX"}
    assert message["default"] == "Login attempt from alice at pushgate"
    # forgerock-push.md §5.2: GCM is data-only, the JWT and the message id as AM sends them.
    assert json.loads(message["GCM"]) == {
        "priority": "high",
        "data": {
            "message": JWT,
            "messageId": request.message_id,
            "messageType": "mtoken.operationInit",
            "operationId": "session-1",
        },
    }
    apns = json.loads(message["APNS"])
    assert apns == apns_payload(request)
    assert apns["aps"]["data"] == JWT and apns["aps"]["messageId"] == request.message_id
    assert apns["aps"]["category"] == "authentication_challenge"
    assert message["APNS_SANDBOX"] == message["APNS"]


async def test_a_silent_push_is_data_only_with_a_background_aps(
    sns: SnsTransport, clock: FakeClock
) -> None:
    arn = await sns.register("apns", app_token())
    assert arn is not None
    extras = {
        "messageType": "mtoken.operationFinished",
        "mtokenOperationResult": "operation.timeout",
    }
    assert isinstance(
        await sns.send(prompt(arn, clock, jwt=None, body="", extras=extras)), Delivered
    )
    [message] = sent_to(arn)
    assert json.loads(message["GCM"]) == {"priority": "normal", "data": extras}
    assert json.loads(message["APNS"]) == {**extras, "aps": {"content-available": 1}}
    assert message["default"] == "mtoken.operationFinished"


async def test_a_deleted_endpoint_is_gone(
    sns: SnsTransport, moto_url: str, clock: FakeClock
) -> None:
    arn = await sns.register("gcm", app_token())
    assert arn is not None
    _client(moto_url).delete_endpoint(EndpointArn=arn)
    result = await sns.send(prompt(arn, clock))
    assert isinstance(result, TokenGone) and "NotFound" in result.reason


async def test_a_disabled_endpoint_is_gone(
    sns: SnsTransport, moto_url: str, clock: FakeClock
) -> None:
    arn = await sns.register("gcm", app_token())
    assert arn is not None
    _client(moto_url).set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "false"})
    result = await sns.send(prompt(arn, clock))
    assert isinstance(result, TokenGone) and "EndpointDisabled" in result.reason
    assert sent_to(arn) == []


async def test_nothing_is_published_after_the_deadline_or_over_4096_bytes(
    sns: SnsTransport, clock: FakeClock
) -> None:
    arn = await sns.register("gcm", app_token())
    assert arn is not None
    late = prompt(arn, clock)
    clock.advance(120)
    assert await sns.send(late) == Rejected("the session's deadline has passed")
    large = prompt(arn, clock, extras={"pad": "x" * 4000})
    result = await sns.send(large)
    assert isinstance(result, Rejected) and "payload too large" in result.reason
    assert sent_to(arn) == []


async def test_a_token_that_is_no_endpoint_arn_is_gone(sns: SnsTransport, clock: FakeClock) -> None:
    assert isinstance(await sns.send(prompt(app_token(), clock)), TokenGone)


def test_the_envelope_text_falls_back_to_the_title_and_ams_default() -> None:
    arn = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1"
    base = {"token": arn, "message_id": "m", "expires_ms": 1, "collapse_id": "c"}
    assert envelope(PushRequest(**base, jwt=JWT, title="Approve?", body="b"))["default"] == (
        "Approve?"
    )
    assert envelope(PushRequest(**base, jwt=JWT))["default"] == "Sign-in request"


# --- the errors moto does not give: a loopback SNS speaking the Query protocol ---------------


class FaultySns:
    """Answers every call with one SNS error (or a Publish success), and keeps the form."""

    def __init__(self) -> None:
        self.answer: tuple[int, str, str] = (200, "", "")  # status, code, message
        self.calls: list[dict[str, list[str]]] = []

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self._call, methods=["POST"])])

    async def _call(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        self.calls.append(form)
        status, code, message = self.answer
        if status == 200:
            body = (
                '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
                "<PublishResult><MessageId>m-1</MessageId></PublishResult>"
                "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
                "</PublishResponse>"
            )
            return Response(body, 200, media_type="text/xml")
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>r-1</RequestId></ErrorResponse>"
        )
        return Response(body, status, media_type="text/xml")


ARN = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/pushgate-google/1"
APP = "arn:aws:sns:us-east-1:123456789012:app/GCM/pushgate-google"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "Throttling", RetryAfter),
        (400, "KMSThrottling", RetryAfter),
        (500, "InternalError", RetryAfter),
        (503, "ServiceUnavailable", RetryAfter),
        (400, "InvalidParameter", Rejected),
        (403, "AuthorizationError", Rejected),
        (400, "EndpointDisabled", TokenGone),
        (404, "NotFound", TokenGone),
    ],
)
async def test_each_sns_error_of_publish(
    clock: FakeClock, status: int, code: str, expected: type
) -> None:
    faulty = FaultySns()
    faulty.answer = (status, code, "something happened")
    async with serving(faulty.app()) as port:
        transport = SnsTransport(
            SnsConfig(REGION, endpoint_url=f"http://127.0.0.1:{port}", google_arn=APP, **KEYS),
            clock,
        )
        try:
            result = await transport.send(prompt(ARN, clock))
        finally:
            await transport.aclose()
    assert isinstance(result, expected)
    assert code in result.reason  # type: ignore[attr-defined]
    assert len(faulty.calls) == 1  # no retry inside boto3: the outbox retries, with backoff


async def test_publish_asks_sns_for_the_deadline_and_the_push_type(clock: FakeClock) -> None:
    faulty = FaultySns()
    async with serving(faulty.app()) as port:
        transport = SnsTransport(
            SnsConfig(REGION, endpoint_url=f"http://127.0.0.1:{port}", google_arn=APP, **KEYS),
            clock,
        )
        try:
            clock.advance(0)
            result = await transport.send(prompt(ARN, clock, expires_ms=clock.now_ms() + 90_500))
        finally:
            await transport.aclose()
    assert result == Delivered("m-1")
    [form] = faulty.calls
    assert form["Action"] == ["Publish"] and form["TargetArn"] == [ARN]
    assert form["MessageStructure"] == ["json"]
    attributes = {
        form[f"MessageAttributes.entry.{i}.Name"][0]: form[
            f"MessageAttributes.entry.{i}.Value.StringValue"
        ][0]
        for i in range(1, 7)
    }
    assert attributes == {
        "AWS.SNS.MOBILE.APNS.TTL": "90",
        "AWS.SNS.MOBILE.APNS_SANDBOX.TTL": "90",
        "AWS.SNS.MOBILE.FCM.TTL": "90",
        "AWS.SNS.MOBILE.APNS.PUSH_TYPE": "alert",
        "AWS.SNS.MOBILE.APNS.PRIORITY": "10",
        "AWS.SNS.MOBILE.APNS.COLLAPSE_ID": "session-1",
    }


async def test_a_registration_sns_refuses_or_cannot_answer(clock: FakeClock) -> None:
    faulty = FaultySns()
    async with serving(faulty.app()) as port:
        transport = SnsTransport(
            SnsConfig(REGION, endpoint_url=f"http://127.0.0.1:{port}", google_arn=APP, **KEYS),
            clock,
        )
        try:
            faulty.answer = (400, "InvalidParameter", "Invalid parameter: Token")
            with pytest.raises(BadRequest, match="the push token was refused"):
                await transport.register("gcm", "bad token")
            faulty.answer = (500, "InternalError", "oops")
            with pytest.raises(Unavailable):
                await transport.register("gcm", app_token())
        finally:
            await transport.aclose()


async def test_sns_that_cannot_be_reached_is_retried(clock: FakeClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = SnsTransport(
        SnsConfig(REGION, endpoint_url=f"http://127.0.0.1:{port}", google_arn=APP, **KEYS), clock
    )
    try:
        result = await transport.send(prompt(ARN, clock))
    finally:
        await transport.aclose()
    assert isinstance(result, RetryAfter) and result.seconds is None


# --- settings -------------------------------------------------------------------------------


def test_sns_is_configured_by_its_application_arns() -> None:
    assert SnsConfig.from_settings(Settings()) is None
    config = SnsConfig.from_settings(Settings(sns_google_arn=APP, sns_region="eu-west-1"))
    assert config is not None
    assert (config.region, config.google_arn, config.access_key_id) == ("eu-west-1", APP, "")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PUSHGATE_SNS_REGION": "Mars"}, "PUSHGATE_SNS_REGION must be an AWS region name"),
        ({"PUSHGATE_SNS_GOOGLE_ARN": "gcm"}, "PUSHGATE_SNS_GOOGLE_ARN must be empty or an SNS"),
        ({"PUSHGATE_SNS_ENDPOINT_URL": "sns.local"}, "PUSHGATE_SNS_ENDPOINT_URL must be empty"),
        ({"PUSHGATE_SNS_ACCESS_KEY_ID": "AKIA"}, "PUSHGATE_SNS_ACCESS_KEY_ID and PUSHGATE_SNS_SEC"),
    ],
)
def test_a_bad_sns_setting_is_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_the_secret_access_key_is_never_shown() -> None:
    settings = Settings(sns_access_key_id="AKIA", sns_secret_access_key="very-secret")
    assert "very-secret" not in repr(settings)
