"""Operations (issue 10): who and from where on audit rows, and the indexes of time-ordered
audit reads and of the retention purge (docs/AUDIT.md). Key rotation needs no schema: the key
id is inside each sealed value (store/sealing.py).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: nullable, no rewrite of a large audit table on either database.
    op.add_column("audit", sa.Column("actor", sa.String(128)))
    op.add_column("audit", sa.Column("remote_ip", sa.String(64)))
    op.create_index("ix_audit_at", "audit", ["at_ms", "id"])
    op.create_index("ix_audit_realm_at", "audit", ["realm", "at_ms", "id"])
    op.create_index(
        "ix_sessions_finished",
        "sessions",
        ["realm", "updated_ms"],
        postgresql_where=sa.text("status <> 'PENDING'"),
        sqlite_where=sa.text("status <> 'PENDING'"),
    )
    op.create_index(
        "ix_outbox_settled",
        "outbox",
        ["realm", "updated_ms"],
        postgresql_where=sa.text("state <> 'pending'"),
        sqlite_where=sa.text("state <> 'pending'"),
    )
    op.create_index("ix_registrations_expires", "registrations", ["realm", "expires_ms"])


def downgrade() -> None:
    op.drop_index("ix_registrations_expires", "registrations")
    op.drop_index("ix_outbox_settled", "outbox")
    op.drop_index("ix_sessions_finished", "sessions")
    op.drop_index("ix_audit_realm_at", "audit")
    op.drop_index("ix_audit_at", "audit")
    # Plain DROP COLUMN (SQLite 3.35+), as in 0003.
    op.drop_column("audit", "remote_ip")
    op.drop_column("audit", "actor")
