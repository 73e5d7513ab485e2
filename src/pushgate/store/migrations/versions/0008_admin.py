"""Administration (issue 10): API key labels and last use, admin keys with scopes.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(sa.Column("label", sa.String(128)))
        table.add_column(sa.Column("last_used_ms", sa.BigInteger))
    op.create_table(
        "admin_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("label", sa.String(128)),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger),
        sa.Column("last_used_ms", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("admin_keys")
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("last_used_ms")
        table.drop_column("label")
