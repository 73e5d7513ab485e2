"""The message inbox (issue 8, PowerAuth's inbox): one row per message, read state in it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("realm", sa.String(64), sa.ForeignKey("realms.name"), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("read_ms", sa.BigInteger),
    )
    op.create_index("ix_inbox_messages_user", "inbox_messages", ["user_id", "created_ms"])


def downgrade() -> None:
    op.drop_index("ix_inbox_messages_user", table_name="inbox_messages")
    op.drop_table("inbox_messages")
