"""IPlanetDirectoryPro login sessions (issue 9): sessions by token digest, and the journey
steps already submitted (an authId's step id works once).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_sessions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("realm", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("tree", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_login_sessions_expires", "login_sessions", ["expires_ms"])
    op.create_index("ix_login_sessions_user", "login_sessions", ["user_id"])
    op.create_table(
        "journey_steps",
        sa.Column("step_id", sa.String(32), primary_key=True),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_journey_steps_expires", "journey_steps", ["expires_ms"])


def downgrade() -> None:
    op.drop_index("ix_journey_steps_expires", table_name="journey_steps")
    op.drop_table("journey_steps")
    op.drop_index("ix_login_sessions_user", table_name="login_sessions")
    op.drop_index("ix_login_sessions_expires", table_name="login_sessions")
    op.drop_table("login_sessions")
