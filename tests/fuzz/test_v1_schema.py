"""Property-based fuzzing of the `/v1` face with schemathesis (security.md §9 A1).

Cases come from the served OpenAPI document (`/openapi.json`): one Hypothesis strategy per
operation and generation mode (positive: valid per the schema; negative: some part invalid).
They go to the app in-process through an httpx client over ASGI (the test, the app and the
database share one event loop), and schemathesis' own checks judge every response: no 5xx,
documented status codes, documented content type and body, invalid data refused with a 4xx,
valid data not refused with a 400 (`_schema_cannot_say` lists the two deliberate refusals no
JSON Schema keyword can state).

The realm under test has a user with a registered phone and a session in every status. Half
the valid POSTs name that user, so fuzzed notifications become real pushes; ids are
generated (unknown: 404, never 5xx) half the time, else drawn from those sessions and from
one of another realm. A smaller run sends the keys schemathesis makes up (absent, empty,
random): 401 everywhere. Bugs it found are pinned by deterministic tests at the end,
along with what only `st run`'s coverage phase tries (undocumented methods).

Both backends, bounded for CI (about 25 s in all): fixed example counts, `derandomize=True`
(the same cases on every run), no example database (Hypothesis saves no examples under
`.hypothesis/`, though it still refreshes its Unicode table cache there).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from pushgate.api import openapi
from pushgate.api.app import create_app
from pushgate.api.rp_sessions import DEFAULT_TITLE
from pushgate.protocol.push_payload import MAX_CUSTOM_PAYLOAD_BYTES
from pushgate.services import Services
from pushgate.settings import Settings
from tests.api.helpers import Api
from tests.support import TEST_SECRET_KEY

Operation = tuple[str, str]  # (path, METHOD)

OPERATIONS: list[Operation] = [
    (path, method.upper())
    for path, item in openapi.build(Settings())["paths"].items()
    for method in item
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
_DOCUMENT = openapi.build(Settings())["paths"]
# An operation that takes no input has no invalid input to make up.
RUNS = [
    (operation, mode)
    for operation in OPERATIONS
    for mode in MODES
    if mode is GenerationMode.POSITIVE
    or {"parameters", "requestBody"} & set(_DOCUMENT[operation[0]][operation[1].lower()])
]
NOTIFICATION_FIELDS = ("title", "subtitle", "body", "payload")
USER = "alice"  # the user with a registered phone in the realm under test
WITH_KEY_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
KEYLESS_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    # One realm per test, shared by its examples on purpose: sessions pile up as they would.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)


def _schema_cannot_say(case: Case) -> str | None:
    """Why the server refuses this schema-valid body with a 400, if it does on purpose.

    Two rules no JSON Schema keyword can state: `integer` admits 60.0, which the server
    refuses (A4; tests/api/test_rp_sessions.py "float"), and the notification's fields
    together must fit AM's 3 KiB custom payload (A6), while each has only its own maxLength.
    """
    body = case.body
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("secondsToExpire"), float):
        return "secondsToExpire"
    note = body.get("notification") or {}
    fields = {name: note.get(name) for name in NOTIFICATION_FIELDS}
    fields["title"] = fields["title"] or DEFAULT_TITLE
    shown = {name: value for name, value in fields.items() if value is not None}
    size = len(json.dumps(shown, separators=(",", ":"), ensure_ascii=False).encode())
    return "the notification exceeds" if size > MAX_CUSTOM_PAYLOAD_BYTES else None


def _to_alice(case: Case) -> Case:
    assert isinstance(case.body, dict), case.body
    case.body = {**case.body, "user": USER}  # schemathesis revalidates an edited case
    return case


def _label(operation: Operation) -> str:
    return f"{operation[1]} {operation[0]}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # `wait` is capped at 1 s, so a case that holds a `sent` session costs at most that.
    return Settings(
        database_url=database_url,
        public_url="http://testserver",
        secret_key=TEST_SECRET_KEY,
        max_wait_seconds=1,
        vapid_private_key_file=str(tmp_path / "vapid.pem"),
    )


@dataclass(repr=False)
class Target:
    """The app with one realm to fuzz: its key, and real sessions in every status."""

    client: httpx.AsyncClient
    schema: schemathesis.BaseSchema
    backend: str  # "sqlite" or "postgres"
    key: str
    own: dict[str, str]  # status -> the id of a session of that status in the key's realm
    foreign: str  # the id of a session of another realm
    _strategies: dict[Any, st.SearchStrategy[Case]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Target({self.backend}, own={self.own}, foreign={self.foreign!r})"

    def cases(self, operation: Operation, mode: GenerationMode) -> st.SearchStrategy[Case]:
        """Cases sent with the valid key; ids generated half the time, else real ones."""
        if (operation, mode) not in self._strategies:
            self._strategies[operation, mode] = self._cases(operation, mode)
        return self._strategies[operation, mode]

    def _cases(self, operation: Operation, mode: GenerationMode) -> st.SearchStrategy[Case]:
        path, method = operation
        api_operation = self.schema[path][method]
        auth = {"X-API-Key": self.key}
        generated = api_operation.as_strategy(mode, headers=auth)
        if "{id}" not in path:
            if mode is GenerationMode.POSITIVE and method == "POST":
                # Half to the user with a phone: the fuzzed notification becomes a real push.
                return st.one_of(generated, generated.map(_to_alice))
            return generated
        real = []
        for status, session_id in [*self.own.items(), ("foreign", self.foreign)]:
            query = None
            if path.endswith("/events") and status == "sent":
                continue  # a stream of a session that waits would last until it ends
            if method == "GET" and status == "sent":
                if mode is GenerationMode.NEGATIVE:
                    continue  # only `wait` could be made invalid, and a valid one waits
                query = {"wait": 0}
            real.append(
                api_operation.as_strategy(
                    mode, headers=auth, path_parameters={"id": session_id}, query=query
                )
            )
        return st.one_of(generated, st.one_of(real))

    def keyless(self, operation: Operation) -> st.SearchStrategy[Case]:
        """Cases with the X-API-Key schemathesis makes up (absent, empty, random)."""
        if operation not in self._strategies:
            api_operation = self.schema[operation[0]][operation[1]]
            self._strategies[operation] = st.one_of(
                [api_operation.as_strategy(mode) for mode in MODES]
            )
        return self._strategies[operation]

    async def send(self, case: Case) -> httpx.Response:
        """Send `case` exactly as schemathesis' own requests transport would."""
        kwargs = case.as_transport_kwargs(base_url=str(self.client.base_url))
        unexpected = set(kwargs) - {"method", "url", "headers", "params", "cookies", "json", "data"}
        assert not unexpected, kwargs
        assert not kwargs["cookies"], kwargs  # the document declares none
        if "json" in kwargs:
            content = json.dumps(kwargs["json"], allow_nan=False).encode()
        else:
            content = kwargs.get("data")
        return await self.client.request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs["params"] or None,
            headers=kwargs["headers"],
            content=content,
        )


async def _seed(api: Api, schema: schemathesis.BaseSchema, backend: str, sessions: bool) -> Target:
    realm = await api.realm("fuzz")
    await api.allow_many_sessions(realm)  # the fuzzing creates hundreds for one user
    await api.user(realm, USER)
    key = await api.key(realm)
    phone = await api.register(realm, USER)
    own: dict[str, str] = {}
    if not sessions:
        return Target(api.client, schema, backend, key, own, foreign="")
    for status, approve in (("accepted", True), ("rejected", False)):
        own[status] = (await api.create_session(key, USER))["id"]
        answered = await api.answer(phone, await api.push(phone), approve=approve)
        assert answered.status_code == 200, answered.text
    own["canceled"] = (await api.create_session(key, USER))["id"]
    assert (await api.cancel(key, own["canceled"])).status_code == 200
    own["expired"] = (await api.create_session(key, USER, secondsToExpire=1))["id"]
    api.advance(2)
    own["error"] = (await api.create_session(key, "nobody"))["id"]
    own["sent"] = (await api.create_session(key, USER))["id"]
    for status, session_id in own.items():
        assert await api.status(key, session_id) == status
    other = await api.realm("other")
    await api.user(other, USER)
    foreign = (await api.create_session(await api.key(other), USER))["id"]
    return Target(api.client, schema, backend, key, own, foreign)


@contextlib.asynccontextmanager
async def _serving(services: Services, *, sessions: bool) -> AsyncIterator[Target]:
    # Its own client rather than the `client` fixture: an unhandled error must reach the
    # checks as the 500 a server sends, not escape from the transport as an exception.
    transport = httpx.ASGITransport(
        app=create_app(services, close_store=False), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        document = (await client.get("/openapi.json")).json()
        assert document == openapi.build(services.settings)  # what is fuzzed is what is served
        schema = schemathesis.openapi.from_dict(document)
        backend = "sqlite" if services.settings.database_url.startswith("sqlite") else "postgres"
        yield await _seed(Api(client, services), schema, backend, sessions)


@pytest.fixture
async def target(services: Services) -> AsyncIterator[Target]:
    async with _serving(services, sessions=True) as serving:
        yield serving


@pytest.fixture
async def bare(services: Services) -> AsyncIterator[Target]:
    """The same realm, user and phone, without the sessions."""
    async with _serving(services, sessions=False) as serving:
        yield serving


@pytest.mark.parametrize(
    ("operation", "mode"), RUNS, ids=[f"{_label(o)}-{m.value}" for o, m in RUNS]
)
@hypothesis.settings(FUZZ, max_examples=60)
@hypothesis.given(data=st.data())
async def test_with_a_valid_key(
    target: Target, operation: Operation, mode: GenerationMode, data: st.DataObject
) -> None:
    case = data.draw(target.cases(operation, mode), label="case")
    response = await target.send(case)
    checks = WITH_KEY_CHECKS
    refused_for = _schema_cannot_say(case) if mode is GenerationMode.POSITIVE else None
    if refused_for is not None:
        assert response.status_code == 400, (case.as_curl_command(), response.text)
        assert refused_for in response.json()["message"], response.text
        checks = [check for check in checks if check is not positive_data_acceptance]
    elif response.status_code == 422:
        # An Idempotency-Key the fuzzing used before with another body: refused on purpose.
        assert "Idempotency-Key" in response.json()["message"], response.text
        checks = [check for check in checks if check is not positive_data_acceptance]
    case.validate_response(response, checks=checks)
    session_id = (case.path_parameters or {}).get("id")
    if session_id is not None and session_id not in target.own.values():
        # Unknown, malformed or another realm's: never found, whatever else is wrong.
        assert response.status_code in (400, 404, 415), (case.as_curl_command(), response.text)
        if mode is GenerationMode.POSITIVE:
            assert response.status_code == 404, (case.as_curl_command(), response.text)


@pytest.mark.parametrize("operation", OPERATIONS, ids=_label)
@hypothesis.settings(FUZZ, max_examples=20)
@hypothesis.given(data=st.data())
async def test_without_a_valid_key(
    target: Target, operation: Operation, data: st.DataObject
) -> None:
    case = data.draw(target.keyless(operation), label="case")
    response = await target.send(case)
    case.validate_response(response, checks=KEYLESS_CHECKS)
    if not target.schema[operation[0]][operation[1]].definition.raw.get("security", True):
        assert response.status_code == 200, response.text  # public: no key needed
        return
    assert response.status_code == 401, (case.as_curl_command(), response.text)
    assert response.json()["code"] == "unauthorized"


NUL_BODIES = {
    "user": {"user": "a\x00"},
    **{name: {"user": USER, "notification": {name: "\x00"}} for name in NOTIFICATION_FIELDS},
}


async def test_a_nul_character_is_refused_not_a_server_error(bare: Target) -> None:
    """Once a 500 on PostgreSQL (its text cannot hold U+0000), found by the fuzzing above:
    every string field, both backends."""
    api_operation = bare.schema["/v1/push/sessions"]["POST"]
    statuses = {}
    for name, body in NUL_BODIES.items():
        case = api_operation.Case(body=body, headers={"X-API-Key": bare.key})
        response = await bare.send(case)
        statuses[name] = response.status_code
        if response.status_code < 500:
            case.validate_response(response, checks=WITH_KEY_CHECKS)
    assert all(status == 400 for status in statuses.values()), statuses


@pytest.mark.parametrize("path", sorted({path for path, _ in OPERATIONS}))
async def test_an_undocumented_method_is_405_with_every_allowed_one(
    bare: Target, path: str
) -> None:
    """What schemathesis' coverage phase tries (`st run`) and its strategies do not; it once
    found `Allow: GET, HEAD` without PATCH."""
    documented = {method for p, method in OPERATIONS if p == path}
    api_operation = bare.schema[path][min(documented)]
    allowed = {}
    for method in ("OPTIONS", "PUT", "DELETE"):
        case = api_operation.Case(
            method=method,
            path_parameters={"id": str(uuid.uuid4())} if "{id}" in path else None,
            headers={"X-API-Key": bare.key},
        )
        response = await bare.send(case)
        case.validate_response(response, checks=[not_a_server_error, allow_header_conformance])
        assert response.status_code == 405, response.text
        allowed[method] = {m.strip() for m in response.headers["allow"].split(",")}
    assert all(documented <= methods for methods in allowed.values()), (documented, allowed)
