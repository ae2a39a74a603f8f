"""commands (the command log) and device presence

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "commands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("home", sa.String(length=63), nullable=False),
        sa.Column("device", sa.String(length=63), nullable=False),
        sa.Column("property", sa.String(length=63), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("by", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["home"], ["registry.homes.slug"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "ix_commands_device_issued",
        "commands",
        ["home", "device", "issued_at"],
        schema="registry",
    )
    op.create_index(
        "ix_commands_pending_expiry",
        "commands",
        ["expires_at"],
        schema="registry",
        postgresql_where=sa.text("outcome IS NULL"),
    )
    op.add_column(
        "devices",
        sa.Column("online", sa.Boolean(), server_default="false", nullable=False),
        schema="registry",
    )
    op.add_column(
        "devices",
        sa.Column("presence_reason", sa.String(length=16), nullable=True),
        schema="registry",
    )
    op.add_column(
        "devices",
        sa.Column("presence_at", sa.DateTime(timezone=True), nullable=True),
        schema="registry",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("devices", "presence_at", schema="registry")
    op.drop_column("devices", "presence_reason", schema="registry")
    op.drop_column("devices", "online", schema="registry")
    op.drop_index("ix_commands_pending_expiry", table_name="commands", schema="registry")
    op.drop_index("ix_commands_device_issued", table_name="commands", schema="registry")
    op.drop_table("commands", schema="registry")
