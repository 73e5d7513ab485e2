"""`/openapi.json` describes exactly the `/v1` face, with UnifyID's names and error shape."""

from __future__ import annotations

from typing import Any

import httpx

UNIFYID_FIELDS = {"id", "status", "notificationCount", "detail", "expiresAt", "updatedAt"}
SESSION_FIELDS = {
    *UNIFYID_FIELDS,
    *("pushType", "failureCount", "denyReason", "challengeNumber", "code"),
    *("context", "operationId", "operation"),
}
STATUS_ENUM = {"sent", "accepted", "rejected", "expired", "canceled", "error"}
ERROR_CODES = {
    *("invalidRequest", "badRequest", "unauthorized", "forbidden", "rateLimited"),
    "internalError",
}
SESSIONS = "/v1/push/sessions"


def _resolve(schema: dict[str, Any], ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_schema.get("$ref")
    if ref is None:
        return ref_or_schema
    name = ref.rsplit("/", 1)[1]
    resolved: dict[str, Any] = schema["components"]["schemas"][name]
    return resolved


def _enum(schema: dict[str, Any], prop: dict[str, Any]) -> set[str]:
    prop = _resolve(schema, prop)
    if "enum" in prop:
        return set(prop["enum"])
    if "const" in prop:
        return {prop["const"]}
    return {v for option in prop.get("anyOf", []) for v in option.get("enum", [])}


async def test_paths_and_methods_are_exactly_the_v1_face(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations == {
        ("/v1/push/sessions", "post"),
        ("/v1/push/sessions/{id}", "get"),
        ("/v1/push/sessions/{id}", "patch"),
        ("/v1/push/sessions/{id}/events", "get"),
        ("/v1/webpush/key", "get"),
        ("/v1/inbox/messages", "post"),
    }
    assert schema["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "Server API key",
    }


async def test_every_operation_documents_its_errors(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path, item in schema["paths"].items():
        if path not in (SESSIONS, f"{SESSIONS}/{{id}}"):
            continue  # the event stream and the public key have their own bodies
        for operation in item.values():
            responses = operation["responses"]
            assert "422" not in responses or operation["operationId"] == "createSession"
            assert {"400", "401", "500"} <= set(responses)
            for status, response in responses.items():
                body = response["content"]["application/json"]["schema"]
                name = body["$ref"].rsplit("/", 1)[1]
                expected = "PushAuthenticationSession" if status in ("200", "201") else "Error"
                assert name == expected, (status, name)
    assert "HTTPValidationError" not in schema["components"]["schemas"]


async def test_models_use_the_seed_field_names(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    models = schema["components"]["schemas"]
    session = models["PushAuthenticationSession"]
    assert set(session["properties"]) == SESSION_FIELDS
    assert _enum(schema, session["properties"]["status"]) == STATUS_ENUM
    assert set(models["SessionCreate"]["properties"]) == {
        *("user", "notification", "secondsToExpire"),
        *("pushType", "context", "operation"),
    }
    assert _enum(schema, models["SessionCreate"]["properties"]["pushType"]) == {
        "default",
        "challenge",
        "biometric",
        "code",
    }
    assert models["SessionCreate"]["required"] == ["user"]
    assert set(models["Notification"]["properties"]) == {"title", "subtitle", "body", "payload"}
    assert _enum(schema, models["SessionUpdate"]["properties"]["status"]) == {"canceled"}
    assert _enum(schema, models["Error"]["properties"]["code"]) == ERROR_CODES
    assert set(models["Error"]["required"]) == {"code", "message"}


async def test_health(client: httpx.AsyncClient) -> None:
    reply = await client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "tasks": {}}  # this app runs no background tasks
