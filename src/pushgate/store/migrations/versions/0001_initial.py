"""The initial schema: realms, users, API keys, registrations, devices, sessions,
notifications, consumed messages and audit.

Revision ID: 0001
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    realms = op.create_table(
        "realms",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(realms, [{"name": "/", "created_ms": time.time_ns() // 1_000_000}])
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("realm", sa.String(64), sa.ForeignKey("realms.name"), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("realm", "username", name="uq_users_realm_username"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("realm", sa.String(64), sa.ForeignKey("realms.name"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger),
    )
    op.create_table(
        "registrations",
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("realm", sa.String(64), sa.ForeignKey("realms.name"), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("challenge", sa.LargeBinary, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("completed_ms", sa.BigInteger),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("realm", sa.String(64), sa.ForeignKey("realms.name"), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("mechanism_uid", sa.String(128), nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("push_token", sa.Text, nullable=False),
        sa.Column("device_type", sa.String(64), nullable=False),
        sa.Column("communication_type", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("realm", "mechanism_uid", name="uq_devices_realm_mechanism"),
    )
    op.create_index("ix_devices_user", "devices", ["user_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("realm", sa.String(64), sa.ForeignKey("realms.name"), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("user_id", sa.String(36)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("subtitle", sa.Text),
        sa.Column("body", sa.Text),
        sa.Column("payload", sa.Text),
        sa.Column("push_type", sa.String(16), nullable=False),
        sa.Column("notification_count", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sessions_pending_expiry", "sessions", ["status", "expires_ms"])
    op.create_table(
        "notifications",
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("session_id", sa.String(36), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("device_id", sa.String(36), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("challenge", sa.LargeBinary, nullable=False),
        sa.Column("numbers", sa.String(32)),
        sa.Column("answer", sa.Integer),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("answered_ms", sa.BigInteger),
    )
    op.create_index("ix_notifications_device_open", "notifications", ["device_id", "answered_ms"])
    op.create_index("ix_notifications_session", "notifications", ["session_id"])
    op.create_table(
        "consumed_messages",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("realm", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("realm", sa.String(64), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_subject", "audit", ["subject"])


def downgrade() -> None:
    for index, table in (
        ("ix_audit_subject", "audit"),
        ("ix_notifications_session", "notifications"),
        ("ix_notifications_device_open", "notifications"),
        ("ix_sessions_pending_expiry", "sessions"),
        ("ix_devices_user", "devices"),
    ):
        op.drop_index(index, table)
    for table in (
        "audit",
        "consumed_messages",
        "notifications",
        "sessions",
        "devices",
        "registrations",
        "api_keys",
        "users",
        "realms",
    ):
        op.drop_table(table)
