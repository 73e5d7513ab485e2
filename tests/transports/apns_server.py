"""A loopback APNs provider API: HTTP/2 over TLS (ALPN h2) on the `h2` state machine and
asyncio streams, in the test's own event loop.

It checks what Apple checks (the ES256 provider token against the key's public half, `kid`,
`iss`, its age on the test's clock; the headers; the path), records every request, and answers
what the test scripts: a status and reason, a GOAWAY, or nothing at all (a hung stream). Like
APNs it allows one stream per connection until a request with a valid token succeeds, then
1000 (H5).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import FakeClock
from tests.transports.certs import LoopbackPki


@dataclass(frozen=True)
class Answer:
    """What the server does with one request: a status (+ reason, timestamp, headers), a
    GOAWAY frame carrying `{"reason": ...}` that either refuses the stream (`refused`: the
    client may safely send it again on a new connection) or follows it unanswered, or `hang`
    (never answer)."""

    status: int = 200
    reason: str = ""
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    goaway: bool = False
    refused: bool = False
    hang: bool = False


@dataclass
class Received:
    connection: int
    stream_id: int
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.body)
        return document

    @property
    def token(self) -> str:
        return self.headers["authorization"].removeprefix("bearer ")


@dataclass
class ApnsServer:
    public_key: ec.EllipticCurvePublicKey
    key_id: str
    team_id: str
    topic: str
    clock: FakeClock
    port: int = 0
    # Answers for the next requests, in order; once empty every valid request gets 200.
    script: list[Answer] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    # The most streams one connection ever had open at once.
    peak_streams: int = 0
    protocol_errors: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def distinct_tokens(self) -> list[str]:
        return list(dict.fromkeys(r.token for r in self.received))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        number = self.connections
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        # Until a request with a valid token succeeds, one stream (push-transports.md §1).
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1},
        )
        conn.initiate_connection()
        authenticated = False
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            writer.write(conn.data_to_send())
            while data := await reader.read(65536):
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.protocol_errors += 1
                    writer.write(conn.data_to_send())
                    break
                closing = False
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = (dict(event.headers or []), bytearray())
                        self.peak_streams = max(self.peak_streams, conn.open_inbound_streams)
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data or b"")
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        received = Received(number, event.stream_id, headers, bytes(body))
                        self.received.append(received)
                        answer = self._answer(received)
                        if answer.hang:
                            continue
                        if answer.goaway:
                            last = event.stream_id
                            if answer.refused:  # the stream before it was the last one taken
                                last = max(0, event.stream_id - 2)
                            conn.close_connection(
                                error_code=h2.errors.ErrorCodes.NO_ERROR,
                                additional_data=json.dumps({"reason": answer.reason}).encode(),
                                last_stream_id=last,
                            )
                            closing = True
                            break
                        self._respond(conn, event.stream_id, answer)
                        if answer.status == 200 and not authenticated:
                            authenticated = True
                            conn.update_settings(
                                {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000}
                            )
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        closing = True
                writer.write(conn.data_to_send())
                await writer.drain()
                if closing:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)
            self._writers.discard(writer)

    def _answer(self, received: Received) -> Answer:
        problem = self._check(received)
        if problem is not None:
            return problem
        return self.script.pop(0) if self.script else Answer()

    def _check(self, received: Received) -> Answer | None:
        headers = received.headers
        if headers.get(":method") != "POST":
            return Answer(405, "MethodNotAllowed")
        path = headers.get(":path", "")
        if not re.fullmatch(r"/3/device/[0-9a-fA-F]+", path):
            return Answer(404, "BadPath")
        token = headers.get("authorization", "")
        if not token.startswith("bearer "):
            return Answer(403, "MissingProviderToken")
        try:
            header = jwt.get_unverified_header(token.removeprefix("bearer "))
            claims = jwt.decode(
                token.removeprefix("bearer "),
                self.public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            return Answer(403, "InvalidProviderToken")
        if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
            return Answer(403, "InvalidProviderToken")
        if self.clock.now_ms() // 1000 - int(claims["iat"]) > 3600:
            return Answer(403, "ExpiredProviderToken")
        if headers.get("apns-topic") != self.topic:
            return Answer(400, "BadTopic" if "apns-topic" in headers else "MissingTopic")
        push_type = headers.get("apns-push-type")
        priority = headers.get("apns-priority")
        if push_type not in ("alert", "background"):
            return Answer(400, "InvalidPushType")
        if (push_type, priority) not in (("alert", "10"), ("background", "5")):
            return Answer(400, "BadPriority")
        try:
            uuid.UUID(headers.get("apns-id", ""))
        except ValueError:
            return Answer(400, "BadMessageId")
        if not headers.get("apns-expiration", "").isdigit():
            return Answer(400, "BadExpirationDate")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return Answer(400, "BadCollapseId")
        if not received.body:
            return Answer(400, "PayloadEmpty")
        if len(received.body) > 4096:
            return Answer(413, "PayloadTooLarge")
        return None

    def _respond(self, conn: h2.connection.H2Connection, stream_id: int, answer: Answer) -> None:
        request_id = self.received[-1].headers.get("apns-id", str(uuid.uuid4()))
        headers = [(":status", str(answer.status)), ("apns-id", request_id), *answer.headers]
        if answer.status == 200:
            conn.send_headers(stream_id, headers, end_stream=True)
            return
        error: dict[str, object] = {"reason": answer.reason}
        if answer.timestamp_ms is not None:
            error["timestamp"] = answer.timestamp_ms
        body = json.dumps(error).encode()
        conn.send_headers(stream_id, [*headers, ("content-type", "application/json")])
        conn.send_data(stream_id, body, end_stream=True)

    async def stop_connections(self) -> None:
        # Abort rather than cancel: each handler then ends by itself, on a closed socket.
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)


@contextlib.asynccontextmanager
async def apns_serving(server: ApnsServer, pki: LoopbackPki) -> AsyncIterator[ApnsServer]:
    listener = await asyncio.start_server(
        server.handle, "127.0.0.1", 0, ssl=pki.server_context(["h2"])
    )
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await server.stop_connections()
        await listener.wait_closed()
