"""devices: refuse_undeclared

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: a device can refuse metrics it does not declare."""
    op.add_column(
        "devices",
        sa.Column("refuse_undeclared", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema="registry",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("devices", "refuse_undeclared", schema="registry")
