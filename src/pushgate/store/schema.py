"""The tables, as SQLAlchemy Core metadata shared by both dialects (DESIGN.md "storage").

Times are epoch milliseconds in BIGINT columns: one representation on SQLite and PostgreSQL,
and the same number the protocol puts into message ids and the `i` claim.
The migrations in `migrations/versions/` create exactly these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from pushgate.outbox.model import MAX_KEY, MAX_KIND

metadata = MetaData()
# SQLite only auto-increments an INTEGER PRIMARY KEY.
_AUDIT_ID = BigInteger().with_variant(Integer(), "sqlite")

realms = Table(
    "realms",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("settings", Text),  # the realm's policy as JSON (accounts.model.RealmPolicy)
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("realm", String(64), ForeignKey("realms.name"), nullable=False),
    Column("username", String(256), nullable=False),
    Column("password_hash", Text),
    Column("created_ms", BigInteger, nullable=False),
    # Consecutive denials and failed answers; at the realm's limit the user is locked.
    Column("failure_count", Integer, nullable=False, server_default="0"),
    Column("locked_ms", BigInteger),
    UniqueConstraint("realm", "username", name="uq_users_realm_username"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("realm", String(64), ForeignKey("realms.name"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    # Migration 0008 (issue 10): the operator's name for the key, and when it was last used
    # (to the minute: at most one write per key per minute).
    Column("label", String(128)),
    Column("last_used_ms", BigInteger),
)

# Keys of the admin API `/admin/...` (migration 0008, pushgate.admin): hashed like API keys,
# not tied to a realm; `scopes` is a space-separated list (admin/model.py `Scope`).
admin_keys = Table(
    "admin_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    Column("label", String(128)),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    Column("last_used_ms", BigInteger),
)

registrations = Table(
    "registrations",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("realm", String(64), ForeignKey("realms.name"), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("device_id", String(36), nullable=False),
    Column("secret", LargeBinary, nullable=False),
    Column("challenge", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("completed_ms", BigInteger),
    # The retention purge's registrations past their deadline (migration 0009).
    Index("ix_registrations_expires", "realm", "expires_ms"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("realm", String(64), ForeignKey("realms.name"), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("mechanism_uid", String(128), nullable=False),
    Column("secret", LargeBinary, nullable=False),
    Column("push_token", Text, nullable=False),
    Column("device_type", String(64), nullable=False),
    Column("communication_type", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("realm", "mechanism_uid", name="uq_devices_realm_mechanism"),
    Index("ix_devices_user", "user_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("realm", String(64), ForeignKey("realms.name"), nullable=False),
    Column("username", String(256), nullable=False),
    Column("user_id", String(36)),
    Column("status", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("subtitle", Text),
    Column("body", Text),
    Column("payload", Text),
    Column("push_type", String(16), nullable=False),
    Column("notification_count", Integer, nullable=False),
    Column("detail", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("answer_code", String(8)),  # the challenge number or typed code to match
    Column("context", Text),  # JSON: remoteIp, userAgent, location
    Column("operation_name", String(64)),
    Column("operation_data", Text),
    Column("deny_reason", String(32)),
    Column("failure_count", Integer, nullable=False, server_default="0"),
    Index("ix_sessions_pending_expiry", "status", "expires_ms"),
    # A user's limits read the newest of the user's sessions and the pending ones.
    Index("ix_sessions_user_created", "realm", "username", "created_ms"),
    Index(
        "ix_sessions_user_pending",
        "realm",
        "username",
        postgresql_where=text("status = 'PENDING'"),
        sqlite_where=text("status = 'PENDING'"),
    ),
    # The retention purge's oldest finished sessions of a realm (migration 0009).
    Index(
        "ix_sessions_finished",
        "realm",
        "updated_ms",
        postgresql_where=text("status <> 'PENDING'"),
        sqlite_where=text("status <> 'PENDING'"),
    ),
)

notifications = Table(
    "notifications",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("session_id", String(36), ForeignKey("sessions.id"), nullable=False),
    Column("device_id", String(36), ForeignKey("devices.id"), nullable=False),
    Column("challenge", LargeBinary, nullable=False),
    Column("numbers", String(32)),
    Column("answer", Integer),
    Column("created_ms", BigInteger, nullable=False),
    Column("answered_ms", BigInteger),
    Index("ix_notifications_device_open", "device_id", "answered_ms"),
    Index("ix_notifications_session", "session_id"),
)

# `Idempotency-Key` of session creates: the same key and request within 24 h is the same session.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("realm", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("session_id", String(36), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_idempotency_keys_created", "created_ms"),
)

# Hashes of refresh JWTs already applied: refresh carries no challenge, so this is what makes
# a captured refresh single-use (security.md §8.3).
consumed_messages = Table(
    "consumed_messages",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("realm", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", _AUDIT_ID, primary_key=True, autoincrement=True),
    Column("realm", String(64), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("event", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("data", Text, nullable=False),
    # Who (audit/model.py `Actor`: cli, device:<id>, apikey:<id>, admin:<id>, system) and from
    # where (migration 0009); NULL in rows written before.
    Column("actor", String(128)),
    Column("remote_ip", String(64)),
    Index("ix_audit_subject", "subject"),
    # Time-ordered reads (`pushgate audit tail/export`) and the retention purge (0009).
    Index("ix_audit_at", "at_ms", "id"),
    Index("ix_audit_realm_at", "realm", "at_ms", "id"),
)

# The transactional outbox (migration 0002): work that follows a committed change, claimed by
# the background runtime under a lease (pushgate.outbox).
_OUTBOX_ID = BigInteger().with_variant(Integer(), "sqlite")
outbox = Table(
    "outbox",
    metadata,
    Column("id", _OUTBOX_ID, primary_key=True, autoincrement=True),
    Column("kind", String(MAX_KIND), nullable=False),
    Column("realm", String(64), nullable=False),
    Column("idempotency_key", String(MAX_KEY), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until_ms", BigInteger),
    Column("last_error", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("kind", "idempotency_key", name="uq_outbox_kind_key"),
    Index("ix_outbox_due", "state", "next_attempt_ms"),
    # The retention purge's oldest settled rows of a realm (migration 0009).
    Index(
        "ix_outbox_settled",
        "realm",
        "updated_ms",
        postgresql_where=text("state <> 'pending'"),
        sqlite_where=text("state <> 'pending'"),
    ),
)

# Webhook subscriptions (migration 0004, pushgate.webhooks): the signing secret is sealed like
# a device secret; `events` is a JSON list of event types, NULL for every type.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("realm", String(64), ForeignKey("realms.name"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("events", Text),
    Column("secret", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# The message inbox (migration 0005, pushgate.inbox): messages a relying party posts to a user,
# read on any of the user's devices (PowerAuth's inbox); `read_ms` is NULL while unread.
inbox_messages = Table(
    "inbox_messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("realm", String(64), ForeignKey("realms.name"), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("type", String(8), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("summary", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("read_ms", BigInteger),
    Index("ix_inbox_messages_user", "user_id", "created_ms"),
)

# Journeys (migration 0006, pushgate.journeys): a realm's imported trees (the built-in
# PushAuthentication needs no row), single-use recovery codes as keyed digests, MFA opt-outs.
journey_trees = Table(
    "journey_trees",
    metadata,
    Column("realm", String(64), ForeignKey("realms.name"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("definition", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id"), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)

mfa_opt_outs = Table(
    "mfa_opt_outs",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id"), primary_key=True),
    Column("method", String(16), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)

# Login sessions (migration 0007, pushgate.logins): AM's SSO token, stored as its SHA-256
# digest only; and the journey steps already submitted, kept until their authId expires.
login_sessions = Table(
    "login_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("realm", String(64), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("username", String(256), nullable=False),
    Column("tree", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_login_sessions_expires", "expires_ms"),
    Index("ix_login_sessions_user", "user_id"),
)

journey_steps = Table(
    "journey_steps",
    metadata,
    Column("step_id", String(32), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_journey_steps_expires", "expires_ms"),
)
