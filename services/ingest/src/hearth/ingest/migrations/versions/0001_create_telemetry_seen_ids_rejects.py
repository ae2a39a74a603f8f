"""create telemetry, seen ids, rejects

Revision ID: 0001
Revises:
Create Date: 2026-11-22 01:09:38
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
        "reject",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reject")),
        schema="ingest",
    )
    op.create_index(
        "ix_reject_received_at", "reject", ["received_at"], unique=False, schema="ingest"
    )
    op.create_table(
        "seen_msg_id",
        sa.Column("home", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("device", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("msg_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("home", "device", "msg_id", name=op.f("pk_seen_msg_id")),
        schema="ingest",
    )
    op.create_index(
        "ix_seen_msg_id_seen_at", "seen_msg_id", ["seen_at"], unique=False, schema="ingest"
    )
    op.create_table(
        "telemetry",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("home", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("device", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_ts", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("is_bool", sa.Boolean(), nullable=False),
        sa.Column("msg_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry")),
        schema="ingest",
    )
    op.create_index(
        "ix_telemetry_home_device_metric_ts",
        "telemetry",
        ["home", "device", "metric", "ts"],
        unique=False,
        schema="ingest",
    )
    op.create_index(
        "uq_telemetry_device_ts",
        "telemetry",
        ["home", "device", "metric", "ts"],
        unique=True,
        schema="ingest",
        postgresql_where=sa.text("device_ts"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(
        "uq_telemetry_device_ts",
        table_name="telemetry",
        schema="ingest",
        postgresql_where=sa.text("device_ts"),
    )
    op.drop_index("ix_telemetry_home_device_metric_ts", table_name="telemetry", schema="ingest")
    op.drop_table("telemetry", schema="ingest")
    op.drop_index("ix_seen_msg_id_seen_at", table_name="seen_msg_id", schema="ingest")
    op.drop_table("seen_msg_id", schema="ingest")
    op.drop_index("ix_reject_received_at", table_name="reject", schema="ingest")
    op.drop_table("reject", schema="ingest")
