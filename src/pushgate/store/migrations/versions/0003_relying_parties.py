"""Relying parties (issue 7): push types with a number or code to match, context and
operations on sessions, failure counters and locks on users, realm policies, idempotent
creates.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _session_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("answer_code", sa.String(8)),
        sa.Column("context", sa.Text),
        sa.Column("operation_name", sa.String(64)),
        sa.Column("operation_data", sa.Text),
        sa.Column("deny_reason", sa.String(32)),
        sa.Column("failure_count", sa.Integer, nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    for column in _session_columns():
        op.add_column("sessions", column)
    op.create_index("ix_sessions_user_created", "sessions", ["realm", "username", "created_ms"])
    pending = sa.text("status = 'PENDING'")
    op.create_index(
        "ix_sessions_user_pending",
        "sessions",
        ["realm", "username"],
        postgresql_where=pending,
        sqlite_where=pending,
    )
    op.add_column(
        "users", sa.Column("failure_count", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("users", sa.Column("locked_ms", sa.BigInteger))
    op.add_column("realms", sa.Column("settings", sa.Text))
    op.create_table(
        "idempotency_keys",
        sa.Column("realm", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("realm", "key"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_ms"])


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy would drop `realms`, which others refer to.
    op.drop_index("ix_idempotency_keys_created", "idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_column("realms", "settings")
    op.drop_column("users", "locked_ms")
    op.drop_column("users", "failure_count")
    op.drop_index("ix_sessions_user_pending", "sessions")
    op.drop_index("ix_sessions_user_created", "sessions")
    for column in reversed(_session_columns()):
        op.drop_column("sessions", column.name)
