"""create gadget

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:53:53
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "gadget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("home", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("reading", sa.Float(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gadget")),
        sa.UniqueConstraint("home", "name", name=op.f("uq_gadget_home_name")),
        schema="sample",
    )
    op.create_index(op.f("ix_gadget_home"), "gadget", ["home"], unique=False, schema="sample")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_gadget_home"), table_name="gadget", schema="sample")
    op.drop_table("gadget", schema="sample")
