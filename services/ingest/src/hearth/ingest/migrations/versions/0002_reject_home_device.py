"""reject: the home and device its topic names

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: rejects of a home can be listed (``GET .../rejects``)."""
    op.add_column(
        "reject",
        sa.Column("home", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=True),
        schema="ingest",
    )
    op.add_column(
        "reject",
        sa.Column("device", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=True),
        schema="ingest",
    )
    # Rejects kept before this revision: their home and device from the topic, when it
    # has the shape hearth/<home>/<device>/...
    op.execute(
        """
        UPDATE ingest.reject
        SET home = split_part(topic, '/', 2), device = split_part(topic, '/', 3)
        WHERE topic ~ '^hearth/[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9-]{0,62}(/|$)'
        """
    )
    op.create_index(
        "ix_reject_home_received_at",
        "reject",
        ["home", "received_at"],
        unique=False,
        schema="ingest",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_reject_home_received_at", table_name="reject", schema="ingest")
    op.drop_column("reject", "device", schema="ingest")
    op.drop_column("reject", "home", schema="ingest")
