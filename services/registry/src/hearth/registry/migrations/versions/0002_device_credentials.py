"""device credentials: disabled flag, sealed broker password, its generation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "devices",
        sa.Column("disabled", sa.Boolean(), server_default="false", nullable=False),
        schema="registry",
    )
    op.add_column(
        "devices",
        sa.Column("password_sealed", sa.LargeBinary(), nullable=True),
        schema="registry",
    )
    op.add_column(
        "devices",
        sa.Column("credentials_generation", sa.Integer(), server_default="0", nullable=False),
        schema="registry",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("devices", "credentials_generation", schema="registry")
    op.drop_column("devices", "password_sealed", schema="registry")
    op.drop_column("devices", "disabled", schema="registry")
