"""The OpenAPI document of the admin API, served at `/admin/openapi.json` (issue 10).

Apart from `/openapi.json`, which describes exactly the relying parties' `/v1` face (issue #2):
an admin key is not a relying party's credential, and neither document offers the other's
operations. Written out from one table, with each operation's scope in its description.
"""

from __future__ import annotations

from typing import Any

from pushgate import __version__
from pushgate.accounts.model import RealmPolicy
from pushgate.admin.model import Scope

_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
_ERRORS = {
    400: "Invalid parameters or body, or the root realm named for removal",
    401: "Missing, unknown or revoked admin key (`Authorization: Bearer pga_...`)",
    403: "The admin key lacks this operation's scope",
    404: "No such realm, user, device, key, webhook or journey",
    409: "A conflict: the realm is not empty, the user has pending sessions, or it exists",
    415: "The body is not `application/json`",
    503: "Storage unavailable",
}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _list(name: str, item: str) -> dict[str, Any]:
    return _object([name], **{name: {"type": "array", "items": _ref(item)}})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_SETTINGS = {
    "type": "object",
    "description": "The realm's settings; a PATCH changes those it names",
    "properties": {name: {} for name in RealmPolicy().as_json()},
    "additionalProperties": False,
}
SCHEMAS: dict[str, Any] = {
    "Error": _object(["code", "message"], code={"type": "string"}, message={"type": "string"}),
    "Realm": _object(
        ["realm", "createdAt", "settings"],
        realm={"type": "string", "examples": ["/alpha"]},
        createdAt=_TIME,
        settings=_SETTINGS,
        contents=_object(
            ["users", "apiKeys", "webhooks", "journeys"],
            users={"type": "integer"},
            apiKeys={"type": "integer", "description": "not revoked"},
            webhooks={"type": "integer"},
            journeys={"type": "integer", "description": "imported trees"},
        ),
    ),
    "User": _object(
        ["id", "realm", "username", "createdAt", "locked", "failureCount"],
        id={"type": "string", "format": "uuid"},
        realm={"type": "string"},
        username={"type": "string"},
        createdAt=_TIME,
        hasPassword={"type": "boolean"},
        locked={"type": "boolean"},
        lockedAt=_MAYBE_TIME,
        failureCount={"type": "integer"},
        devices={"type": "integer", "description": "devices not removed (show only)"},
        pendingSessions={"type": "integer"},
        recoveryCodes={"type": "integer"},
        optOuts={"type": "array", "items": {"type": "string"}},
        canceledSessions={"type": "array", "items": {"type": "string"}},
    ),
    "Device": _object(
        ["id", "mechanismUid", "name", "status"],
        id={"type": "string"},
        mechanismUid={"type": "string"},
        name={"type": "string", "maxLength": 256},
        status={"enum": ["active", "inactive", "blocked", "removed"]},
        deviceType={"type": "string"},
        communicationType={"type": "string"},
        pushToken={"type": ["string", "null"], "description": "its first characters only"},
        createdAt=_TIME,
        updatedAt=_TIME,
    ),
    "ApiKey": _object(
        ["id", "realm", "createdAt"],
        id={"type": "string"},
        realm={"type": "string"},
        label={"type": ["string", "null"]},
        createdAt=_TIME,
        lastUsedAt={**_MAYBE_TIME, "description": "to the minute"},
        revokedAt=_MAYBE_TIME,
        apiKey={"type": "string", "description": "on creation only: shown once"},
    ),
    "AdminKey": _object(
        ["id", "scopes", "createdAt"],
        id={"type": "string"},
        label={"type": ["string", "null"]},
        scopes={"type": "array", "items": {"enum": [s.value for s in Scope]}},
        createdAt=_TIME,
        lastUsedAt=_MAYBE_TIME,
        revokedAt=_MAYBE_TIME,
    ),
    "Webhook": _object(
        ["id", "realm", "url"],
        id={"type": "string"},
        realm={"type": "string"},
        url={"type": "string"},
        events={"type": ["array", "null"], "items": {"type": "string"}},
        createdAt=_TIME,
        secret={"type": "string", "description": "on creation only: shown once"},
    ),
    "Delivery": {"type": "object", "description": "A webhook delivery (docs/WEBHOOKS.md)"},
    "Journey": {"type": "object", "description": "A journey tree (docs/JOURNEYS.md)"},
    "Removed": {"type": "object", "required": ["removed"], "properties": {"removed": {}}},
    "Count": _object(["cleared"], username={"type": "string"}, cleared={"type": "integer"}),
    "Imported": _object(["name", "nodes"], name={"type": "string"}, nodes={"type": "integer"}),
    "RealmList": _list("realms", "Realm"),
    "UserList": _list("users", "User"),
    "DeviceList": _list("devices", "Device"),
    "ApiKeyList": _list("apiKeys", "ApiKey"),
    "AdminKeyList": _list("adminKeys", "AdminKey"),
    "WebhookList": _list("webhooks", "Webhook"),
    "DeliveryList": _list("deliveries", "Delivery"),
    "JourneyList": {"type": "object", "required": ["journeys"]},
    "AuditList": {
        "type": "object",
        "required": ["entries"],
        "description": "Entries as `pushgate audit tail --json` prints them (docs/AUDIT.md)",
    },
}
_BODIES = {
    "NewRealm": _object(["realm"], realm={"type": "string"}),
    "NewUser": _object(["username"], username={"type": "string"}, password={"type": "string"}),
    "DeviceName": _object(["name"], name={"type": "string", "minLength": 1, "maxLength": 256}),
    "NewApiKey": _object([], label={"type": "string", "maxLength": 128}),
    "NewWebhook": _object(
        ["url"], url={"type": "string"}, events={"type": "array", "items": {"type": "string"}}
    ),
    "Settings": _SETTINGS,
    "Journey": {"type": "object"},
}

_PARAMETERS = {
    "realm": "The realm's name without its slash; `root` for `/`",
    "username": "The username",
    "device": "The device's id (`id` of the device list)",
    "key": "The API key's id",
    "webhook": "The webhook's id",
    "name": "The journey's name",
}
_QUERIES = {
    "after": "Users: only usernames after this one; audit: only entries numbered above it",
    "limit": "At most this many (1-1000, default 100)",
    "realm": "Only this realm's (default: every realm's)",
    "state": "Only deliveries in this state",
}

R, U, D = "/admin/realms/{realm}", "/admin/realms/{realm}/users/{username}", "/devices/{device}"
# (method, path, scope, summary, success status, response schema, request body, query names)
OPERATIONS: list[tuple[str, str, Scope, str, int, str, str | None, tuple[str, ...]]] = [
    ("get", "/admin/realms", Scope.REALMS_READ, "List realms", 200, "RealmList", None, ()),
    ("post", "/admin/realms", Scope.REALMS_WRITE, "Create a realm", 201, "Realm", "NewRealm", ()),
    ("get", R, Scope.REALMS_READ, "Show a realm and what it holds", 200, "Realm", None, ()),
    ("patch", R, Scope.REALMS_WRITE, "Change a realm's settings", 200, "Realm", "Settings", ()),
    ("delete", R, Scope.REALMS_WRITE, "Remove an empty realm", 200, "Removed", None, ()),
    (
        "get",
        R + "/users",
        Scope.USERS_READ,
        "List users",
        200,
        "UserList",
        None,
        ("after", "limit"),
    ),
    ("post", R + "/users", Scope.USERS_WRITE, "Create a user", 201, "User", "NewUser", ()),
    ("get", U, Scope.USERS_READ, "Show a user", 200, "User", None, ()),
    ("delete", U, Scope.USERS_WRITE, "Remove a user and all it has", 200, "Removed", None, ()),
    (
        "post",
        U + "/lock",
        Scope.USERS_WRITE,
        "Lock a user, cancel its sessions",
        200,
        "User",
        None,
        (),
    ),
    ("post", U + "/unlock", Scope.USERS_WRITE, "Unlock a user", 200, "User", None, ()),
    ("delete", U + "/opt-outs", Scope.USERS_WRITE, "Reset MFA opt-outs", 200, "Count", None, ()),
    (
        "get",
        U + "/devices",
        Scope.DEVICES_READ,
        "List a user's devices",
        200,
        "DeviceList",
        None,
        (),
    ),
    ("patch", U + D, Scope.DEVICES_WRITE, "Rename a device", 200, "Device", "DeviceName", ()),
    (
        "delete",
        U + D,
        Scope.DEVICES_WRITE,
        "Remove a device (the app is told)",
        200,
        "Device",
        None,
        (),
    ),
    (
        "post",
        U + D + "/block",
        Scope.DEVICES_WRITE,
        "Block a device (the app is told)",
        200,
        "Device",
        None,
        (),
    ),
    ("post", U + D + "/unblock", Scope.DEVICES_WRITE, "Unblock a device", 200, "Device", None, ()),
    (
        "post",
        R + "/api-keys",
        Scope.KEYS_WRITE,
        "Create an API key",
        201,
        "ApiKey",
        "NewApiKey",
        (),
    ),
    (
        "get",
        "/admin/api-keys",
        Scope.KEYS_READ,
        "List API keys",
        200,
        "ApiKeyList",
        None,
        ("realm",),
    ),
    (
        "delete",
        "/admin/api-keys/{key}",
        Scope.KEYS_WRITE,
        "Revoke an API key",
        200,
        "ApiKey",
        None,
        (),
    ),
    ("get", "/admin/admin-keys", Scope.KEYS_READ, "List admin keys", 200, "AdminKeyList", None, ()),
    (
        "get",
        "/admin/webhooks",
        Scope.WEBHOOKS_READ,
        "List webhooks",
        200,
        "WebhookList",
        None,
        ("realm",),
    ),
    (
        "get",
        "/admin/webhooks/deliveries",
        Scope.WEBHOOKS_READ,
        "List webhook deliveries",
        200,
        "DeliveryList",
        None,
        ("realm", "state", "limit"),
    ),
    (
        "delete",
        "/admin/webhooks/{webhook}",
        Scope.WEBHOOKS_WRITE,
        "Remove a webhook",
        200,
        "Removed",
        None,
        (),
    ),
    (
        "post",
        R + "/webhooks",
        Scope.WEBHOOKS_WRITE,
        "Add a webhook",
        201,
        "Webhook",
        "NewWebhook",
        (),
    ),
    ("get", R + "/journeys", Scope.JOURNEYS_READ, "List journeys", 200, "JourneyList", None, ()),
    (
        "post",
        R + "/journeys",
        Scope.JOURNEYS_WRITE,
        "Import a journey",
        201,
        "Imported",
        "Journey",
        (),
    ),
    (
        "get",
        R + "/journeys/{name}",
        Scope.JOURNEYS_READ,
        "Export a journey",
        200,
        "Journey",
        None,
        (),
    ),
    (
        "get",
        "/admin/audit",
        Scope.AUDIT_READ,
        "Read the audit trail",
        200,
        "AuditList",
        None,
        ("realm", "limit", "after"),
    ),
]


def _operation(
    method: str,
    path: str,
    scope: Scope,
    summary: str,
    status: int,
    schema: str,
    body: str | None,
    queries: tuple[str, ...],
) -> dict[str, Any]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    parameters = [
        {"name": n, "in": "path", "required": True, "description": _PARAMETERS[n]}
        | {"schema": {"type": "string"}}
        for n in names
    ] + [
        {"name": q, "in": "query", "required": False, "description": _QUERIES[q]}
        | {"schema": {"type": "string"}}
        for q in queries
    ]
    errors = [400, 401, 403, 404, 503]
    if method in ("post", "patch", "delete"):
        errors.append(409)
    if body is not None:
        errors.append(415)
    error = {"application/json": {"schema": _ref("Error")}}
    operation: dict[str, Any] = {
        "tags": ["Administration"],
        "summary": summary,
        "description": f"Scope: `{scope.value}`",
        "operationId": _operation_id(method, path),
        "security": [{"AdminKey": [scope.value]}],
        "responses": {
            str(status): {
                "description": summary,
                "content": {"application/json": {"schema": _ref(schema)}},
            },
            **{str(e): {"description": _ERRORS[e], "content": error} for e in sorted(errors)},
        },
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _BODIES[body]}},
        }
    return operation


def _operation_id(method: str, path: str) -> str:
    """`admin_delete_realms_realm_users_username` for DELETE .../realms/{realm}/users/{username}."""
    words = [p.strip("{}").replace("-", "_") for p in path.split("/")[2:]]
    return "_".join(["admin", method, *words])


def build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation[1], {})[operation[0]] = _operation(*operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pushgate admin API",
            "version": __version__,
            "summary": "Realms, users, devices, keys, webhooks and journeys (docs/ADMIN.md)",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "AdminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin key from `pushgate admin-key create` (pga_...),"
                    " holding the operation's scope",
                }
            },
        },
    }
